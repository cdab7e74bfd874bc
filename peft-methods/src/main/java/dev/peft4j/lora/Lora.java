package dev.peft4j.lora;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.AbstractMergeableAdapter;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.GraphRewriter.Created;
import dev.peft4j.graph.GraphRewriter.Splice;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.quant.Quantization;
import dev.peft4j.quant.QuantizedBase;
import dev.peft4j.quant.QuantizedTensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;
import org.nd4j.autodiff.samediff.NameScope;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.random.custom.RandomBernoulli;
import org.nd4j.linalg.factory.Nd4j;

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
public final class Lora extends AbstractMergeableAdapter<LoraConfig> {

  /** One adapted linear layer. */
  private record Layer(LinearModule module, String a, String b, String input, String droppedInput,
      String firstMatmulOp, Created created, Splice splice) {}

  private final List<Layer> layers = new ArrayList<>();

  Lora(String name, LoraConfig config) {
    super(name, config);
  }

  @Override
  protected void build(SameDiff sameDiff, GraphRewriter g) {
    List<LinearModule> modules = config().targets().selectLinear(g, "LoRA");
    for (String keep : config().modulesToSave()) {
      for (LinearModule m : modules) {
        checkArgument(!m.name().equals(keep) && !m.name().endsWith("." + keep),
            "module '%s' is both a LoRA target and in modules_to_save", m.name());
      }
    }
    for (LinearModule m : modules) { // a spliced module's original output has been renamed into the peft/ scope
      checkState(!m.output().startsWith("peft/"), "module '%s' carries an enabled adapter ('%s'); disable it first "
          + "(PeftModel.addAdapter does)", m.name(), m.output());
    }
    if (config().quantizeBase().isPresent()) { // QLoRA: pack the base first; the modules' weights change names
      quantizeBase(sameDiff, g, config().quantizeBase().get());
      Set<String> names = modules.stream().map(LinearModule::name).collect(Collectors.toSet());
      modules = g.linearModules().stream().filter(m -> names.contains(m.name())).toList();
    }
    Random random = new Random(config().seed());
    for (LinearModule m : modules) {
      layers.add(insert(sameDiff, g, m, random));
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

  private Layer insert(SameDiff sameDiff, GraphRewriter g, LinearModule m, Random random) {
    LoraConfig config = config();
    DataType dataType = sameDiff.getVariable(m.weight()).dataType();
    long in = m.inFeatures();
    long out = m.outFeatures();
    int r = config.r();
    INDArray a0 = kaimingUniform(random, in, r, dataType);
    String[] names = new String[5]; // a, b, dropped input, first matmul op, sum
    Created created = g.capture(() -> {
      String scope = scope("lora") + m.name();
      try (NameScope ignored = sameDiff.withNameScope(scope)) { // names the ops; variables are named in full

        SDVariable x = sameDiff.getVariable(m.input());                             // [n, in]
        SDVariable a = sameDiff.var(scope + "/lora_A", a0);                                // [in, r]
        SDVariable b = sameDiff.var(scope + "/lora_B", Nd4j.zeros(dataType, r, out));      // [r, out]
        SDVariable dropped = null;
        if (config.dropout() > 0) {
          double keep = 1 - config.dropout();
          SDVariable mask = new RandomBernoulli(sameDiff, sameDiff.shape(x), keep).outputVariable(); // [n, in]
          dropped = x.mul(mask.castTo(dataType)).mul(1 / keep);                      // inverted dropout
        }
        SDVariable xa = (training() && dropped != null ? dropped : x).mmul(a);       // [n, r]
        SDVariable delta = xa.mul(config.scaling()).mmul(b);                         // [n, out]
        // named for what it will hold once spliced in: the module's original output
        SDVariable sum = sameDiff.getVariable(m.output()).add(scope + "/base_output", delta); // [n, out]
        names[0] = a.name();
        names[1] = b.name();
        names[2] = dropped == null ? null : dropped.name();
        names[3] = sameDiff.getVariableOutputOp(xa.name()).getOwnName();
        names[4] = sum.name();
      }
    });
    Splice splice;
    try {
      splice = g.splice(m.output(), names[4], created.ops());
    } catch (RuntimeException e) {
      g.remove(created);
      throw e;
    }
    return new Layer(m, names[0], names[1], m.input(), names[2], names[3], created, splice);
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
      names.add(l.a());
      names.add(l.b());
    }
    return names;
  }

  /** {@code <module>.lora_A.weight} {@code [r, in]} and {@code <module>.lora_B.weight} {@code [out, r]}. */
  @Override
  protected Map<String, INDArray> ownStateDict() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (Layer l : layers) { // ours are A: [in, r], B: [r, out]; HF's the transposes — the one place they turn
      out.put(l.module().name() + ".lora_A.weight", sd().getArrForVarName(l.a()).transpose().dup('c'));
      out.put(l.module().name() + ".lora_B.weight", sd().getArrForVarName(l.b()).transpose().dup('c'));
    }
    return out;
  }

  @Override
  protected void loadOwnStateDict(Map<String, INDArray> tensors) {
    for (Layer l : layers) {
      DataType type = sd().getVariable(l.a()).dataType();
      sd().getArrForVarName(l.a()).assign(tensors.get(l.module().name() + ".lora_A.weight").transpose().castTo(type));
      sd().getArrForVarName(l.b()).assign(tensors.get(l.module().name() + ".lora_B.weight").transpose().castTo(type));
    }
  }

  @Override
  protected void trainingChanged() {
    for (Layer l : layers) {
      if (l.droppedInput() != null) {
        graph().setInput(l.firstMatmulOp(), 0, training() ? l.droppedInput() : l.input());
      }
    }
  }

  @Override
  protected List<MergedWeight> mergedWeights() {
    List<MergedWeight> merged = new ArrayList<>();
    for (Layer l : layers) {
      // a quantised weight is dequantised by the graph's own ops: the merged weight stays in full precision
      merged.add(new MergedWeight(l.module().weight(), QuantizedBase.weight(sd(), l.module()).addi(delta(l))));
    }
    return merged;
  }

  @Override
  protected void unmergeWeights() {
    for (Layer l : layers) {
      if (!QuantizedBase.isQuantized(l.module())) { // a quantised one got its packed form back, bit for bit
        sd().getArrForVarName(l.module().weight()).subi(delta(l));
      }
    }
  }

  /**
   * HF's {@code lora_A} init, {@code kaiming_uniform_(a=√5)} on {@code [r, in]}: bound = √(2/(1+a²))·√(3/in) = 1/√in.
   * Returned as {@code [in, r]}.
   */
  private static INDArray kaimingUniform(Random random, long in, int r, DataType dataType) {
    double bound = 1 / Math.sqrt(in);
    double[] values = new double[Math.toIntExact(in * r)];
    for (int i = 0; i < values.length; i++) {
      values[i] = (2 * random.nextDouble() - 1) * bound;
    }
    return Nd4j.create(values, new long[] {in, r}, DataType.DOUBLE).castTo(dataType);
  }

  /** {@code s · A · B}: the layer's update in W's [in, out] orientation. */
  private INDArray delta(Layer l) {
    return sd().getArrForVarName(l.a()).mmul(sd().getArrForVarName(l.b())).muli(config().scaling());
  }

  /** The names of the modules this adapter adapted, in graph order. */
  public List<String> adaptedModules() {
    return layers.stream().map(l -> l.module().name()).toList();
  }
}
