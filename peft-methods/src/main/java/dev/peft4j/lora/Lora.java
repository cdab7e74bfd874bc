package dev.peft4j.lora;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.AbstractMergeableAdapter;
import dev.peft4j.LowRankAdapter;
import dev.peft4j.graph.Branches;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.model.Conv1dModules;
import dev.peft4j.quant.Quantization;
import dev.peft4j.quant.QuantizedBase;
import dev.peft4j.quant.QuantizedTensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;
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
 * <p>QLoRA ({@code Peft.qlora(r)}, or {@link LoraConfig.Builder#quantizeBase}): the base's linear weights are stored
 * quantised ({@link QuantizedBase}) and dequantised in the graph before each matmul; the branch is unchanged. Merging
 * dequantises W, adds {@code s·A·B} and keeps the merged weight in full precision (no re-quantisation, so no second
 * rounding error); unmerging and unloading put the packed base back bit for bit. Saved files are ordinary LoRA
 * adapters.
 *
 * @see LoraConfig
 * @see <a href="https://arxiv.org/abs/2106.09685">Hu et al., LoRA: Low-Rank Adaptation of Large Language Models</a>
 */
public final class Lora extends AbstractMergeableAdapter<LoraConfig> implements LowRankAdapter {

  /** One adapted linear layer: its low-rank branch and the sum that becomes the module's output. */
  private record Layer(LinearModule module, LowRank branch, String sum) {}

  private final Branches<Layer> layers = branches();

  Lora(String name, LoraConfig config) {
    super(name, config);
  }

  @Override
  protected void build(SameDiff sameDiff, GraphRewriter g) {
    List<LinearModule> modules = config().targets().selectLinear(g, "LoRA");
    LowRank.checkTargets(modules, config().modulesToSave(), "LoRA");
    updateConfig(config().withFanInFanOut(Conv1dModules.fanInFanOut(sameDiff, modules, config().fanInFanOut(),
        "LoRA")));
    if (config().quantizeBase().isPresent()) { // QLoRA: pack the base first; the modules' weights change names
      quantizeBase(sameDiff, g, config().quantizeBase().get());
      Set<String> names = modules.stream().map(LinearModule::name).collect(Collectors.toSet());
      modules = g.linearModules().stream().filter(m -> names.contains(m.name())).toList();
    }
    Random random = new Random(config().seed());
    for (LinearModule m : modules) {
      insert(sameDiff, g, m, random);
    }
  }

  /**
   * Quantises every linear layer but the output heads and the modules to save, leaving those already stored as
   * {@code quantization}.
   *
   * @throws IllegalArgumentException if one is stored in another quantisation; nothing is quantised then
   */
  private void quantizeBase(SameDiff sameDiff, GraphRewriter g, Quantization quantization) {
    Set<String> heads = g.outputHeads();
    Map<String, QuantizedTensor> packed = QuantizedBase.packedWeights(sameDiff);
    List<String> todo = new ArrayList<>();
    for (LinearModule m : g.linearModules()) {
      if (heads.contains(m.name()) || config().modulesToSave().stream()
          .anyMatch(k -> m.name().equals(k) || m.name().endsWith("." + k))) {
        continue;
      }
      QuantizedTensor t = packed.get(m.name());
      if (t == null) {
        todo.add(m.name());
      } else {
        checkArgument(t.quantization().equals(quantization), "module '%s' is stored as %s, not as %s that this "
            + "QLoRA config asks for; quantising it again would compound the error", m.name(), t.quantization(),
            quantization);
      }
    }
    QuantizedBase.quantize(sameDiff, quantization, todo);
  }

  private void insert(SameDiff sameDiff, GraphRewriter g, LinearModule m, Random random) {
    LoraConfig config = config();
    layers.splice(g, m.output(), () -> {
      String scope = scope("lora") + m.name();
      try (NameScope ignored = sameDiff.withNameScope(scope)) { // names the ops; variables are named in full
        LowRank branch = LowRank.build(sameDiff, scope, m, config.r(), config.scaling(), config.dropout(), random,
            training());
        SDVariable delta = sameDiff.getVariable(branch.update());                         // [n, out]
        // named for what it will hold once spliced in: the module's original output
        return new Layer(m, branch, sameDiff.getVariable(m.output()).add(scope + "/base_output", delta).name());
      }
    }, Layer::sum);
  }

  @Override
  protected List<String> parameters() {
    List<String> names = new ArrayList<>();
    for (Layer l : layers.parts()) {
      names.add(l.branch().a());
      names.add(l.branch().b());
    }
    return names;
  }

  /** {@code <module>.lora_A.weight} {@code [r, in]} and {@code <module>.lora_B.weight} {@code [out, r]}. */
  @Override
  protected Map<String, INDArray> ownStateDict() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (Layer l : layers.parts()) {
      l.branch().putStateDict(sd(), l.module().name(), out);
    }
    return out;
  }

  @Override
  protected void loadOwnStateDict(Map<String, INDArray> tensors) {
    for (Layer l : layers.parts()) {
      l.branch().load(sd(), l.module().name(), tensors);
    }
  }

  @Override
  protected void trainingChanged() {
    layers.parts().forEach(l -> l.branch().setTraining(graph(), training()));
  }

  @Override
  protected List<MergedWeight> mergedWeights() {
    List<MergedWeight> merged = new ArrayList<>();
    for (Layer l : layers.parts()) {
      // a quantised weight is dequantised by the graph's own ops: the merged weight stays in full precision
      merged.add(new MergedWeight(l.module().weight(),
          QuantizedBase.weight(sd(), l.module()).addi(l.branch().delta(sd()))));          // [in, out]
    }
    return merged;
  }

  @Override
  protected void unmergeWeights() {
    for (Layer l : layers.parts()) {
      if (!QuantizedBase.isQuantized(l.module())) { // a quantised one got its packed form back, bit for bit
        sd().getArrForVarName(l.module().weight()).subi(l.branch().delta(sd()));
      }
    }
  }

  /**
   * The branches as updates, when this adapter has no modules to save and is not merged: all of its effect is
   * then {@code s · (x·A)·B} on each adapted module (dropout acts only while training, QLoRA only on the base).
   */
  @Override
  public Optional<List<LowRankUpdate>> lowRankUpdates() {
    if (!config().modulesToSave().isEmpty() || isMerged()) {
      return Optional.empty();
    }
    return Optional.of(layers.parts().stream().map(l -> new LowRankUpdate(l.module().name(),
        sd().getArrForVarName(l.branch().a()), sd().getArrForVarName(l.branch().b()), l.branch().scaling()))
        .toList());
  }

  /** The names of the modules this adapter adapted, in graph order. */
  public List<String> adaptedModules() {
    return layers.parts().stream().map(l -> l.module().name()).toList();
  }
}
