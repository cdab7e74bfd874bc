package dev.peft4j.graph;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableSet;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.LongSupplier;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Listener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.autodiff.samediff.internal.Variable;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.ops.BaseOp;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.api.ops.impl.transforms.custom.XwPlusB;

/**
 * Reads and rewrites one SameDiff graph. The only class that touches SameDiff's internals.
 *
 * <p>What it can do:
 * <ul>
 *   <li>find modules and linear layers by name ({@link #moduleNames()}, {@link #linearModules()});
 *   <li>record what a piece of ordinary SameDiff code created ({@link #capture(Runnable)}) and remove it again
 *       ({@link #remove(Created)});
 *   <li>point every consumer of one variable at another, on both sides of every op↔variable link, loss and output
 *       variables included ({@link #redirect(String, String, Set)});
 *   <li>splice a branch in after a variable so that the variable's name denotes the branch's result, take it out
 *       and put it back exactly ({@link #splice}, {@link #unsplice}, {@link #resplice});
 *   <li>freeze and unfreeze variables the supported way ({@code convertToConstants});
 *   <li>prove the op↔variable links consistent ({@link #checkLinks()}).
 * </ul>
 * Every mutating call drops the cached inference sessions and the gradient function, which SameDiff would
 * otherwise keep using with stale names.
 */
public final class GraphRewriter {

  private static final String GRAD_FUNCTION = "grad";

  /** The suffix of the variable a quantised linear layer's matmul reads: {@code <module>.weight_dequantized}. */
  public static final String DEQUANTIZED_WEIGHT = ".weight_dequantized";

  /** The suffix of the INT64 constant holding a quantised weight's Hugging Face shape {@code [out, in]}. */
  public static final String QUANTIZED_SHAPE = ".weight_shape";

  private final SameDiff sd;

  private GraphRewriter(SameDiff sd) {
    this.sd = Objects.requireNonNull(sd, "sameDiff");
  }

  public static GraphRewriter of(SameDiff sameDiff) {
    return new GraphRewriter(sameDiff);
  }

  public SameDiff sameDiff() {
    return sd;
  }

  // ---------------------------------------------------------------------------------------------- reading

