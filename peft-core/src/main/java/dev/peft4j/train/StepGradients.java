package dev.peft4j.train;

import static com.google.common.base.Preconditions.checkState;

import java.util.Collection;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Supplier;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One optimizer step's gradients: the gradients of {@code accumulation} micro-batches summed and divided by their
 * number (so a mean loss stays a mean), then scaled down to {@code maxGradNorm} when their global L2 norm exceeds it.
 *
 * @param gradients by parameter name, as the optimizer applies them
 * @param meanLoss  the micro-batches' mean loss
 * @param tokens    the tokens the micro-batches held
 * @param norm      the global L2 norm before clipping (what the history records)
 */
public record StepGradients(Map<String, INDArray> gradients, double meanLoss, long tokens, double norm) {

  /**
   * @param next   the next micro-batch
   * @param pass   one micro-batch's outputs and gradients
   * @param memory collects after each micro-batch, or null
   * @throws IllegalStateException naming a parameter whose gradient does not reach the loss
   */
  static StepGradients accumulate(int accumulation, List<String> names, String loss, double maxGradNorm,
      Supplier<Batch> next, Function<Batch, OutAndGrad> pass, NativeMemoryGuard memory) {
    Map<String, INDArray> gradients = new HashMap<>();
    double lossSum = 0;
    long tokens = 0;
    for (int micro = 0; micro < accumulation; micro++) {
      Batch batch = next.get();
      OutAndGrad result = pass.apply(batch);
      lossSum += result.getOutputs().get(loss).getDouble(0);
      tokens += batch.tokens();
      for (String p : names) {
        INDArray g = result.getGradients().get(p);
        checkState(g != null, "no gradient for '%s': it does not reach the loss '%s'", p, loss);
        gradients.merge(p, g.dup(), INDArray::addi);
      }
      free(result.getGradients().values()); // copied: the pass's own arrays, freed now rather than by the collector
      if (memory != null) {
        memory.afterStep();
      }
    }
    if (accumulation > 1) {
      gradients.values().forEach(g -> g.divi(accumulation));
    }
    double norm = clip(gradients, maxGradNorm);
    return new StepGradients(gradients, lossSum / accumulation, tokens, norm);
  }

  /**
   * Frees the buffers of {@code arrays} now (each distinct closeable array once), instead of when the garbage
   * collector finalises them: a step's gradients once the optimizer and the step listeners are done with them
   * (full fine-tuning of MiniLM: 43 MiB a step, which otherwise piled up until the memory guard collected).
   */
  public static void free(Collection<INDArray> arrays) {
    Map<INDArray, Boolean> distinct = new IdentityHashMap<>();
    arrays.forEach(a -> distinct.put(a, true));
    distinct.keySet().stream().filter(a -> a != null && !a.wasClosed() && a.closeable()).forEach(INDArray::close);
  }

  /**
   * Scales {@code gradients} in place down to the global L2 norm {@code maxGradNorm} when their norm exceeds it (0
   * turns clipping off), as a step of {@link Trainer} does; public for trainers that gather a step's gradients
   * elsewhere (peft-spark's executors).
   *
   * @return the global L2 norm before clipping
   */
  public static double clip(Map<String, INDArray> gradients, double maxGradNorm) {
    double sumSquares = 0;
    for (INDArray g : gradients.values()) {
      double n = g.norm2Number().doubleValue();
      sumSquares += n * n;
    }
    double norm = Math.sqrt(sumSquares);
    if (maxGradNorm > 0 && norm > maxGradNorm) {
      double scale = maxGradNorm / (norm + 1e-6);
      gradients.values().forEach(g -> g.muli(scale));
    }
    return norm;
  }
}
