package dev.peft4j.graph;

import static dev.peft4j.graph.GraphLookup.consumersOf;
import static dev.peft4j.graph.GraphLookup.isParameter;
import static dev.peft4j.graph.GraphLookup.nullToEmpty;
import static dev.peft4j.graph.GraphRewriter.DEQUANTIZED_WEIGHT;
import static dev.peft4j.graph.GraphRewriter.QUANTIZED_SHAPE;

import com.google.common.collect.ImmutableList;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.api.ops.impl.transforms.custom.XwPlusB;

/** Finds modules, linear layers and the ops around a variable in one graph; reads only, changes nothing. */
final class ModuleFinder {

  private final SameDiff sd;

  ModuleFinder(SameDiff sd) {
    this.sd = sd;
  }

  /** See {@link GraphRewriter#moduleNames()}. */
  List<String> moduleNames() {
    Set<String> names = new LinkedHashSet<>();
    for (SameDiffOp op : sd.getOps().values()) {
      for (String in : op.getInputsToOp()) {
        SDVariable v = sd.getVariable(in);
        if (isParameter(v) && in.lastIndexOf('.') > 0 && !in.startsWith("peft/")) {
          names.add(in.substring(0, in.lastIndexOf('.')));
        }
      }
    }
    return ImmutableList.copyOf(names);
  }

  /** See {@link GraphRewriter#linearModules()}. */
  List<LinearModule> linearModules() {
    List<LinearModule> out = new ArrayList<>();
    for (SameDiffOp op : sd.getOps().values()) {
      LinearModule m = asLinear(op);
      if (m != null) {
        out.add(m);
      }
    }
    return ImmutableList.copyOf(out);
  }

  /** See {@link GraphRewriter#outputHeads()}. */
  Set<String> outputHeads() {
    Set<String> matmuls = new HashSet<>();
    sd.getOps().values().stream().filter(op -> op.getOp() instanceof Mmul || op.getOp() instanceof XwPlusB)
        .forEach(op -> matmuls.add(op.getName()));
    Set<String> heads = new LinkedHashSet<>();
    for (LinearModule m : linearModules()) {
      if (!reachesAny(m.output(), matmuls)) {
        heads.add(m.name());
      }
    }
    return heads;
  }

  /** See {@link GraphRewriter#trainableVariables()}. */
  List<String> trainableVariables() {
    List<String> out = new ArrayList<>();
    for (SDVariable v : sd.variables()) {
      if (v.getVariableType() == VariableType.VARIABLE) {
        out.add(v.name());
      }
    }
    return out;
  }

  /** See {@link GraphRewriter#ancestorsOf(String)}. */
  Set<String> ancestorsOf(String variable) {
    Set<String> seen = new HashSet<>();
    Deque<String> todo = new ArrayDeque<>(List.of(variable));
    while (!todo.isEmpty()) {
      String op = GraphLookup.variable(sd, todo.pop()).getOutputOfOp();
      SameDiffOp producer = op == null ? null : sd.getOps().get(op);
      if (producer != null && producer.getInputsToOp() != null) {
        for (String in : producer.getInputsToOp()) {
          if (seen.add(in)) {
            todo.push(in);
          }
        }
      }
    }
    return seen;
  }