  /**
   * Module names, read off the array-backed variables {@code <module>.<param>} in graph order (the order of the
   * first op that reads one of the module's parameters).
   */
  public List<String> moduleNames() {
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

  /** Every linear layer of the graph, in graph order. See {@link LinearModule} for the convention. */
  public List<LinearModule> linearModules() {
    List<LinearModule> out = new ArrayList<>();
    for (SameDiffOp op : sd.getOps().values()) {
      LinearModule m = asLinear(op);
      if (m != null) {
        out.add(m);
      }
    }
    return ImmutableList.copyOf(out);
  }

  /** The linear module called {@code name}. */
  public LinearModule linearModule(String name) {
    return linearModules().stream().filter(m -> m.name().equals(name)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no linear module named '" + name + "'"));
  }

  /**
   * Linear modules with no matmul downstream: the output heads that {@code all-linear} skips. (Any matmul counts, so
   * a tied LM head, which multiplies by the transposed embedding matrix and is no linear module itself, still makes
   * the last MLP layer a non-head.)
   */
  public Set<String> outputHeads() {
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

  /** Names of the ops that read {@code variable}, in the order SameDiff recorded them. */
  public List<String> consumersOf(String variable) {
    List<String> ops = variable(variable).getInputsForOp();
    return ops == null ? List.of() : ImmutableList.copyOf(new LinkedHashSet<>(ops));
  }

  /** The inputs of op {@code opName}. */
  public List<String> inputsOf(String opName) {
    return ImmutableList.copyOf(op(opName).getInputsToOp());
  }

  /** Names of the trainable ({@code VARIABLE}) variables of the graph. */
  public List<String> trainableVariables() {
    List<String> out = new ArrayList<>();
    for (SDVariable v : sd.variables()) {
      if (v.getVariableType() == VariableType.VARIABLE) {
        out.add(v.name());
      }
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------- capture / remove

  /** The ops and variables a piece of graph-building code created. */
  public record Created(Set<String> ops, Set<String> variables) {}

  /**
   * Runs {@code build} (ordinary SameDiff calls) and returns what it added to the graph. If {@code build} throws,
   * whatever it added is removed before the exception propagates.
   */
  public Created capture(Runnable build) {
    Set<String> opsBefore = new HashSet<>(sd.getOps().keySet());
    Set<String> varsBefore = new HashSet<>(sd.getVariables().keySet());
    try {
      build.run();
    } catch (RuntimeException e) {
      remove(diff(opsBefore, varsBefore));
      throw e;
    }
    Created created = diff(opsBefore, varsBefore);
    invalidate();
    return created;
  }

  private Created diff(Set<String> opsBefore, Set<String> varsBefore) {
    Set<String> ops = new LinkedHashSet<>(sd.getOps().keySet());
    ops.removeAll(opsBefore);
    Set<String> vars = new LinkedHashSet<>(sd.getVariables().keySet());
    vars.removeAll(varsBefore);
    return new Created(ImmutableSet.copyOf(ops), ImmutableSet.copyOf(vars));
  }

  /**
   * Removes the given ops and variables: their links from the variables they read, their arrays and any updater
   * state. Nothing outside {@code created} may still read one of its variables.
   *
   * @throws IllegalStateException if an op outside {@code created} reads one of its variables
   */
  public void remove(Created created) {
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

  /**
   * Points every reader of {@code from} except the ops in {@code except} at {@code to}, and swaps {@code from} for
   * {@code to} among the loss and output variables. Both sides of every link are updated.
   */
  public void redirect(String from, String to, Set<String> except) {
    variable(from);
    variable(to);
    for (String opName : consumersOf(from)) {
      if (except.contains(opName)) {
        continue;
      }
      List<String> inputs = op(opName).getInputsToOp();
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

  /**
   * A branch spliced in after a variable: the readers of {@code output} (and anyone who asks for it by name) see the
   * branch's result under the name {@code output}, while the branch itself reads the original value under the name
   * {@code base}.
   */
  public record Splice(String output, String base, Set<String> branchOps) {}

  /**
   * Splices a branch in after {@code output}. The branch must already exist: it reads {@code output} and computes
   * {@code branchResult} with the ops {@code branchOps}. Afterwards every other reader of {@code output}, the loss and
   * output lists and a caller asking for {@code output} by name get the branch's result; the original value is
   * called {@code branchResult} from then on, and the branch reads it under that name.
   */
  public Splice splice(String output, String branchResult, Set<String> branchOps) {
    Splice s = new Splice(output, branchResult, ImmutableSet.copyOf(branchOps));
    resplice(s);
    return s;
  }

  /** Takes a spliced branch out: readers and callers get the original value under its name again. */
  public void unsplice(Splice s) {
    swapNames(s.output(), s.base());
    redirect(s.base(), s.output(), s.branchOps()); // everyone who read the adapted value, even readers added later
  }

  /** Puts a branch taken out by {@link #unsplice(Splice)} back in. */
  public void resplice(Splice s) {
    redirect(s.output(), s.base(), s.branchOps());
    swapNames(s.output(), s.base());
  }

  /**
   * Exchanges the graph positions of two variables of equal shape and type: every op that read or wrote one now
   * reads or writes the other, and the loss and output lists follow. The {@code SDVariable} objects keep their names;
   * only the links move. Its own inverse.
   */
  public void swapNames(String a, String b) {
    Variable va = variable(a);
    Variable vb = variable(b);
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

  /** Makes input {@code index} of op {@code opName} read {@code variable}, updating both sides of the link. */
  public void setInput(String opName, int index, String variable) {
    SameDiffOp op = op(opName);
    List<String> inputs = op.getInputsToOp();
    checkArgument(index >= 0 && index < inputs.size(), "op '%s' has %s inputs, not %s", opName, inputs.size(),
        index + 1);
    String old = inputs.get(index);
    if (old.equals(variable)) {
      return;
    }
    Variable newVar = variable(variable);
    inputs.set(index, variable);
    if (!inputs.contains(old)) {
      variable(old).getInputsForOp().removeIf(opName::equals);
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

  /** Makes the named variables constants (they stop training; their updater state is dropped). */
  public void freeze(Collection<String> variables) {
    if (!variables.isEmpty()) {
      sd.convertToConstants(variables.stream().map(sd::getVariable).toList());
      invalidate();
    }
  }

  /** Makes the named constants trainable variables again. */
  public void unfreeze(Collection<String> variables) {
    if (!variables.isEmpty()) {
      sd.convertToVariables(variables.stream().map(sd::getVariable).toList());
      invalidate();
    }
  }

  // ---------------------------------------------------------------------------------------------- consistency

  /**
   * Every broken op↔variable link of the graph, as readable lines; empty when the graph is consistent. Checked:
   * each op input exists and lists the op among its readers; each reader a variable lists exists and reads it; each
   * op output names the op as its producer and back; loss and output variables exist.
   */
  public List<String> checkLinks() {
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

  /** @throws IllegalStateException listing the broken links, if any */
  public void requireConsistentLinks() {
    List<String> problems = checkLinks();
    checkState(problems.isEmpty(), "graph links are inconsistent: %s", problems);
  }

  // ---------------------------------------------------------------------------------------------- caches

  /** Drops SameDiff's cached inference sessions and gradient function, which go stale after any rewrite. */
  public void invalidate() {
    sd.definedFunctionNames().remove(GRAD_FUNCTION);
    sd.getSessions().clear();
    for (Variable v : sd.getVariables().values()) {
      v.setGradient(null);
    }
  }

  /**
   * Builds the gradient function for the graph's loss variables, unless it exists, without SameDiff's
   * {@code "Added differentiated op"} lines on standard output.
   */
  public static void prepareGradients(SameDiff sameDiff) {
    prepareGradients(sameDiff, new String[0]);
  }

  /**
   * As {@link #prepareGradients(SameDiff)}, also differentiating with respect to {@code placeholders}, which SameDiff
   * otherwise treats as fixed inputs.
   */
  public static void prepareGradients(SameDiff sameDiff, String... placeholders) {
    if (sameDiff.hasGradientFunction()) {
      return;
    }
    synchronized (System.class) {
      PrintStream original = System.out;
      System.setOut(new PrintStream(new DropLinesStartingWith(original, "Added differentiated op"), true,
          StandardCharsets.UTF_8));
      try {
        sameDiff.createGradFunction(placeholders.length == 0 ? null : placeholders);
      } finally {
        System.setOut(original);
      }
    }
  }

  /**
   * Makes ND4J's random ops (the dropout masks) reproducible and fresh per step while the returned scope is open.
   * In ND4J 1.0.0-M2.1 an inference session creates each op's native context once, with a random state that
   * {@code Nd4j.getRandom().setSeed} does not reach and that no execution advances: every call would draw the same,
   * unseeded mask. This listener sets each random op's state before it runs, from {@code seed.getAsLong()} (which the
   * caller changes per micro-batch) mixed with the op's name, so that two modules never share a mask.
   */
  public static RandomOpSeeding seedRandomOps(SameDiff sameDiff, LongSupplier seed) {
    List<Listener> before = sameDiff.getListeners() == null ? List.of() : List.copyOf(sameDiff.getListeners());
    sameDiff.addListeners(new RandomOpListener() {
      @Override
      void beforeRandomOp(SameDiffOp op, OpContext context) {
        long root = mix(seed.getAsLong() ^ mix(op.getName().hashCode()));
        context.setRngStates(root, mix(root));
      }
    });
    return () -> sameDiff.setListeners(before);
  }

  /**
   * A listener that mixes {@code salt} into the state each random op was given by the listeners before it (such as
   * {@link #seedRandomOps}'s): copies of a graph that run the same ops on other data (data-parallel replicas) then draw
   * their own masks, still reproducibly. A salt of 0 changes nothing.
   */
  public static Listener distinctRandomOps(long salt) {
    long mixed = salt == 0 ? 0 : mix(salt);
    return new RandomOpListener() {
      @Override
      void beforeRandomOp(SameDiffOp op, OpContext context) {
        Pair<Long, Long> states = context.getRngStates();
        context.setRngStates(states.getFirst() ^ mixed, states.getSecond() ^ Long.rotateLeft(mixed, 17));
      }
    };
  }

  /** A listener that acts just before each of ND4J's random ops runs (those have a native context then). */
  private abstract static class RandomOpListener extends BaseListener {
    @Override
    public boolean isActive(Operation operation) {
      return true;
    }

    @Override
    public void preOpExecution(SameDiff sd, At at, SameDiffOp op, OpContext context) {
      if (context != null && op.getOp().opName().startsWith("random")) {
        beforeRandomOp(op, context);
      }
    }

    abstract void beforeRandomOp(SameDiffOp op, OpContext context);
  }

  /** The scope of {@link #seedRandomOps}; closing it removes the seeding listener. */
  @FunctionalInterface
  public interface RandomOpSeeding extends AutoCloseable {
    @Override
    void close();
  }

  /** SplitMix64's finaliser: a well-spread 64-bit hash. */
  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }

  // ---------------------------------------------------------------------------------------------- internals

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
    List<String> readers = consumersOf(matmulOut);
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
   * {@code <module>}{@value #DEQUANTIZED_WEIGHT} that an in-graph dequantisation computes from constants, beside the
   * INT64 constant {@code <module>}{@value #QUANTIZED_SHAPE} holding its Hugging Face shape {@code [out, in]} (see
   * {@code dev.peft4j.quant.QuantizedBase}).
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

  /** The module a weight variable belongs to: its name without {@code .weight} or {@value #DEQUANTIZED_WEIGHT}. */
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
      for (String reader : consumersOf(v)) {
        if (targetOps.contains(reader)) {
          return true;
        }
        queue.addAll(nullToEmpty(sd.getOps().get(reader).getOutputsOfOp()));
      }
    }
    return false;
  }

  private static boolean isParameter(SDVariable v) {
    if (v == null) {
      return false;
    }
    VariableType t = v.getVariableType();
    return (t == VariableType.VARIABLE || t == VariableType.CONSTANT) && v.getArr() != null;
  }

  private SameDiffOp op(String name) {
    SameDiffOp op = sd.getOps().get(name);
    checkArgument(op != null, "no op named '%s' in the graph", name);
    return op;
  }

  private Variable variable(String name) {
    Variable v = sd.getVariables().get(name);
    checkArgument(v != null, "no variable named '%s' in the graph", name);
    return v;
  }

  private static <T> List<T> nullToEmpty(List<T> list) {
    return list == null ? List.of() : list;
  }

  /** Forwards output line by line, dropping lines that start with a prefix. */
  private static final class DropLinesStartingWith extends OutputStream {
    private final PrintStream target;
    private final byte[] prefix;
    private final java.io.ByteArrayOutputStream line = new java.io.ByteArrayOutputStream();

    DropLinesStartingWith(PrintStream target, String prefix) {
      this.target = target;
      this.prefix = prefix.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public void write(int b) {
      line.write(b);
      if (b == '\n') {
        byte[] bytes = line.toByteArray();
        line.reset();
        if (!startsWith(bytes)) {
          target.write(bytes, 0, bytes.length);
        }
      }
    }

    @Override
    public void flush() {
      target.flush();
    }

    private boolean startsWith(byte[] bytes) {
      if (bytes.length < prefix.length) {
        return false;
      }
      for (int i = 0; i < prefix.length; i++) {
        if (bytes[i] != prefix[i]) {
          return false;
        }
      }
      return true;
    }
  }
}
