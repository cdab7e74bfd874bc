package dev.peft4j.model;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.graph.ArrayHolders;
import java.util.Random;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A multilayer-perceptron classifier with Hugging Face-style module names; the small model of the examples,
 * benchmarks and tests.
 * <pre>
 *   input: [n, in]                                      placeholder "input"
 *   h₀ = input;  hᵢ₊₁ = tanh(hᵢ · Wᵢ + bᵢ)              module "layers.i.fc", Wᵢ: [in or hidden, hidden]
 *   logits = h_L · W + b                                module "head",        W: [hidden, classes]
 *   loss = mean softmax cross-entropy(labels, logits)   placeholder "labels": [n, classes] one-hot
 * </pre>
 * Weights and biases start like PyTorch's {@code nn.Linear}: uniform in ±1/√fan_in, from {@code seed}.
 */
public final class Mlp {

  /** Names of the graph's placeholders and outputs. */
  public static final String INPUT = "input";
  public static final String LABELS = "labels";
  public static final String LOGITS = "logits";
  public static final String PROBABILITIES = "probabilities";
  public static final String LOSS = "loss";

  private Mlp() {}

  /**
   * @throws IllegalArgumentException if a size is not positive
   */
  public static SameDiff classifier(int inputs, int hidden, int layers, int classes, DataType dataType, long seed) {
    checkArgument(inputs > 0 && hidden > 0 && layers > 0 && classes > 1,
        "need inputs, hidden, layers > 0 and classes > 1, got %s, %s, %s, %s", inputs, hidden, layers, classes);
    Random random = new Random(seed);
    SameDiff sd = ArrayHolders.keepEachArrayOnce(SameDiff.create()); // no hidden second copy of each weight
    SDVariable h = sd.placeHolder(INPUT, dataType, -1, inputs);              // [n, in]
    SDVariable labels = sd.placeHolder(LABELS, dataType, -1, classes);       // [n, classes]
    long width = inputs;
    for (int i = 0; i < layers; i++) {
      h = sd.math.tanh(linear(sd, "layers." + i + ".fc", h, width, hidden, dataType, random)); // [n, hidden]
      width = hidden;
    }
    SDVariable logits = linear(sd, "head", h, width, classes, dataType, random).rename(LOGITS); // [n, classes]
    sd.nn.softmax(PROBABILITIES, logits, 1);
    sd.loss.softmaxCrossEntropy(LOSS, labels, logits, null);
    sd.setLossVariables(LOSS);
    sd.setOutputs(LOGITS, PROBABILITIES, LOSS);
    return sd;
  }

  /** {@code x · W + b} with {@code W: [in, out]} named {@code module.weight} and {@code b: [out]}. */
  static SDVariable linear(SameDiff sd, String module, SDVariable x, long in, long out, DataType dataType,
      Random random) {
    double bound = 1 / Math.sqrt(in);
    SDVariable w = sd.var(module + ".weight", uniform(random, bound, dataType, in, out));
    SDVariable b = sd.var(module + ".bias", uniform(random, bound, dataType, out));
    return x.mmul(w).add(b);
  }

  /** An array of {@code shape} with values uniform in ±bound drawn from {@code random}. */
  public static INDArray uniform(Random random, double bound, DataType dataType, long... shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    double[] values = new double[Math.toIntExact(n)];
    for (int i = 0; i < values.length; i++) {
      values[i] = (2 * random.nextDouble() - 1) * bound;
    }
    return Nd4j.create(values, shape, DataType.DOUBLE).castTo(dataType);
  }
}
