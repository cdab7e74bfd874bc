package dev.peft4j.graph;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;
import static dev.peft4j.graph.GraphLookup.consumersOf;
import static dev.peft4j.graph.GraphLookup.op;
import static dev.peft4j.graph.GraphLookup.variable;

import com.google.common.collect.ImmutableSet;
import dev.peft4j.graph.GraphRewriter.Built;
import dev.peft4j.graph.GraphRewriter.Created;
import dev.peft4j.graph.GraphRewriter.Splice;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;
import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.autodiff.samediff.internal.Variable;
import org.nd4j.linalg.api.ops.BaseOp;
import org.nd4j.linalg.api.ops.DynamicCustomOp;

/**
 * Changes one graph: records and removes what graph-building code created, moves op↔variable links (both sides of
 * each), splices branches in and out, freezes and unfreezes. Every change ends with {@link #invalidate()}.
 */
final class GraphEdits {

  private static final String GRAD_FUNCTION = "grad";

  private final SameDiff sd;

  GraphEdits(SameDiff sd) {
    this.sd = sd;
  }

  // ---------------------------------------------------------------------------------------------- capture / remove

  /** See {@link GraphRewriter#build(Supplier)}. */
  <T> Built<T> build(Supplier<T> build) {
    Set<String> opsBefore = new HashSet<>(sd.getOps().keySet());
    Set<String> varsBefore = new HashSet<>(sd.getVariables().keySet());
    T value;
    try {
      value = build.get();
    } catch (RuntimeException e) {
      remove(diff(opsBefore, varsBefore));
      throw e;
    }
    Created created = diff(opsBefore, varsBefore);
    invalidate();
    return new Built<>(value, created);
  }

  private Created diff(Set<String> opsBefore, Set<String> varsBefore) {
    Set<String> ops = new LinkedHashSet<>(sd.getOps().keySet());
    ops.removeAll(opsBefore);
    Set<String> vars = new LinkedHashSet<>(sd.getVariables().keySet());
    vars.removeAll(varsBefore);
    return new Created(ImmutableSet.copyOf(ops), ImmutableSet.copyOf(vars));
  }

  /** See {@link GraphRewriter#remove(Created)}. */
  void remove(Created created) {
    for (String v : created.variables()) {
      Variable var = sd.getVariables().get(v);
      if (var != null && var.getInputsForOp() != null) {
        for (String reader : var.getInputsForOp()) {
          checkState(created.ops().contains(reader),
              "cannot remove variable '%s': op '%s' outside the removed set still reads it", v, reader);
        }
      }
    }
    for (String opName : created.ops()) {
      SameDiffOp op = sd.getOps().remove(opName);
      if (op == null) {
        continue;
      }
      for (String in : op.getInputsToOp() == null ? List.<String>of() : op.getInputsToOp()) {
        Variable var = sd.getVariables().get(in);
        if (var != null && var.getInputsForOp() != null) {
          var.getInputsForOp().removeIf(opName::equals);
        }
      }
    }
    for (String v : created.variables()) {
      sd.getVariables().remove(v);
      if (sd.getVariablesArrays().hasArray(v)) {
        sd.getVariablesArrays().removeArray(v);
      }
      if (sd.getConstantArrays().hasArray(v)) {
        sd.getConstantArrays().removeArray(v);
      }
      if (sd.getUpdaterMap() != null) {
        sd.getUpdaterMap().remove(v);
      }
    }
    invalidate();
  }

  // ---------------------------------------------------------------------------------------------- rewiring

  /** See {@link GraphRewriter#redirect(String, String, Set)}. */
  void redirect(String from, String to, Set<String> except) {
    variable(sd, from);
    variable(sd, to);
    for (String opName : consumersOf(sd, from)) {
      if (except.contains(opName)) {
        continue;
      }
      List<String> inputs = op(sd, opName).getInputsToOp();
      for (int i = 0; i < inputs.size(); i++) {
        if (inputs.get(i).equals(from)) {
          setInput(opName, i, to);
        }
      }
    }
    if (sd.getLossVariables().contains(from)) {
      List<String> loss = new ArrayList<>(sd.getLossVariables()); // a live view that setLossVariables clears
      loss.replaceAll(n -> n.equals(from) ? to : n);
      sd.setLossVariables(loss.toArray(new String[0]));
    }
    if (sd.outputs() != null && sd.outputs().contains(from)) {
      List<String> outputs = new ArrayList<>(sd.outputs());
      outputs.replaceAll(n -> n.equals(from) ? to : n);
      sd.setOutputs(outputs);
    }
    invalidate();
  }

