package dev.peft4j.graph;

import java.util.HashSet;
import java.util.Set;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Copies of a graph that compute with the original's weights: the segments of {@code train.CheckpointedGradients}, the
 * replicas of {@code train.DataParallel} and generation's prefill and decode graphs.
 */
public final class GraphCopies {

  private GraphCopies() {}

  /**
   * A copy of {@code sd}'s ops and variables ({@link SameDiff#invokeGraphOn}, as SameDiff copies a graph for its
   * gradient function; FlatBuffers' {@code dup} loses spliced outputs) whose weights are the original's arrays.
   */
  public static SameDiff copy(SameDiff sd) {
    SameDiff copy = SameDiff.create();
    sd.invokeGraphOn(copy);
    return copy;
  }

  /**
   * Points the copy's weights and constants (and its gradient function's) at the original's arrays: a weight array
   * replaced in the original since the copy was made (a merge, a load) is then shared again.
   */
  public static void shareArrays(SameDiff original, SameDiff copy) {
    SameDiff grad = copy.hasGradientFunction() ? copy.getFunction("grad") : null;
    for (SDVariable v : original.variables()) {
      VariableType type = v.getVariableType();
      if (type != VariableType.VARIABLE && type != VariableType.CONSTANT) {
        continue;
      }
      INDArray arr = original.getArrForVarName(v.name());
      if (arr == null) {
        continue;
      }
      if (copy.hasVariable(v.name()) && copy.getArrForVarName(v.name()) != arr) {
        copy.setArrayForVariable(v.name(), arr);
      }
      if (grad != null && grad.hasVariable(v.name()) && grad.getArrForVarName(v.name()) != arr) {
        grad.setArrayForVariable(v.name(), arr);
      }
    }
  }

  /** What copies were made from: the ops, the trainable variables and the loss; copies are remade when it changes. */
  public record Structure(Set<String> ops, Set<String> trainable, String loss) {
    public static Structure of(SameDiff sd, String loss) {
      Set<String> trainable = new HashSet<>();
      for (SDVariable v : sd.variables()) {
        if (v.getVariableType() == VariableType.VARIABLE) {
          trainable.add(v.name());
        }
      }
      return new Structure(GraphRewriter.of(sd).opNames(), trainable, loss);
    }
  }
}
