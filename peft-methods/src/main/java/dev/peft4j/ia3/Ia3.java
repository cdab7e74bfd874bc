package dev.peft4j.ia3;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.MergeableAdapter;
import dev.peft4j.ModulesToSave;
import dev.peft4j.StateDicts;
import dev.peft4j.TrainableParameterSet;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.GraphRewriter.Created;
import dev.peft4j.graph.GraphRewriter.Splice;
import dev.peft4j.graph.LinearModule;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
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
public final class Ia3 implements MergeableAdapter {

  /** One adapted layer: its vector and how it is wired in. */
  private record Layer(LinearModule module, boolean feedforward, String vector, String scaledInput, Created created,
      Splice splice) {}

  private enum State { NEW, ENABLED, DISABLED, MERGED, UNLOADED }

  private final String name;
  private final Ia3Config config;
  private final List<Layer> layers = new ArrayList<>();
  private SameDiff sd;
  private GraphRewriter graph;
  private ModulesToSave saved;
  private State state = State.NEW;

  Ia3(String name, Ia3Config config) {
    this.name = name;
    this.config = config;
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public Ia3Config config() {
    return config;
  }

  @Override
  public void apply(SameDiff sameDiff) {
    checkState(state == State.NEW, "adapter '%s' was applied already", name);
    GraphRewriter g = GraphRewriter.of(sameDiff);
    List<LinearModule> modules = config.targets().selectLinear(g, "IA³");
    for (LinearModule m : modules) {
      checkState(!m.output().startsWith("peft/") && !m.input().startsWith("peft/"),
          "module '%s' carries an enabled adapter; disable it first (PeftModel.addAdapter does)", m.name());
    }
    List<Layer> built = new ArrayList<>();
    try {
      for (LinearModule m : modules) {
        built.add(insert(sameDiff, g, m));
      }
      saved = ModulesToSave.apply(sameDiff, name, config.modulesToSave());
    } catch (RuntimeException e) {
      for (Layer l : built) {
        detach(g, l);
        g.remove(l.created());
      }
      throw e;
    }
    layers.addAll(built);
    sd = sameDiff;
    graph = g;
    state = State.ENABLED;
  }

  private Layer insert(SameDiff sameDiff, GraphRewriter g, LinearModule m) {
    boolean feedforward = config.isFeedforward(m.name());
    DataType type = sameDiff.getVariable(m.weight()).dataType();
    String scope = "peft/" + name + "/ia3/" + m.name();
    String[] names = new String[2]; // vector, branch result
    Created created = g.capture(() -> {
      try (NameScope ignored = sameDiff.withNameScope(scope)) {
        SDVariable l = sameDiff.var(scope + "/ia3_l",
            Nd4j.ones(type, feedforward ? m.inFeatures() : m.outFeatures()));                   // [in] or [out]
        names[0] = l.name();
        names[1] = feedforward
            ? sameDiff.getVariable(m.input()).mul(scope + "/scaled_input", l).name()           // [n, in]
            : sameDiff.getVariable(m.output()).mul(scope + "/base_output", l).name();          // [n, out]
      }
    });
    if (feedforward) {
      g.setInput(m.matmulOp(), 0, names[1]);
      return new Layer(m, true, names[0], names[1], created, null);
    }
    return new Layer(m, false, names[0], null, created, g.splice(m.output(), names[1], created.ops()));
  }

  private static void attach(GraphRewriter g, Layer l) {
    if (l.feedforward()) {
      g.setInput(l.module().matmulOp(), 0, l.scaledInput());
    } else {
      g.resplice(l.splice());
    }
  }

  private static void detach(GraphRewriter g, Layer l) {
    if (l.feedforward()) {
      g.setInput(l.module().matmulOp(), 0, l.module().input());
    } else {
      g.unsplice(l.splice());
    }
  }

  @Override
  public TrainableParameterSet trainableParameters() {
    requireApplied();
    List<String> names = new ArrayList<>();
    layers.forEach(l -> names.add(l.vector()));
    names.addAll(saved.parameters());
    return TrainableParameterSet.of(sd, names);
  }

  /** {@code <module>.ia3_l}: {@code [out, 1]}, or {@code [1, in]} for feed-forward targets, as Hugging Face PEFT. */
  @Override
  public Map<String, INDArray> stateDict() {
    requireApplied();
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (Layer l : layers) {
      INDArray v = sd.getArrForVarName(l.vector());
      out.put(l.module().name() + ".ia3_l", l.feedforward() ? v.reshape(1, v.length()).dup()
          : v.reshape(v.length(), 1).dup());
    }
    out.putAll(saved.stateDict());
    return out;
  }

  @Override
  public void loadStateDict(Map<String, INDArray> tensors) {
    StateDicts.requireFits(name, stateDict(), tensors);
    for (Layer l : layers) {
      INDArray v = sd.getArrForVarName(l.vector());
      v.assign(tensors.get(l.module().name() + ".ia3_l").reshape(v.length()).castTo(v.dataType()));
    }
    saved.load(tensors);
  }

  @Override
  public boolean isEnabled() {
    return state == State.ENABLED || state == State.MERGED;
  }

  @Override
  public void enable() {
    requireApplied();
    if (state == State.DISABLED) {
      layers.forEach(l -> attach(graph, l));
      saved.enable();
      state = State.ENABLED;
    }
  }

  @Override
  public void disable() {
    requireApplied();
    checkState(state != State.MERGED, "adapter '%s' is merged; unmerge it before disabling", name);
    if (state == State.ENABLED) {
      layers.forEach(l -> detach(graph, l));
      saved.disable();
      state = State.DISABLED;
    }
  }

  @Override
  public void setTraining(boolean training) {
    // no dropout: nothing changes between training and inference
  }

  @Override
  public boolean isMerged() {
    return state == State.MERGED;
  }

  @Override
  public void merge() {
    mergeChecked(false);
  }

  @Override
  public void safeMerge() {
    mergeChecked(true);
  }

  private void mergeChecked(boolean safe) {
    requireApplied();
    checkState(state != State.MERGED, "adapter '%s' is merged already", name);
    checkState(state == State.ENABLED, "adapter '%s' is disabled; enable it before merging", name);
    if (safe) {
      for (Layer l : layers) {
        INDArray v = sd.getArrForVarName(l.vector());
        checkState(!v.isNaN().any() && !v.isInfinite().any(),
            "merging adapter '%s' would put NaN or infinity into '%s'; nothing was merged", name, l.module().weight());
      }
    }
    for (Layer l : layers) {
      scale(l, sd.getArrForVarName(l.vector()));
      detach(graph, l);
    }
    state = State.MERGED;
  }

  @Override
  public void unmerge() {
    requireApplied();
    checkState(state == State.MERGED, "adapter '%s' is not merged", name);
    for (Layer l : layers) {
      INDArray v = sd.getArrForVarName(l.vector());
      scale(l, Nd4j.ones(v.dataType(), v.length()).divi(v.add(1e-8))); // as Hugging Face PEFT divides
      attach(graph, l);
    }
    state = State.ENABLED;
  }

  /** W ← W·diag(f) and b ← b ⊙ f for output scaling; W ← diag(f)·W for input scaling. W is [in, out]. */
  private void scale(Layer l, INDArray f) {
    INDArray w = sd.getArrForVarName(l.module().weight());
    if (l.feedforward()) {
      w.muliColumnVector(f.reshape(f.length(), 1));
    } else {
      w.muliRowVector(f.reshape(1, f.length()));
      if (l.module().hasBias()) {
        sd.getArrForVarName(l.module().bias()).muli(f);
      }
    }
  }

  @Override
  public void mergeAndUnload() {
    requireApplied();
    if (state != State.MERGED) {
      merge();
    }
    saved.mergeAndUnload();
    removeBranches();
  }

  @Override
  public void unload() {
    requireApplied();
    if (state == State.MERGED) {
      unmerge();
    }
    if (state == State.ENABLED) {
      layers.forEach(l -> detach(graph, l));
    }
    saved.unload();
    removeBranches();
  }

  private void removeBranches() {
    layers.forEach(l -> graph.remove(l.created()));
    layers.clear();
    state = State.UNLOADED;
  }

  private void requireApplied() {
    checkState(state != State.NEW, "adapter '%s' has not been applied", name);
    checkState(state != State.UNLOADED, "adapter '%s' was unloaded", name);
  }

  @Override
  public String toString() {
    return "Ia3[" + name + ", " + state + ", " + config + "]";
  }
}
