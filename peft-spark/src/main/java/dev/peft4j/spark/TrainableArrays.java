package dev.peft4j.spark;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The trainable set as plain float arrays, in the order of the names: what the driver broadcasts (weights) and what
 * the executors send back (weighted gradients, or weighted weights in local SGD). Plain arrays, not INDArrays: their
 * Java serialisation is the arrays' bytes and nothing else, and they need no ND4J backend to travel.
 */
final class TrainableArrays {

  private TrainableArrays() {}

  /** Copies of the named arrays of {@code sd}. */
  static LinkedHashMap<String, float[]> snapshot(SameDiff sd, List<String> names) {
    LinkedHashMap<String, float[]> out = new LinkedHashMap<>();
    for (String n : names) {
      out.put(n, floats(sd.getArrForVarName(n)));
    }
    return out;
  }

  /** Copies of {@code arrays} (gradients, by parameter name), each multiplied by {@code weight}. */
  static LinkedHashMap<String, float[]> weighted(Map<String, INDArray> arrays, List<String> names, double weight) {
    LinkedHashMap<String, float[]> out = new LinkedHashMap<>();
    for (String n : names) {
      INDArray a = arrays.get(n);
      checkArgument(a != null, "no gradient for '%s': it does not reach the loss", n);
      // as DataParallel weights each replica's gradient: in the array's type, before the sum
      out.put(n, floats(a.dup().muli(weight)));
    }
    return out;
  }

  /**
   * Sets the named arrays of {@code sd} to {@code values}.
   *
   * @throws IllegalStateException naming the parameter, if {@code sd} has no such parameter or one of another size
   *     (the driver's model and the executors' differ)
   */
  static void assign(SameDiff sd, Map<String, float[]> values) {
    for (Map.Entry<String, float[]> e : values.entrySet()) {
      INDArray target = sd.hasVariable(e.getKey()) ? sd.getArrForVarName(e.getKey()) : null;
      if (target == null || target.length() != e.getValue().length) {
        throw new IllegalStateException(String.format("%s: the driver's trainable parameter '%s' (%s values) %s; "
            + "the model source must build the driver's model", ExecutorModels.executor(), e.getKey(),
            e.getValue().length, target == null ? "is not in this model"
                : "has " + target.length() + " values here, shape " + Arrays.toString(target.shape())));
      }
      target.assign(Nd4j.createFromArray(e.getValue()).reshape(target.shape()));
    }
  }

  /** The elements of {@code a} in row-major order. */
  private static float[] floats(INDArray a) {
    return a.dup('c').reshape(a.length()).toFloatVector();
  }

  /** {@code values} as arrays of the shapes of {@code sd}'s parameters. */
  static Map<String, INDArray> arrays(SameDiff sd, Map<String, float[]> values) {
    Map<String, INDArray> out = new LinkedHashMap<>();
    values.forEach((n, v) -> {
      INDArray like = sd.getArrForVarName(n);
      out.put(n, Nd4j.createFromArray(v).reshape(like.shape()).castTo(like.dataType()));
    });
    return out;
  }
}
