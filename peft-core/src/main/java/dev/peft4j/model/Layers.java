package dev.peft4j.model;

import java.util.Arrays;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Building blocks shared by the architectures; every parameter is a variable named {@code <module>.<param>}. */
final class Layers {

  private Layers() {}

  /**
   * {@code x · W + b}: x {@code [n, in]}, W {@code [in, out]} as {@code module.weight}, b {@code [out]} as
   * {@code module.bias}, or a shared zero constant {@code zero_bias_<out>} (not a parameter) for a layer without bias.
   *
   * <p>One {@code xw_plus_b} op rather than {@code matmul} + {@code add}: its gradient is built from two separate
   * matmuls ({@code dX = dY·Wᵀ}, {@code dW = Xᵀ·dY}) and a sum, so SameDiff runs only the ones a requested gradient
   * needs. ND4J M2.1's {@code matmul_bp} computes both input gradients in one op, which made every frozen weight's
   * gradient matmul run in a LoRA step (the step cost as much as full fine-tuning).
   *
   * <p>{@code xw_plus_b}'s shape function asks for column-major order, and ND4J M2.1's array cache (the one
   * {@code sd.output} uses) then hands out a row-major array flagged {@code 'f'}, which every element-wise reader
   * takes a slow strided path over (GELU's {@code mul_scalar}s and {@code erf} cost ~1.6× as much). The
   * {@code reshape} to the same shape writes a correctly flagged copy; under a
   * {@link dev.peft4j.graph.RowMajorArrayCache} (PeftModel.output, training) the flag is right already and the copy
   * is cheap.
   *
   * @throws IllegalArgumentException naming both shapes, if the checkpoint's weight is not {@code [in, out]}
   */
  static SDVariable linear(SameDiff sd, Weights w, String module, SDVariable x, long in, long out, boolean bias) {
    SDVariable weight = sd.var(module + ".weight", shaped(w.linearWeight(module), module + ".weight", in, out));
    SDVariable b = bias ? sd.var(module + ".bias", shaped(w.tensor(module + ".bias"), module + ".bias", out))
        : zeroBias(sd, out);
    return sd.nn.linear(x, weight, b).reshape(-1, out);                             // [n, out]
  }

  /**
   * A Hugging Face {@code Conv1D} layer (GPT-2): {@code x · W + b} with W stored {@code [in, out]} in the checkpoint
   * (no transpose), marked with {@link Conv1dModules#mark}; otherwise the same op as {@link #linear}.
   *
   * @throws IllegalArgumentException naming both shapes, if the checkpoint's weight is not {@code [in, out]}
   */
  static SDVariable conv1d(SameDiff sd, Weights w, String module, SDVariable x, long in, long out) {
    SDVariable weight = sd.var(module + ".weight", shaped(w.tensor(module + ".weight"), module + ".weight", in, out));
    SDVariable b = sd.var(module + ".bias", shaped(w.tensor(module + ".bias"), module + ".bias", out));
    Conv1dModules.mark(sd, module);
    return sd.nn.linear(x, weight, b).reshape(-1, out);                             // [n, out]
  }

  private static SDVariable zeroBias(SameDiff sd, long out) {
    String name = "zero_bias_" + out;
    return sd.hasVariable(name) ? sd.getVariable(name) : sd.constant(name, Nd4j.zeros(DataType.FLOAT, out));
  }

  /**
   * {@code array} as FLOAT, checked to have {@code shape}.
   *
   * @throws IllegalArgumentException naming the tensor and both shapes
   */
  static INDArray shaped(INDArray array, String name, long... shape) {
    if (!Arrays.equals(array.shape(), shape)) {
      throw new IllegalArgumentException(String.format("tensor '%s' has shape %s, the config needs %s", name,
          Arrays.toString(array.shape()), Arrays.toString(shape)));
    }
    return array.castTo(DataType.FLOAT);
  }

