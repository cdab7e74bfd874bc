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
   * gradient function; FlatBuffers' {@code dup} loses spliced outputs) whose weights and constants are the original's
   * arrays. Copying duplicates them on the way ({@code invokeGraphOn} gives each variable a new array); the copy holds
   * the originals before it is returned, so those duplicates are garbage by then.
   */
  public static SameDiff copy(SameDiff sd) {
    SameDiff copy = ArrayHolders.keepEachArrayOnce(SameDiff.create());
    sd.invokeGraphOn(copy);
    shareArrays(sd, copy);
    return copy;
  }

  /**
   * Makes the copy (and its gradient function) hold the original's weight and constant arrays themselves
   * ({@link ArrayHolders#hold}): a weight array replaced in the original since the copy was made (a merge, a load)
   * is then shared again. Nothing is copied; where the copy already holds the original's array nothing changes.
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
        ArrayHolders.hold(copy, v.name(), arr);
      }
      if (grad != null && grad.hasVariable(v.name()) && grad.getArrForVarName(v.name()) != arr) {
        ArrayHolders.hold(grad, v.name(), arr);
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
