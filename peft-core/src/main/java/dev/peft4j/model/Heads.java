package dev.peft4j.model;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.Random;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Task heads added on top of an architecture's graph. A head's module ({@code classifier}) is meant to be trained in
 * full beside an adapter: pass it to {@code modulesToSave(...)}, as Hugging Face PEFT users do.
 */
public final class Heads {

  /** The labels placeholder, logits and loss names every head uses. */
  public static final String LABELS = "labels";
  public static final String LOGITS = "logits";
  public static final String PROBABILITIES = "probabilities";
  public static final String LOSS = "loss";
  /** The classification head's module name, as in {@code BertForSequenceClassification}. */
  public static final String CLASSIFIER = "classifier";

  /** How a sequence becomes one vector. */
  public enum Pooling {
    /** The first token's hidden state ({@code [CLS]}). */
    CLS,
    /** The mean of the real tokens' hidden states (sentence-transformers' pooling for MiniLM). */
    MEAN
  }

  private Heads() {}

  /**
   * Adds sequence classification to a {@link Bert} encoder graph.
   * <pre>
   *   pooled = CLS: h[:, 0]  or  MEAN: Σₜ h[:, t]·mask[:, t] / Σₜ mask[:, t]      [b, H]
   *   logits = pooled · W + b      module "classifier", W: [H, labels]             [b, labels]
   *   loss   = mean cross-entropy(softmax(logits), labels)                         labels: [b] INT64 placeholder
   * </pre>
   * W starts normal(0, 0.02) and b at zero, as transformers initialises a new head.
   *
   * @return the same graph, with {@value #LOSS} as its loss variable
   */
  public static SameDiff sequenceClassification(SameDiff encoder, int hiddenSize, int numLabels, Pooling pooling,
      long seed) {
    checkArgument(numLabels >= 2, "a classifier needs at least 2 labels, got %s", numLabels);
    checkArgument(encoder.hasVariable(Bert.LAST_HIDDEN_STATE), "not an encoder graph: no '%s'",
        Bert.LAST_HIDDEN_STATE);
    SameDiff sd = encoder;
    SDVariable hidden = sd.getVariable(Bert.LAST_HIDDEN_STATE);                         // [b, s, H]
    SDVariable pooled = switch (pooling) {
      case CLS -> sd.reshape(sd.gather(hidden, new int[] {0}, 1), -1, hiddenSize);    // [b, H]
      case MEAN -> {
        SDVariable mask = sd.getVariable(Bert.ATTENTION_MASK).castTo(DataType.FLOAT);    // [b, s]
        // Σₜ as a batched matmul [b, 1, s]·[b, s, H]: ND4J M2.1's gradient of the broadcast multiply h·mask[b, s, 1]
        // cost ~15 ms a MiniLM step, the matmul's well under that
        SDVariable summed = sd.reshape(sd.mmul(sd.expandDims(mask, 1), hidden), -1, hiddenSize); // [b, H]
        yield summed.div(mask.sum(true, 1));                                           // [b, H]
      }
    };
    Random random = new Random(seed);
    SDVariable w = sd.var(CLASSIFIER + ".weight", normal(random, 0.02, hiddenSize, numLabels));
    SDVariable b = sd.var(CLASSIFIER + ".bias", Nd4j.zeros(DataType.FLOAT, numLabels));
    SDVariable logits = pooled.mmul(w).add(b).rename(LOGITS);                          // [b, labels]
    sd.nn.softmax(PROBABILITIES, logits, 1);
    SDVariable labels = sd.placeHolder(LABELS, DataType.INT64, -1);                     // [b]
    SDVariable picked = logSoftmax(sd, logits).mul(sd.oneHot(labels, numLabels, -1, 1.0, 0.0, DataType.FLOAT))
        .sum(1);                                                                       // [b]
    picked.mean().neg(LOSS);
    sd.setLossVariables(LOSS);
    sd.setOutputs(LOGITS, PROBABILITIES, LOSS);
    return sd;
  }

  /**
   * {@code x − max − log Σ exp(x − max)} over axis 1 of {@code [n, c]}; SameDiff M2.1's own log_softmax cannot be
   * differentiated (its dimension property fails to deserialise when the gradient graph is built).
   */
  static SDVariable logSoftmax(SameDiff sd, SDVariable x) {
    SDVariable shifted = x.sub(x.max(true, 1));                                        // [n, c]
    return shifted.sub(sd.math.log(sd.math.exp(shifted).sum(true, 1)));
  }

  private static INDArray normal(Random random, double std, long rows, long cols) {
    float[] values = new float[Math.toIntExact(rows * cols)];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) (random.nextGaussian() * std);
    }
    return Nd4j.create(values, new long[] {rows, cols}, 'c');
  }
}
