package dev.peft4j.ia3;

import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.AbstractMergeableAdapter;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.GraphRewriter.Branch;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.model.Conv1dModules;
import dev.peft4j.quant.QuantizedBase;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.nd4j.autodiff.samediff.NameScope;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * IA³: a learned vector {@code l} per targeted linear layer, rescaling its output ({@code y ⊙ l}) or, for
 * feed-forward targets, its input ({@code (x ⊙ l)·W}). See the package documentation for the math.
 *
 * <p>The vector lives at {@code peft/<adapter>/ia3/<module>/ia3_l}. An output-scaling branch is spliced in after the
 * module as LoRA's is; an input-scaling branch rewires the module's matmul to read {@code x ⊙ l}.
 */
public final class Ia3 extends AbstractMergeableAdapter<Ia3Config> {

  /** One adapted layer: its vector and how it is wired in. */
  private record Layer(LinearModule module, boolean feedforward, String vector, String scaledInput,
      Branch<Scaled> branch) {}

  /** The vector, and what it scales: the scaled input, or the scaled output that replaces the module's. */
  private record Scaled(String vector, String result) {}

  private final List<Layer> layers = new ArrayList<>();

  Ia3(String name, Ia3Config config) {
    super(name, config);
  }

  @Override
  protected void build(SameDiff sameDiff, GraphRewriter g) {
    List<LinearModule> modules = config().targets().selectLinear(g, "IA³");
    for (LinearModule m : modules) {
      checkState(!m.output().startsWith("peft/") && !m.input().startsWith("peft/"),
          "module '%s' carries an enabled adapter; disable it first (PeftModel.addAdapter does)", m.name());
    }
    updateConfig(config().withFanInFanOut(Conv1dModules.fanInFanOut(sameDiff, modules, config().fanInFanOut(),
        "IA³")));
    for (LinearModule m : modules) {
      layers.add(insert(sameDiff, g, m));
    }
  }

  private Layer insert(SameDiff sameDiff, GraphRewriter g, LinearModule m) {
    boolean feedforward = config().isFeedforward(m.name());
    DataType type = sameDiff.getVariable(m.weight()).dataType();
    String scope = scope("ia3") + m.name();
    Supplier<Scaled> build = () -> {
      try (NameScope ignored = sameDiff.withNameScope(scope)) {
        SDVariable l = sameDiff.var(scope + "/ia3_l",
            Nd4j.ones(type, feedforward ? m.inFeatures() : m.outFeatures()));                   // [in] or [out]
        return new Scaled(l.name(), feedforward
            ? sameDiff.getVariable(m.input()).mul(scope + "/scaled_input", l).name()           // [n, in]
            : sameDiff.getVariable(m.output()).mul(scope + "/base_output", l).name());         // [n, out]
      }
    };
    if (feedforward) { // nothing spliced: the matmul reads the scaled input instead
      Branch<Scaled> branch = g.spliceBranch(build, parts -> Map.of());
      g.setInput(m.matmulOp(), 0, branch.parts().result());
      return new Layer(m, true, branch.parts().vector(), branch.parts().result(), branch);
    }
    Branch<Scaled> branch = g.spliceBranch(m.output(), build, Scaled::result);
    return new Layer(m, false, branch.parts().vector(), null, branch);
  }

  @Override
  protected void attach() {
    for (Layer l : layers) {
      if (l.feedforward()) {
        graph().setInput(l.module().matmulOp(), 0, l.scaledInput());
      } else {
        graph().attach(l.branch());
      }
    }
  }

  @Override
  protected void detach() {
    for (Layer l : layers) {
      if (l.feedforward()) {
        graph().setInput(l.module().matmulOp(), 0, l.module().input());
      } else {
        graph().detach(l.branch());
      }
    }
  }

  @Override
  protected void remove() {
    layers.forEach(l -> graph().remove(l.branch()));
    layers.clear();
  }

  @Override
  protected List<String> parameters() {
    return layers.stream().map(Layer::vector).toList();
  }

  /** {@code <module>.ia3_l}: {@code [out, 1]}, or {@code [1, in]} for feed-forward targets, as Hugging Face PEFT. */
  @Override
  protected Map<String, INDArray> ownStateDict() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (Layer l : layers) {
      INDArray v = sd().getArrForVarName(l.vector());
      out.put(l.module().name() + ".ia3_l", l.feedforward() ? v.reshape(1, v.length()).dup()
          : v.reshape(v.length(), 1).dup());
    }
    return out;
  }

  @Override
  protected void loadOwnStateDict(Map<String, INDArray> tensors) {
    for (Layer l : layers) {
      INDArray v = sd().getArrForVarName(l.vector());
      v.assign(tensors.get(l.module().name() + ".ia3_l").reshape(v.length()).castTo(v.dataType()));
    }
  }

  @Override
  protected List<MergedWeight> mergedWeights() {
    List<MergedWeight> merged = new ArrayList<>();
    for (Layer l : layers) {
      INDArray f = sd().getArrForVarName(l.vector());
      INDArray w = QuantizedBase.weight(sd(), l.module()); // a copy; dequantised by the graph for a quantised base
      if (l.feedforward()) {
        merged.add(new MergedWeight(l.module().weight(), w.muliColumnVector(f.reshape(f.length(), 1))));
      } else {
        merged.add(new MergedWeight(l.module().weight(), w.muliRowVector(f.reshape(1, f.length()))));
        if (l.module().hasBias()) {
          merged.add(new MergedWeight(l.module().bias(), sd().getArrForVarName(l.module().bias()).mul(f)));
        }
      }
    }
    return merged;
  }

  @Override
  protected void unmergeWeights() {
    for (Layer l : layers) {
      INDArray v = sd().getArrForVarName(l.vector());
      INDArray f = Nd4j.ones(v.dataType(), v.length()).divi(v.add(1e-8)); // as Hugging Face PEFT divides
      boolean quantized = QuantizedBase.isQuantized(l.module()); // its packed form is back already, bit for bit
      INDArray w = quantized ? null : sd().getArrForVarName(l.module().weight());
      if (l.feedforward()) {
        if (!quantized) {
          w.muliColumnVector(f.reshape(f.length(), 1));
        }
      } else {
        if (!quantized) {
          w.muliRowVector(f.reshape(1, f.length()));
        }
        if (l.module().hasBias()) {
          sd().getArrForVarName(l.module().bias()).muli(f);
        }
      }
    }
  }
}
