package dev.peft4j.train;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One micro-batch: the placeholder arrays the graph's loss needs, and how many tokens (or examples) it holds, which
 * the trainer uses for its throughput figures.
 *
 * @param inputs placeholder name → array
 * @param tokens tokens in the batch (batch × sequence length for text, batch size otherwise)
 */
public record Batch(Map<String, INDArray> inputs, long tokens) {

  public Batch {
    checkArgument(inputs != null && !inputs.isEmpty(), "a batch needs at least one input array");
    checkArgument(tokens > 0, "tokens must be > 0, got %s", tokens);
    inputs = Map.copyOf(inputs);
  }

  /** A batch whose token count is the leading dimension of {@code tokensFrom} (e.g. the batch size). */
  public static Batch of(Map<String, INDArray> inputs, String tokensFrom) {
    INDArray a = inputs.get(tokensFrom);
    checkArgument(a != null, "no input named '%s' in %s", tokensFrom, inputs.keySet());
    return new Batch(inputs, a.rank() == 0 ? 1 : a.size(0));
  }
}