  /**
   * LayerNorm over the last axis of {@code x [n, h]}: {@code (x − μ) / √(σ² + eps) · γ + β}, with the
   * checkpoint's eps (ND4J's own layer_norm has no eps argument).
   */
  static SDVariable layerNorm(SameDiff sd, Weights w, String module, SDVariable x, long width, double eps) {
    SDVariable mean = x.mean(true, 1);                                              // [n, 1]
    SDVariable centered = x.sub(mean);                                             // [n, h]
    SDVariable variance = centered.mul(centered).mean(true, 1);                    // [n, 1]
    SDVariable normed = centered.div(sd.math.sqrt(variance.add(eps)));             // [n, h]
    SDVariable gamma = sd.var(module + ".weight", shaped(w.tensor(module + ".weight"), module + ".weight", width));
    SDVariable beta = sd.var(module + ".bias", shaped(w.tensor(module + ".bias"), module + ".bias", width));
    return scaleColumns(sd, normed, gamma, mean, width).add(beta);
  }

  /**
   * {@code x [n, h] · γ [h]} (every row scaled by γ), written as an equal-shape multiply by {@code γ} spread to
   * {@code [n, h]} as the outer product {@code 1 [n, 1] · γ [1, h]} ({@code rows} gives n: any {@code [n, 1]}).
   * ND4J 1.0.0-M2.1's gradient of a multiply whose {@code [h]} operand is broadcast over rows took ~10 ms on
   * {@code [1024, 384]} (it tiles), and it computes γ's gradient even when γ is frozen; an equal-shape multiply's
   * gradient takes well under 1 ms, and the outer product is differentiated only when γ trains (a thin matmul).
   */
  static SDVariable scaleColumns(SameDiff sd, SDVariable x, SDVariable gamma, SDVariable rows, long width) {
    SDVariable spread = sd.onesLike(rows).mmul(sd.reshape(gamma, 1, width));       // [n, h]
    return x.mul(spread);
  }

  /** RMSNorm over the last axis of {@code x [n, h]}: {@code x / √(mean(x²) + eps) · γ}. */
  static SDVariable rmsNorm(SameDiff sd, Weights w, String module, SDVariable x, long width, double eps) {
    return rmsNorm(sd, w, module, x, width, eps, false);
  }

  /**
   * RMSNorm scaling by {@code γ}, or by {@code 1 + γ} when {@code plusOne} (Gemma, whose stored weight starts at 0);
   * the variable {@code module.weight} holds the checkpoint's value either way.
   */
  static SDVariable rmsNorm(SameDiff sd, Weights w, String module, SDVariable x, long width, double eps,
      boolean plusOne) {
    SDVariable rms = sd.math.sqrt(x.mul(x).mean(true, 1).add(eps));               // [n, 1]
    SDVariable gamma = sd.var(module + ".weight", shaped(w.tensor(module + ".weight"), module + ".weight", width));
    return scaleColumns(sd, x.div(rms), plusOne ? gamma.add(1.0) : gamma, rms, width);
  }

  /** The exact GELU of transformers' {@code "gelu"}: {@code ½x(1 + erf(x/√2))}. */
  static SDVariable gelu(SameDiff sd, SDVariable x) {
    return x.mul(0.5).mul(sd.math.erf(x.mul(1 / Math.sqrt(2))).add(1.0));
  }

  /**
   * transformers' {@code "gelu_new"} (GPT-2), the tanh approximation:
   * {@code ½x(1 + tanh(√(2/π)·(x + 0.044715·x³)))}.
   */
  static SDVariable geluTanh(SameDiff sd, SDVariable x) {
    SDVariable inner = x.add(x.mul(x).mul(x).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
    return x.mul(0.5).mul(sd.math.tanh(inner).add(1.0));
  }

  /** A 1-D INT64 constant. */
  static SDVariable longs(SameDiff sd, long... values) {
    return sd.constant(Nd4j.createFromArray(values));
  }

  /** The {@code axis}-th entry of {@code shape} as a 1-element INT64 vector. */
  static SDVariable dimension(SameDiff sd, SDVariable shape, int axis) {
    return sd.stridedSlice(shape, new long[] {axis}, new long[] {axis + 1}, new long[] {1});
  }
}
