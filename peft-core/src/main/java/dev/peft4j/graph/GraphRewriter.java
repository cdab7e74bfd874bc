package dev.peft4j.graph;

import static com.google.common.base.Preconditions.checkState;

import com.google.common.collect.ImmutableSet;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Supplier;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * Reads and rewrites one SameDiff graph: the entry point of {@code dev.peft4j.graph}, whose package-private classes
 * do the work — {@code ModuleFinder} finds, {@code GraphEdits} changes, {@code LinkChecker} checks.
 *
 * <p>What it can do:
 * <ul>
 *   <li>find modules and linear layers by name ({@link #moduleNames()}, {@link #linearModules()});
 *   <li>record what a piece of ordinary SameDiff code created ({@link #capture(Runnable)}, {@link #build(Supplier)})
 *       and remove it again ({@link #remove(Created)});
 *   <li>point every consumer of one variable at another, on both sides of every op↔variable link, loss and output
 *       variables included ({@link #redirect(String, String, Set)});
 *   <li>splice a branch in after a variable so that the variable's name denotes the branch's result, take it out
 *       and put it back exactly ({@link #spliceBranch}, {@link #splice}, {@link #unsplice}, {@link #resplice});
 *   <li>freeze and unfreeze variables the supported way ({@code convertToConstants});
 *   <li>prove the op↔variable links consistent ({@link #checkLinks()}).
 * </ul>
 * Every mutating call drops the cached inference sessions and the gradient function, which SameDiff would
 * otherwise keep using with stale names.
 */
public final class GraphRewriter {

  /** The suffix of the variable a quantised linear layer's matmul reads: {@code <module>.weight_dequantized}. */
  public static final String DEQUANTIZED_WEIGHT = ".weight_dequantized";

  /** The suffix of the INT64 constant holding a quantised weight's Hugging Face shape {@code [out, in]}. */
  public static final String QUANTIZED_SHAPE = ".weight_shape";

  private final SameDiff sd;
  private final ModuleFinder find;
  private final GraphEdits edit;

  private GraphRewriter(SameDiff sd) {
    this.sd = Objects.requireNonNull(sd, "sameDiff");
    this.find = new ModuleFinder(sd);
    this.edit = new GraphEdits(sd);
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
    return find.moduleNames();
  }

  /** Every linear layer of the graph, in graph order. See {@link LinearModule} for the convention. */
  public List<LinearModule> linearModules() {
    return find.linearModules();
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
    return find.outputHeads();
  }

  /** Names of the ops that read {@code variable}, in the order SameDiff recorded them. */
  public List<String> consumersOf(String variable) {
    return GraphLookup.consumersOf(sd, variable);
  }

  /** The inputs of op {@code opName}. */
  public List<String> inputsOf(String opName) {
    return List.copyOf(GraphLookup.op(sd, opName).getInputsToOp());
  }

  /** Names of the trainable ({@code VARIABLE}) variables of the graph. */
  public List<String> trainableVariables() {
    return find.trainableVariables();
  }

  /** The names of the graph's ops. */
  public Set<String> opNames() {
    return Set.copyOf(sd.getOps().keySet());
  }

  /**
   * A snapshot of how every op is wired: op name → its inputs, then {@code "->"}, then its outputs. Comparing two
   * snapshots shows which ops a change rewired (PeftModel finds the modules two adapters both adapt this way).
   */
  public Map<String, List<String>> wiring() {
    Map<String, List<String>> wiring = new java.util.HashMap<>();
    sd.getOps().forEach((name, op) -> {
      List<String> w = new ArrayList<>();
      if (op.getInputsToOp() != null) {
        w.addAll(op.getInputsToOp());
      }
      w.add("->");
      if (op.getOutputsOfOp() != null) {
        w.addAll(op.getOutputsOfOp());
      }
      wiring.put(name, w);
    });
    return wiring;
  }

  /** Every variable {@code variable} is computed from, however indirectly; empty for an input or a parameter. */
  public Set<String> ancestorsOf(String variable) {
    return find.ancestorsOf(variable);
  }

  // ---------------------------------------------------------------------------------------------- capture / remove

  /** The ops and variables a piece of graph-building code created. */
  public record Created(Set<String> ops, Set<String> variables) {}

  /** What a piece of graph-building code returned ({@code value}: the names its caller keeps), and what it created. */
  public record Built<T>(T value, Created created) {}

  /**
   * Runs {@code build} (ordinary SameDiff calls) and returns what it added to the graph. If {@code build} throws,
   * whatever it added is removed before the exception propagates.
   */
  public Created capture(Runnable build) {
    return edit.build(() -> {
      build.run();
      return null;
    }).created();
  }

  /**
   * As {@link #capture(Runnable)}, for code that returns what its caller needs to keep (variable and op names),
   * instead of writing it into an array from inside the lambda.
   */
  public <T> Built<T> build(Supplier<T> build) {
    return edit.build(build);
  }

  /**
   * Removes the given ops and variables: their links from the variables they read, their arrays and any updater
   * state. Nothing outside {@code created} may still read one of its variables.
   *
   * @throws IllegalStateException if an op outside {@code created} reads one of its variables
   */
  public void remove(Created created) {
    edit.remove(created);
  }

  // ---------------------------------------------------------------------------------------------- rewiring

  /**
   * Points every reader of {@code from} except the ops in {@code except} at {@code to}, and swaps {@code from} for
   * {@code to} among the loss and output variables. Both sides of every link are updated.
   */
  public void redirect(String from, String to, Set<String> except) {
    edit.redirect(from, to, except);
  }

  /**
   * A branch spliced in after a variable: the readers of {@code output} (and anyone who asks for it by name) see the
   * branch's result under the name {@code output}, while the branch itself reads the original value under the name
   * {@code base}.
   */
  public record Splice(String output, String base, Set<String> branchOps) {}

  /**
   * A branch built by {@link #spliceBranch} and spliced in: {@code parts} is what its building code returned (the
   * names the adapter keeps), {@code created} what it added to the graph, {@code splices} how it is wired in, in the
   * order they were made.
   */
  public record Branch<T>(T parts, Created created, List<Splice> splices) {}

  /**
   * Builds a branch after {@code output} and splices it in: {@code build} (ordinary SameDiff calls reading
   * {@code output}) returns the branch's parts, {@code result} names the variable among them that becomes
   * {@code output}. If building or splicing fails, whatever {@code build} created is removed before the exception
   * propagates, and the graph is as before.
   */
  public <T> Branch<T> spliceBranch(String output, Supplier<T> build, Function<? super T, String> result) {
    return spliceBranch(build, parts -> Map.of(output, result.apply(parts)));
  }

  /**
   * As {@link #spliceBranch(String, Supplier, Function)} for a branch that replaces several variables:
   * {@code results} maps each variable to the branch's variable that becomes it, spliced in the map's order. If a
   * splice fails, those already made are taken out again (last first) and what {@code build} created is removed.
   */
  public <T> Branch<T> spliceBranch(Supplier<T> build, Function<? super T, Map<String, String>> results) {
    Built<T> built = build(build);
    List<Splice> splices = new ArrayList<>();
    try {
      for (Map.Entry<String, String> e : results.apply(built.value()).entrySet()) {
        splices.add(splice(e.getKey(), e.getValue(), built.created().ops()));
      }
    } catch (RuntimeException e) {
      for (int i = splices.size() - 1; i >= 0; i--) {
        unsplice(splices.get(i));
      }
      remove(built.created());
      throw e;
    }
    return new Branch<>(built.value(), built.created(), List.copyOf(splices));
  }

  /** Wires a branch taken out by {@link #detach(Branch)} back in: its splices in the order they were made. */
  public void attach(Branch<?> branch) {
    branch.splices().forEach(this::resplice);
  }

  /** Takes a branch out, last splice first; its variables keep their values. */
  public void detach(Branch<?> branch) {
    for (int i = branch.splices().size() - 1; i >= 0; i--) {
      unsplice(branch.splices().get(i));
    }
  }

  /** Removes a (detached) branch's ops and variables. */
  public void remove(Branch<?> branch) {
    remove(branch.created());
  }

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
    edit.unsplice(s);
  }

  /** Puts a branch taken out by {@link #unsplice(Splice)} back in. */
  public void resplice(Splice s) {
    edit.resplice(s);
  }

  /**
   * Exchanges the graph positions of two variables of equal shape and type: every op that read or wrote one now
   * reads or writes the other, and the loss and output lists follow. The {@code SDVariable} objects keep their names;
   * only the links move. Its own inverse.
   */
  public void swapNames(String a, String b) {
    edit.swapNames(a, b);
  }

  /** Makes input {@code index} of op {@code opName} read {@code variable}, updating both sides of the link. */
  public void setInput(String opName, int index, String variable) {
    edit.setInput(opName, index, variable);
  }

  // ---------------------------------------------------------------------------------------------- freezing

  /** Makes the named variables constants (they stop training; their updater state is dropped). */
  public void freeze(Collection<String> variables) {
    edit.freeze(variables);
  }

  /** Makes the named constants trainable variables again. */
  public void unfreeze(Collection<String> variables) {
    edit.unfreeze(variables);
  }

  // ---------------------------------------------------------------------------------------------- consistency

  /**
   * Every broken op↔variable link of the graph, as readable lines; empty when the graph is consistent. Checked:
   * each op input exists and lists the op among its readers; each reader a variable lists exists and reads it; each
   * op output names the op as its producer and back; loss and output variables exist.
   */
  public List<String> checkLinks() {
    return LinkChecker.problems(sd);
  }

  /** @throws IllegalStateException listing the broken links, if any */
  public void requireConsistentLinks() {
    List<String> problems = checkLinks();
    checkState(problems.isEmpty(), "graph links are inconsistent: %s", problems);
  }

  /** Drops SameDiff's cached inference sessions and gradient function, which go stale after any rewrite. */
  public void invalidate() {
    edit.invalidate();
  }
}
