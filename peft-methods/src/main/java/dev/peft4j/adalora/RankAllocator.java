package dev.peft4j.adalora;

import dev.peft4j.adalora.AdaLora.Layer;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * AdaLoRA's budget schedule and importance-driven masking, as Hugging Face PEFT's {@code RankAllocator} and
 * {@code AdaLoraModel.update_and_allocate}.
 * <pre>
 *   sensitivity  I(p) = |p ⊙ ∇p|                       for every entry of A, E, B (after the optimizer step)
 *   smoothed     Ī ← β₁·Ī + (1 − β₁)·I                  uncertainty  Ū ← β₂·Ū + (1 − β₂)·|I − Ī|
 *   score of triplet i = Ī·Ū of E_i + mean over A's row i + mean over B's column i  (HF's orientation)
 *   budget(t) = init_bgt                                  t ≤ tinit
 *             = ⌊(init_bgt − target_bgt)·(1 − (t − tinit)/(T − tinit))³ + target_bgt⌋   tinit &lt; t ≤ T
 *             = target_bgt                                t &gt; T           T = total_step − tfinal
 *   masking: E_i ← 0 for every triplet whose score is ≤ the (init_bgt − budget)-th smallest score, every deltaT steps
 *            while tinit &lt; t &lt; T, at t = T (the final pattern), and with that fixed pattern at every t &gt; T.
 * </pre>
 * init_bgt counts the triplets of all modules, target_bgt = target_r × modules. Scores are computed in double.
 */
final class RankAllocator {

  private final AdaLora adapter;
  private final int initBudget;
  private final int targetBudget;
  private final Map<String, INDArray> expAvgIpt = new HashMap<>();
  private final Map<String, INDArray> expAvgUnc = new HashMap<>();

  RankAllocator(AdaLora adapter) {
    this.adapter = adapter;
    this.initBudget = adapter.layers().stream().mapToInt(l -> l.positions().length).sum();
    this.targetBudget = adapter.config().targetR() * adapter.layers().size();
  }

  /** HF's {@code budget_schedule(step)[0]}. */
  int budget(int step) {
    AdaLoraConfig c = adapter.config();
    if (step <= c.tinit()) {
      return initBudget;
    }
    if (step > c.totalStep() - c.tfinal()) {
      return targetBudget;
    }
    double mulCoeff = 1 - (double) (step - c.tinit()) / (c.totalStep() - c.tfinal() - c.tinit());
    return (int) ((initBudget - targetBudget) * (mulCoeff * mulCoeff * mulCoeff) + targetBudget);
  }

  /** HF's {@code budget_schedule(step)[1]}: whether the budgeting phase masks at {@code step}. */
  private boolean masksAt(int step) {
    AdaLoraConfig c = adapter.config();
    return step > c.tinit() && (step > c.totalStep() - c.tfinal() || step % c.deltaT() == 0);
  }

  /**
   * One call of HF's {@code update_and_allocate(step)}; returns the new rank pattern when it masked to a budget,
   * {@code null} otherwise.
   */
  Map<String, List<Boolean>> updateAndAllocate(int step, Map<String, INDArray> gradients) {
    AdaLoraConfig c = adapter.config();
    int last = c.totalStep() - c.tfinal();
    if (step < last) {
      updateImportance(gradients);
      return masksAt(step) ? maskToBudget(budget(step)) : null;
    }
    if (step == last) {
      Map<String, List<Boolean>> pattern = maskToBudget(budget(step));
      expAvgIpt.clear();
      expAvgUnc.clear();
      return pattern;
    }
    maskWithPattern(c.rankPattern());
    return null;
  }

  private void updateImportance(Map<String, INDArray> gradients) {
    AdaLoraConfig c = adapter.config();
    SameDiff sd = adapter.graphOf();
    for (Layer l : adapter.layers()) {
      if (l.isEmpty()) {
        continue;
      }
      for (String p : List.of(l.a(), l.e(), l.b())) {
        INDArray value = sd.getArrForVarName(p).castTo(DataType.DOUBLE);
        INDArray ipt = Transforms.abs(value.mul(gradients.get(p).castTo(DataType.DOUBLE)), false);
        INDArray avg = expAvgIpt.computeIfAbsent(p, k -> ipt.like().assign(0));
        INDArray unc = expAvgUnc.computeIfAbsent(p, k -> ipt.like().assign(0));
        avg.muli(c.beta1()).addi(ipt.mul(1 - c.beta1()));
        unc.muli(c.beta2()).addi(Transforms.abs(ipt.sub(avg), false).muli(1 - c.beta2()));
      }
    }
  }

  /** Triplet scores of each layer, in its array order. */
  private Map<Layer, double[]> scores() {
    Map<Layer, double[]> out = new LinkedHashMap<>();
    for (Layer l : adapter.layers()) {
      if (l.isEmpty()) {
        out.put(l, new double[0]);
        continue;
      }
      INDArray a = score(l.a());  // [in, r]
      INDArray e = score(l.e());  // [1, r]
      INDArray b = score(l.b());  // [r, out]
      INDArray sum = e.reshape(-1).add(a.mean(0).reshape(-1)).addi(b.mean(1).reshape(-1)); // [r]
      out.put(l, sum.toDoubleVector());
    }
    return out;
  }

  private INDArray score(String p) {
    INDArray avg = expAvgIpt.get(p);
    if (avg == null) { // no step was scored yet: every entry scores 0, as HF's zero-initialised averages
      return adapter.graphOf().getArrForVarName(p).castTo(DataType.DOUBLE).like().assign(0);
    }
    return avg.mul(expAvgUnc.get(p));
  }

  private Map<String, List<Boolean>> maskToBudget(int budget) {
    Map<Layer, double[]> scores = scores();
    double[] all = scores.values().stream().flatMapToDouble(Arrays::stream).sorted().toArray();
    int k = initBudget - budget;
    // torch.kthvalue(k) is the k-th smallest; HF masks every score ≤ it. k ≤ 0 (no triplet to drop) masks nothing.
    double threshold = k <= 0 ? Double.NEGATIVE_INFINITY : all[Math.min(k, all.length) - 1];
    Map<String, List<Boolean>> pattern = new LinkedHashMap<>();
    for (Map.Entry<Layer, double[]> entry : scores.entrySet()) {
      Layer l = entry.getKey();
      double[] s = entry.getValue();
      Boolean[] keep = new Boolean[adapter.config().initR()];
      Arrays.fill(keep, false);
      for (int j = 0; j < s.length; j++) {
        boolean kept = !(s[j] <= threshold);
        keep[l.positions()[j]] = kept;
        if (!kept) {
          adapter.graphOf().getArrForVarName(l.e()).putScalar(0, j, 0.0);
        }
      }
      pattern.put(l.module().name() + ".lora_E", List.of(keep));
    }
    return pattern;
  }

  private void maskWithPattern(Map<String, List<Boolean>> pattern) {
    for (Layer l : adapter.layers()) {
      List<Boolean> keep = pattern.get(l.module().name() + ".lora_E");
      if (keep == null || l.isEmpty()) {
        continue;
      }
      INDArray e = adapter.graphOf().getArrForVarName(l.e());
      for (int j = 0; j < l.positions().length; j++) {
        if (!keep.get(l.positions()[j])) {
          e.putScalar(0, j, 0.0);
        }
      }
    }
  }
}
