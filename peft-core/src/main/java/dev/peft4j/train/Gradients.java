package dev.peft4j.train;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.graph.BatchedMatmulBlasThreads;
import dev.peft4j.graph.RowMajorArrayCache;
import dev.peft4j.graph.TrainingPass;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One forward and backward pass of a SameDiff graph, like {@link SameDiff#calculateGradientsAndOutputs}, but with
 * SameDiff's array cache switched on (as a {@link RowMajorArrayCache}), so that the step reuses the buffers of arrays
 * it no longer needs.
 *
 * <p>ND4J 1.0.0-M2.1's {@code calculateGradientsAndOutputs} turns the cache off for the gradient graph: every
 * activation and every intermediate gradient of a step is then a fresh off-heap buffer that lives until the garbage
 * collector finalises its owner, and the process grows by the whole step's arrays each step (the reason for
 * {@link NativeMemoryGuard}). With the cache on, the session hands an array back to its per-shape cache as soon as the
 * last op that reads it has run, and the next op of that shape takes it: on all-MiniLM-L6-v2 at batch 8 × 128 the
 * peak resident memory of a LoRA q,v step fell from 4.5 GB to 1.3 GB (a full fine-tuning step from 4.6 to 1.9 GB).
 * The values are the same: {@code GradientsTest} checks them bit for bit against ND4J's own call.
 *
 * <p>The arrays returned (outputs and gradients) are never cached or reused by SameDiff; they stay valid after the
 * next call. Listeners of {@code sd} see the pass with {@link Operation#TRAINING}, as with ND4J's own call.
 *
 * <p>The pass runs through {@link TrainingPass} (which reaches a protected method of ND4J M2.1, with a fallback), on a
 * session prepared by {@link RowMajorArrayCache#install}.
 */
public final class Gradients {

  private Gradients() {}

  /**
   * The values of {@code outputs} and the gradients of the loss with respect to {@code variables}, for one batch.
   *
   * @param sd the graph, with its loss variables set
   * @param placeholders the batch
   * @param outputs variables whose values to return (the loss, typically); may be empty
   * @param variables variables whose gradients to return; one that does not reach the loss has no entry
   */
  public static OutAndGrad of(SameDiff sd, Map<String, INDArray> placeholders, Collection<String> outputs,
      Collection<String> variables) {
    return of(sd, placeholders, outputs, variables, null);
  }

  /** As {@link #of(SameDiff, Map, Collection, Collection)}, allocating through {@code cache} when not null. */
  static OutAndGrad of(SameDiff sd, Map<String, INDArray> placeholders, Collection<String> outputs,
      Collection<String> variables, RowMajorArrayCache cache) {
    checkArgument(!outputs.isEmpty() || !variables.isEmpty(), "neither outputs nor gradients were asked for");
    GradientFunction.prepare(sd);
    SameDiff grad = sd.getFunction("grad");
    List<String> names = new ArrayList<>(outputs);
    Map<String, String> gradientNames = new HashMap<>();
    for (String v : variables) {
      checkArgument(sd.hasVariable(v), "no variable '%s' in the graph", v);
      SDVariable g = sd.getVariable(v).getGradient();
      if (g != null) {
        gradientNames.put(v, g.name());
        names.add(g.name());
      }
    }
    grad.setEnableCache(true);
    grad.setListeners(sd.getListeners());
    BatchedMatmulBlasThreads.install(grad);
    RowMajorArrayCache.install(grad, cache);
    Map<String, INDArray> values = TrainingPass.run(grad, placeholders, names.toArray(new String[0]));
    RowMajorArrayCache.reclaim(grad, values.values()); // the next step reuses what this one left in the session
    Map<String, INDArray> outs = new HashMap<>();
    for (String o : outputs) {
      outs.put(o, values.get(o));
    }
    Map<String, INDArray> grads = new HashMap<>();
    gradientNames.forEach((v, g) -> grads.put(v, values.get(g)));
    return new OutAndGrad(outs, grads);
  }

  /** For tests: whether both reflective paths were found in this ND4J. */
  static boolean internalsFound() {
    return TrainingPass.found() && RowMajorArrayCache.install(SameDiff.create());
  }
}
