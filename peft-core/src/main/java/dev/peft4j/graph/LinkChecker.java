package dev.peft4j.graph;

import static dev.peft4j.graph.GraphLookup.nullToEmpty;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.autodiff.samediff.internal.Variable;

/** Proves a graph's op↔variable links consistent, or lists each broken one. */
final class LinkChecker {

  private LinkChecker() {}

  /** See {@link GraphRewriter#checkLinks()}. */
  static List<String> problems(SameDiff sd) {
    List<String> problems = new ArrayList<>();
    Map<String, SameDiffOp> ops = sd.getOps();
    Map<String, Variable> vars = sd.getVariables();
    for (SameDiffOp op : ops.values()) {
      for (String in : nullToEmpty(op.getInputsToOp())) {
        Variable v = vars.get(in);
        if (v == null) {
          problems.add("op '" + op.getName() + "' reads missing variable '" + in + "'");
        } else if (!nullToEmpty(v.getInputsForOp()).contains(op.getName())) {
          problems.add("op '" + op.getName() + "' reads '" + in + "', which does not list it as a reader");
        }
      }
      for (String out : nullToEmpty(op.getOutputsOfOp())) {
        Variable v = vars.get(out);
        if (v == null) {
          problems.add("op '" + op.getName() + "' outputs missing variable '" + out + "'");
        } else if (!op.getName().equals(v.getOutputOfOp())) {
          problems.add("op '" + op.getName() + "' outputs '" + out + "', whose producer is '" + v.getOutputOfOp() + "'");
        }
      }
    }
    for (Variable v : vars.values()) {
      for (String reader : nullToEmpty(v.getInputsForOp())) {
        SameDiffOp op = ops.get(reader);
        if (op == null) {
          problems.add("variable '" + v.getName() + "' lists missing reader op '" + reader + "'");
        } else if (!nullToEmpty(op.getInputsToOp()).contains(v.getName())) {
          problems.add("variable '" + v.getName() + "' lists reader '" + reader + "', which does not read it");
        }
      }
      String producer = v.getOutputOfOp();
      if (producer != null) {
        SameDiffOp op = ops.get(producer);
        if (op == null || !nullToEmpty(op.getOutputsOfOp()).contains(v.getName())) {
          problems.add("variable '" + v.getName() + "' names producer '" + producer + "', which does not output it");
        }
      }
    }
    for (String loss : sd.getLossVariables()) {
      if (!vars.containsKey(loss)) {
        problems.add("loss variable '" + loss + "' does not exist");
      }
    }
    for (String out : nullToEmpty(sd.outputs())) {
      if (!vars.containsKey(out)) {
        problems.add("output variable '" + out + "' does not exist");
      }
    }
    return problems;
  }
}