  private LinearModule asLinear(SameDiffOp op) {
    DifferentialFunction fn = op.getOp();
    if (fn instanceof XwPlusB) {
      return asFusedLinear(op);
    }
    if (!(fn instanceof Mmul) || op.getInputsToOp() == null || op.getInputsToOp().size() != 2) {
      return null;
    }
    for (long flag : ((DynamicCustomOp) fn).iArgs()) {
      if (flag != 0) {
        return null; // transposed matmuls do not follow the [in, out] convention
      }
    }
    String weight = op.getInputsToOp().get(1);
    long[] shape = weightShape(weight);
    if (shape == null) {
      return null;
    }
    String name = moduleOf(weight);
    String matmulOut = op.getOutputsOfOp().get(0);
    String output = matmulOut;
    String bias = null;
    List<String> readers = consumersOf(sd, matmulOut);
    if (readers.size() == 1) {
      SameDiffOp next = sd.getOps().get(readers.get(0));
      String opName = next.getOp().opName();
      List<String> in = next.getInputsToOp();
      if (("add".equals(opName) || "biasadd".equals(opName)) && in.size() == 2 && in.get(0).equals(matmulOut)
          && in.get(1).equals(name + ".bias") && isParameter(sd.getVariable(in.get(1)))) {
        bias = in.get(1);
        output = next.getOutputsOfOp().get(0);
      }
    }
    return new LinearModule(name, weight, bias, op.getInputsToOp().get(0), output, op.getName(), shape[0], shape[1]);
  }

  /**
   * {@code xw_plus_b(x, W, b)}, as the model builders write linear layers; {@code b} is the module's bias when named
   * {@code <module>.bias}, otherwise a zero constant and the module has no bias.
   */
  private LinearModule asFusedLinear(SameDiffOp op) {
    List<String> in = op.getInputsToOp();
    if (in == null || in.size() != 3) {
      return null;
    }
    String weight = in.get(1);
    long[] shape = weightShape(weight);
    if (shape == null) {
      return null;
    }
    String name = moduleOf(weight);
    String bias = in.get(2).equals(name + ".bias") && isParameter(sd.getVariable(in.get(2))) ? in.get(2) : null;
    return new LinearModule(name, weight, bias, in.get(0), op.getOutputsOfOp().get(0), op.getName(), shape[0],
        shape[1]);
  }

  /**
   * The {@code [in, out]} shape of a linear layer's weight input, or {@code null} if {@code weight} is not one: a
   * rank-2 parameter {@code <module>.weight}, or a weight stored quantised — the {@code ARRAY} variable
   * {@code <module>}{@value GraphRewriter#DEQUANTIZED_WEIGHT} that an in-graph dequantisation computes from constants,
   * beside the INT64 constant {@code <module>}{@value GraphRewriter#QUANTIZED_SHAPE} holding its Hugging Face shape
   * {@code [out, in]} (see {@code dev.peft4j.quant.QuantizedBase}).
   */
  private long[] weightShape(String weight) {
    SDVariable w = sd.getVariable(weight);
    if (weight.endsWith(".weight") && isParameter(w) && w.getArr().rank() == 2) {
      return w.getArr().shape();
    }
    if (weight.endsWith(DEQUANTIZED_WEIGHT) && w != null && w.getVariableType() == VariableType.ARRAY) {
      String module = moduleOf(weight);
      SDVariable shape = sd.getVariable(module + QUANTIZED_SHAPE);
      if (shape != null && shape.getVariableType() == VariableType.CONSTANT && shape.getArr() != null
          && shape.getArr().length() == 2) {
        return new long[] {shape.getArr().getLong(1), shape.getArr().getLong(0)};
      }
    }
    return null;
  }

  /**
   * The module a weight variable belongs to: its name without {@code .weight} or
   * {@value GraphRewriter#DEQUANTIZED_WEIGHT}.
   */
  private static String moduleOf(String weight) {
    String suffix = weight.endsWith(DEQUANTIZED_WEIGHT) ? DEQUANTIZED_WEIGHT : ".weight";
    return weight.substring(0, weight.length() - suffix.length());
  }

  private boolean reachesAny(String start, Set<String> targetOps) {
    Deque<String> queue = new ArrayDeque<>(List.of(start));
    Set<String> seen = new HashSet<>();
    while (!queue.isEmpty()) {
      String v = queue.poll();
      if (!seen.add(v)) {
        continue;
      }
      for (String reader : consumersOf(sd, v)) {
        if (targetOps.contains(reader)) {
          return true;
        }
        queue.addAll(nullToEmpty(sd.getOps().get(reader).getOutputsOfOp()));
      }
    }
    return false;
  }
}
