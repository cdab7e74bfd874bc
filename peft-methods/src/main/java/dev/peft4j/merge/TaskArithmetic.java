package dev.peft4j.merge;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The combinations of task tensors T₁…Tₙ (all of one shape) with weights wᵢ, as Hugging Face PEFT's
 * {@code merge_utils}: task arithmetic, magnitude pruning, TIES and DARE. Works on double arrays.
 */
final class TaskArithmetic {

  private TaskArithmetic() {}

  static INDArray combine(String kind, List<INDArray> tensors, List<Double> weights, Double density,
      WeightedAdapter.MajoritySign sign, Random random) {
    return switch (kind) {
      case "LINEAR" -> weightedSum(tensors, weights);
      case "MAGNITUDE_PRUNE" -> weightedSum(tensors.stream().map(t -> keepLargest(t, density)).toList(), weights);
      case "TIES" -> disjointMerge(tensors.stream().map(t -> keepLargest(t, density)).toList(), weights, sign);
      case "DARE_LINEAR" -> weightedSum(tensors.stream().map(t -> dropAtRandom(t, density, random)).toList(),
          weights);
      case "DARE_TIES" -> disjointMerge(tensors.stream().map(t -> dropAtRandom(t, density, random)).toList(),
          weights, sign);
      default -> throw new IllegalArgumentException("unknown combination " + kind);
    };
  }

  /** Σ wᵢ Tᵢ. */
  static INDArray weightedSum(List<INDArray> tensors, List<Double> weights) {
    INDArray sum = tensors.get(0).mul(weights.get(0));
    for (int i = 1; i < tensors.size(); i++) {
      sum.addi(tensors.get(i).mul(weights.get(i)));
    }
    return sum;
  }

  /** T with all but its ⌊density·n⌋ largest-magnitude entries set to 0 (no pruning at density ≥ 1). */
  static INDArray keepLargest(INDArray t, double density) {
    if (density >= 1) {
      return t.dup();
    }
    double[] values = t.dup('c').data().asDouble();
    int k = (int) (density * values.length);
    Integer[] order = new Integer[values.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (x, y) -> Double.compare(Math.abs(values[y]), Math.abs(values[x])));
    double[] kept = new double[values.length];
    for (int i = 0; i < k; i++) {
      kept[order[i]] = values[order[i]];
    }
    return Nd4j.create(kept, t.shape(), DataType.DOUBLE);
  }

  /** DARE: each entry kept with probability density and then divided by it, else 0. */
  static INDArray dropAtRandom(INDArray t, double density, Random random) {
    if (density >= 1) {
      return t.dup();
    }
    double[] values = t.dup('c').data().asDouble();
    for (int i = 0; i < values.length; i++) {
      values[i] = random.nextDouble() < density ? values[i] / density : 0;
    }
    return Nd4j.create(values, t.shape(), DataType.DOUBLE);
  }

  /**
   * TIES' sign election and disjoint mean: per entry, the elected sign is that of Σᵢ Tᵢ (TOTAL) or of Σᵢ sign(Tᵢ)
   * (FREQUENCY), 0 counting as positive; the result is Σᵢ wᵢTᵢ over the i whose sign(Tᵢ) equals it, divided by
   * their number (at least 1).
   */
  static INDArray disjointMerge(List<INDArray> tensors, List<Double> weights, WeightedAdapter.MajoritySign method) {
    long n = tensors.get(0).length();
    double[][] values = tensors.stream().map(t -> t.dup('c').data().asDouble()).toArray(double[][]::new);
    double[] out = new double[(int) n];
    for (int e = 0; e < n; e++) {
      double votes = 0;
      for (double[] v : values) {
        votes += method == WeightedAdapter.MajoritySign.TOTAL ? v[e] : Math.signum(v[e]);
      }
      double elected = votes >= 0 ? 1 : -1;
      double sum = 0;
      int agreeing = 0;
      for (int i = 0; i < values.length; i++) {
        if (Math.signum(values[i][e]) == elected) {
          sum += values[i][e] * weights.get(i);
          agreeing++;
        }
      }
      out[e] = sum / Math.max(1, agreeing);
    }
    return Nd4j.create(out, tensors.get(0).shape(), DataType.DOUBLE);
  }
}
