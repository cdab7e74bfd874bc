package dev.peft4j.lora;

import dev.peft4j.AbstractMergeableAdapter;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.GraphRewriter.Created;
import dev.peft4j.graph.GraphRewriter.Splice;
import dev.peft4j.graph.LinearModule;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.nd4j.autodiff.samediff.NameScope;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Low-rank adaptation: adds {@code s · (x·A)·B} beside each targeted linear layer's frozen weight W.
 * <pre>
 *   x: [n, in]   W: [in, out]   A: [in, r]   B: [r, out]     y' = y + s · (dropout(x)·A)·B
 *   merge: W ← W + s·A·B       unmerge: W ← W − s·A·B
 * </pre>
 * The branch of module {@code m} lives under the name scope {@code peft/<adapter>/lora/<m>/}: variables
 * {@code lora_A} and {@code lora_B}, and the ops of the dropout mask, the two matmuls and the sum. Every reader of the
 * module's output reads the sum instead. Disabling points the readers back at the module's output (the branch stays,
 * unread); merging adds {@code s·A·B} to W and does the same.
 *
 * @see LoraConfig
 * @see <a href="https://arxiv.org/abs/2106.09685">Hu et al., LoRA: Low-Rank Adaptation of Large Language Models</a>
 */
public final class Lora extends AbstractMergeableAdapter<LoraConfig> {

  /** One adapted linear layer. */
  private record Layer(LinearModule module, LowRank branch, Created created, Splice splice) {}

  private final List<Layer> layers = new ArrayList<>();

  Lora(String name, LoraConfig config) {
    super(name, config);
  }

  @Override
  protected void build(SameDiff sameDiff, GraphRewriter g) {
    List<LinearModule> modules = config().targets().selectLinear(g, "LoRA");
    LowRank.checkTargets(modules, config().modulesToSave(), "LoRA");
    Random random = new Random(config().seed());
    for (LinearModule m : modules) {
      layers.add(insert(sameDiff, g, m, random));
    }
  }

  private Layer insert(SameDiff sameDiff, GraphRewriter g, LinearModule m, Random random) {
    LoraConfig config = config();
    LowRank[] branch = new LowRank[1];
    String[] sumName = new String[1];
    Created created = g.capture(() -> {
      String scope = scope("lora") + m.name();
      try (NameScope ignored = sameDiff.withNameScope(scope)) { // names the ops; variables are named in full
        branch[0] = LowRank.build(sameDiff, scope, m, config.r(), config.scaling(), config.dropout(), random,
            training());
        SDVariable delta = sameDiff.getVariable(branch[0].update());                      // [n, out]
        // named for what it will hold once spliced in: the module's original output
        sumName[0] = sameDiff.getVariable(m.output()).add(scope + "/base_output", delta).name(); // [n, out]
      }
    });
    Splice splice;
    try {
      splice = g.splice(m.output(), sumName[0], created.ops());
    } catch (RuntimeException e) {
      g.remove(created);
      throw e;
    }
    return new Layer(m, branch[0], created, splice);
  }

  @Override
  protected void attach() {
    layers.forEach(l -> graph().resplice(l.splice()));
  }

  @Override
  protected void detach() {
    layers.forEach(l -> graph().unsplice(l.splice()));
  }

  @Override
  protected void remove() {
    layers.forEach(l -> graph().remove(l.created()));
    layers.clear();
  }

  @Override
  protected List<String> parameters() {
    List<String> names = new ArrayList<>();
    for (Layer l : layers) {
      names.add(l.branch().a());
      names.add(l.branch().b());
    }
    return names;
  }

  /** {@code <module>.lora_A.weight} {@code [r, in]} and {@code <module>.lora_B.weight} {@code [out, r]}. */
  @Override
  protected Map<String, INDArray> ownStateDict() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (Layer l : layers) {
      l.branch().putStateDict(sd(), l.module().name(), out);
    }
    return out;
  }

  @Override
  protected void loadOwnStateDict(Map<String, INDArray> tensors) {
    for (Layer l : layers) {
      l.branch().load(sd(), l.module().name(), tensors);
    }
  }

  @Override
  protected void trainingChanged() {
    layers.forEach(l -> l.branch().setTraining(graph(), training()));
  }

  @Override
  protected List<MergedWeight> mergedWeights() {
    List<MergedWeight> merged = new ArrayList<>();
    for (Layer l : layers) {
      INDArray w = sd().getArrForVarName(l.module().weight());                        // [in, out]
      merged.add(new MergedWeight(l.module().weight(), w.add(l.branch().delta(sd()))));
    }
    return merged;
  }

  @Override
  protected void unmergeWeights() {
    for (Layer l : layers) {
      sd().getArrForVarName(l.module().weight()).subi(l.branch().delta(sd()));
    }
  }

  /** The names of the modules this adapter adapted, in graph order. */
  public List<String> adaptedModules() {
    return layers.stream().map(l -> l.module().name()).toList();
  }
}