  /** See {@link GraphRewriter#unsplice(Splice)}. */
  void unsplice(Splice s) {
    swapNames(s.output(), s.base());
    redirect(s.base(), s.output(), s.branchOps()); // everyone who read the adapted value, even readers added later
  }

  /** See {@link GraphRewriter#resplice(Splice)}. */
  void resplice(Splice s) {
    redirect(s.output(), s.base(), s.branchOps());
    swapNames(s.output(), s.base());
  }

  /** See {@link GraphRewriter#swapNames(String, String)}. */
  void swapNames(String a, String b) {
    Variable va = variable(sd, a);
    Variable vb = variable(sd, b);
    for (SameDiffOp op : sd.getOps().values()) {
      swapIn(op.getInputsToOp(), a, b);
      if (swapIn(op.getOutputsOfOp(), a, b)) {
        forgetCachedOutputs(op.getOp());
      }
    }
    List<String> readersA = va.getInputsForOp();
    va.setInputsForOp(vb.getInputsForOp());
    vb.setInputsForOp(readersA);
    String producerA = va.getOutputOfOp();
    va.setOutputOfOp(vb.getOutputOfOp());
    vb.setOutputOfOp(producerA);
    List<String> loss = new ArrayList<>(sd.getLossVariables());
    if (swapIn(loss, a, b)) {
      sd.setLossVariables(loss.toArray(new String[0]));
    }
    if (sd.outputs() != null) {
      List<String> outputs = new ArrayList<>(sd.outputs());
      if (swapIn(outputs, a, b)) {
        sd.setOutputs(outputs);
      }
    }
    invalidate();
  }

  /** Ops cache their output variables; the gradient builder would use the stale ones. */
  private static void forgetCachedOutputs(DifferentialFunction fn) {
    if (fn instanceof DynamicCustomOp custom) {
      custom.setOutputVariables(null);
    } else if (fn instanceof BaseOp legacy) {
      legacy.setZVertexId(null);
    }
  }

  private static boolean swapIn(List<String> names, String a, String b) {
    boolean changed = false;
    if (names != null) {
      for (int i = 0; i < names.size(); i++) {
        if (names.get(i).equals(a)) {
          names.set(i, b);
          changed = true;
        } else if (names.get(i).equals(b)) {
          names.set(i, a);
          changed = true;
        }
      }
    }
    return changed;
  }

  /** See {@link GraphRewriter#setInput(String, int, String)}. */
  void setInput(String opName, int index, String variable) {
    SameDiffOp op = op(sd, opName);
    List<String> inputs = op.getInputsToOp();
    checkArgument(index >= 0 && index < inputs.size(), "op '%s' has %s inputs, not %s", opName, inputs.size(),
        index + 1);
    String old = inputs.get(index);
    if (old.equals(variable)) {
      return;
    }
    Variable newVar = variable(sd, variable);
    inputs.set(index, variable);
    if (!inputs.contains(old)) {
      variable(sd, old).getInputsForOp().removeIf(opName::equals);
    }
    if (newVar.getInputsForOp() == null) {
      newVar.setInputsForOp(new ArrayList<>());
    }
    if (!newVar.getInputsForOp().contains(opName)) {
      newVar.getInputsForOp().add(opName);
    }
    invalidate();
  }

  // ---------------------------------------------------------------------------------------------- freezing

  /** See {@link GraphRewriter#freeze(Collection)}. */
  void freeze(Collection<String> variables) {
    if (!variables.isEmpty()) {
      sd.convertToConstants(variables.stream().map(sd::getVariable).toList());
      invalidate();
    }
  }

  /** See {@link GraphRewriter#unfreeze(Collection)}. */
  void unfreeze(Collection<String> variables) {
    if (!variables.isEmpty()) {
      sd.convertToVariables(variables.stream().map(sd::getVariable).toList());
      invalidate();
    }
  }

  /** See {@link GraphRewriter#invalidate()}. */
  void invalidate() {
    sd.definedFunctionNames().remove(GRAD_FUNCTION);
    sd.getSessions().clear();
    for (Variable v : sd.getVariables().values()) {
      v.setGradient(null);
    }
  }
}
