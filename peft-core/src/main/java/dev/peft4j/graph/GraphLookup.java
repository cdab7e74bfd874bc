package dev.peft4j.graph;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.collect.ImmutableList;
import java.util.LinkedHashSet;
import java.util.List;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.autodiff.samediff.internal.Variable;

/** Lookups in SameDiff's op and variable records that the finder, the editor and the link checker share. */
final class GraphLookup {

  private GraphLookup() {}

  /** @throws IllegalArgumentException if the graph has no op {@code name} */
  static SameDiffOp op(SameDiff sd, String name) {
    SameDiffOp op = sd.getOps().get(name);
    checkArgument(op != null, "no op named '%s' in the graph", name);
    return op;
  }

  /** @throws IllegalArgumentException if the graph has no variable {@code name} */
  static Variable variable(SameDiff sd, String name) {
    Variable v = sd.getVariables().get(name);
    checkArgument(v != null, "no variable named '%s' in the graph", name);
    return v;
  }

  /** Names of the ops that read {@code variable}, in the order SameDiff recorded them, each once. */
  static List<String> consumersOf(SameDiff sd, String variable) {
    List<String> ops = variable(sd, variable).getInputsForOp();
    return ops == null ? List.of() : ImmutableList.copyOf(new LinkedHashSet<>(ops));
  }

  /** A weight or bias: a variable or constant that holds an array. */
  static boolean isParameter(SDVariable v) {
    if (v == null) {
      return false;
    }
    VariableType t = v.getVariableType();
    return (t == VariableType.VARIABLE || t == VariableType.CONSTANT) && v.getArr() != null;
  }

  /** SameDiff leaves unset link lists {@code null}. */
  static <T> List<T> nullToEmpty(List<T> list) {
    return list == null ? List.of() : list;
  }
}
