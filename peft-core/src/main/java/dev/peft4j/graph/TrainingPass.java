package dev.peft4j.graph;

import java.lang.reflect.Method;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.config.ExecutionResult;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Runs a graph (a gradient function) as a training pass, so that its listeners see {@link Operation#TRAINING}.
 *
 * <p>ND4J 1.0.0-M2.1 has no public call for that: its protected {@code SameDiff.batchOutputHelper} is reached by
 * reflection. Where it is missing (another ND4J), {@link SameDiff#output(Map, String...)} runs the same ops and
 * reports {@code INFERENCE} to listeners.
 */
public final class TrainingPass {

  private static final Method BATCH_OUTPUT = batchOutputHelper();

  private TrainingPass() {}

  /** The values of {@code names} after one training pass of {@code sd} over {@code placeholders}. */
  public static Map<String, INDArray> run(SameDiff sd, Map<String, INDArray> placeholders, String... names) {
    if (BATCH_OUTPUT != null) {
      try {
        ExecutionResult result = (ExecutionResult) BATCH_OUTPUT.invoke(sd, placeholders, null, Operation.TRAINING,
            names);
        return result.hasValues() ? valuesOf(result) : ExecutionResult.unpack(result.getOutputs());
      } catch (ReflectiveOperationException e) {
        if (e.getCause() instanceof RuntimeException r) {
          throw r;
        }
        throw new IllegalStateException(e);
      }
    }
    return sd.output(placeholders, names);
  }

  /** Whether this ND4J has the protected method that {@link #run} reaches. */
  public static boolean found() {
    return BATCH_OUTPUT != null;
  }

  private static Map<String, INDArray> valuesOf(ExecutionResult result) {
    Map<String, INDArray> values = new HashMap<>();
    result.getValueOutputs().forEach((k, v) -> values.put(k, v.getTensorValue()));
    return values;
  }

  private static Method batchOutputHelper() {
    try {
      Method m = SameDiff.class.getDeclaredMethod("batchOutputHelper", Map.class, List.class, Operation.class,
          String[].class);
      m.setAccessible(true);
      return m;
    } catch (ReflectiveOperationException | RuntimeException e) {
      return null;
    }
  }
}
