package dev.peft4j.lora;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.random.custom.RandomBernoulli;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The low-rank branch that LoRA and DoRA share, beside one linear layer: {@code s · (dropout(x)·A)·B}.
 * <pre>
 *   x: [n, in]   A: [in, r] (Kaiming-uniform)   B: [r, out] (zero)   update: [n, out]
 * </pre>
 * Built inside the caller's {@link GraphRewriter#capture}; the caller adds the update to the module's output (LoRA)
 * or rescales it first (DoRA). Package-private: LoRA's and DoRA's own.
 */
final class LowRank {

  private final String a;
  private final String b;
  private final String input;
  private final String droppedInput;
  private final String firstMatmulOp;
  private final String update;
  private final double scaling;

  private LowRank(String a, String b, String input, String droppedInput, String firstMatmulOp, String update,
      double scaling) {
    this.a = a;
    this.b = b;
    this.input = input;
    this.droppedInput = droppedInput;
    this.firstMatmulOp = firstMatmulOp;
    this.update = update;
    this.scaling = scaling;
  }

  /**
   * Refuses targets that carry an enabled adapter already, or that are also in {@code modules_to_save}; called
   * before anything is built.
   *
   * @throws IllegalArgumentException naming the module in {@code modules_to_save}
   * @throws IllegalStateException naming the module that carries an enabled adapter
   */
  public static void checkTargets(List<LinearModule> modules, List<String> modulesToSave, String method) {
    for (String keep : modulesToSave) {
      for (LinearModule m : modules) {
        checkArgument(!m.name().equals(keep) && !m.name().endsWith("." + keep),
            "module '%s' is both a %s target and in modules_to_save", m.name(), method);
      }
    }
    for (LinearModule m : modules) { // a spliced module's original output has been renamed into the peft/ scope
      checkState(!m.output().startsWith("peft/"), "module '%s' carries an enabled adapter ('%s'); disable it first "
          + "(PeftModel.addAdapter does)", m.name(), m.output());
    }
  }

  /** The most values one initialised matrix may hold: the largest Java array, 2³¹ − 9. */
  static final long MAX_INIT_VALUES = Integer.MAX_VALUE - 8;

  /**
   * Creates {@code scope/lora_A}, {@code scope/lora_B}, the dropout mask (when {@code dropout > 0}) and the update
   * {@code s · (x·A)·B}, reading the dropped input when {@code training}. Call inside a name scope and a capture.
   */
  public static LowRank build(SameDiff sd, String scope, LinearModule m, int r, double scaling, double dropout,
      Random random, boolean training) {
    DataType dataType = sd.getVariable(m.weight()).dataType();
    // A's init is drawn into one Java array: refuse a size beyond it by name, not by an overflow or OutOfMemoryError
    checkArgument((long) r * m.inFeatures() <= MAX_INIT_VALUES, "r = %s on module '%s' (in %s) needs r·in = %s "
        + "values in lora_A; at most %s are supported", r, m.name(), m.inFeatures(), (long) r * m.inFeatures(),
        MAX_INIT_VALUES);
    INDArray a0 = kaimingUniform(random, m.inFeatures(), r, dataType);
    SDVariable x = sd.getVariable(m.input());                                               // [n, in]
    SDVariable a = sd.var(scope + "/lora_A", a0);                                          // [in, r]
    SDVariable b = sd.var(scope + "/lora_B", Nd4j.zeros(dataType, r, m.outFeatures()));    // [r, out]
    SDVariable dropped = null;
    if (dropout > 0) {
      double keep = 1 - dropout;
      SDVariable mask = new RandomBernoulli(sd, sd.shape(x), keep).outputVariable();      // [n, in]
      dropped = x.mul(mask.castTo(dataType)).mul(1 / keep);                              // inverted dropout
    }
    SDVariable xa = (training && dropped != null ? dropped : x).mmul(a);                 // [n, r]
    SDVariable update = xa.mul(scaling).mmul(b);                                         // [n, out]
    return new LowRank(a.name(), b.name(), x.name(), dropped == null ? null : dropped.name(),
        sd.getVariableOutputOp(xa.name()).getOwnName(), update.name(), scaling);
  }

  /** The trainable {@code [in, r]} matrix A. */
  public String a() {
    return a;
  }

  /** The trainable {@code [r, out]} matrix B. */
  public String b() {
    return b;
  }

  /** The branch's input with dropout applied (training only), or {@code null} without dropout. */
  public String droppedInput() {
    return droppedInput;
  }

  /** The {@code [n, out]} update {@code s · (dropout(x)·A)·B}. */
  public String update() {
    return update;
  }

  /** s: alpha / r, or alpha / √r with rsLoRA. */
  public double scaling() {
    return scaling;
  }

  /** Points the branch at the dropped input while training, at the plain input otherwise. */
  public void setTraining(GraphRewriter g, boolean training) {
    if (droppedInput != null) {
      g.setInput(firstMatmulOp, 0, training ? droppedInput : input);
    }
  }

  /** {@code s · A · B}: the update in W's {@code [in, out]} orientation. */
  public INDArray delta(SameDiff sd) {
    return sd.getArrForVarName(a).mmul(sd.getArrForVarName(b)).muli(scaling);
  }

  /** Puts {@code <module>.lora_A.weight [r, in]} and {@code <module>.lora_B.weight [out, r]} into {@code out}. */
  public void putStateDict(SameDiff sd, String module, Map<String, INDArray> out) {
    // ours are A: [in, r], B: [r, out]; HF's the transposes — the one place they turn
    out.put(module + ".lora_A.weight", sd.getArrForVarName(a).transpose().dup('c'));
    out.put(module + ".lora_B.weight", sd.getArrForVarName(b).transpose().dup('c'));
  }

  /** Reads what {@link #putStateDict} writes. */
  public void load(SameDiff sd, String module, Map<String, INDArray> tensors) {
    DataType type = sd.getVariable(a).dataType();
    sd.getArrForVarName(a).assign(tensors.get(module + ".lora_A.weight").transpose().castTo(type));
    sd.getArrForVarName(b).assign(tensors.get(module + ".lora_B.weight").transpose().castTo(type));
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
}
