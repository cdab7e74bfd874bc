package dev.peft4j.graph;

import dev.peft4j.graph.GraphRewriter.Branch;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The branches one adapter spliced in, one per adapted module, in the order they were built; each keeps the parts its
 * building code returned ({@code T}: the adapter's names for its variables and ops). Attaching, detaching and removing
 * act on every branch in that order, so a branch list built only in part (a build that failed half-way) is undone
 * like a whole one.
 *
 * <pre>{@code
 * private record Layer(LinearModule module, String vector, String sum) {}
 * private final Branches<Layer> layers = branches();   // AbstractAdapter's: attached, detached, removed with it
 *
 * layers.splice(g, m.output(), () -> {
 *   SDVariable l = sameDiff.var(scope + "/l", ones);
 *   return new Layer(m, l.name(), sameDiff.getVariable(m.output()).mul(scope + "/base_output", l).name());
 * }, Layer::sum);
 * }</pre>
 *
 * @param <T> what building one branch returns
 */
public final class Branches<T> {

  private final List<Branch<T>> branches = new ArrayList<>();

  /**
   * Builds a branch after {@code output} and splices it in ({@link GraphRewriter#spliceBranch}); if that fails,
   * nothing of it is left in the graph or in this list.
   *
   * @return the parts {@code build} returned
   */
  public T splice(GraphRewriter g, String output, Supplier<T> build, Function<? super T, String> result) {
    Branch<T> b = g.spliceBranch(output, build, result);
    branches.add(b);
    return b.parts();
  }

  /** What each branch's building code returned, in build order. */
  public List<T> parts() {
    return branches.stream().map(Branch::parts).toList();
  }

  public boolean isEmpty() {
    return branches.isEmpty();
  }

  /** Wires every (detached) branch back in. */
  public void attach(GraphRewriter g) {
    branches.forEach(g::attach);
  }

  /** Wires every branch out; their variables keep their values. */
  public void detach(GraphRewriter g) {
    branches.forEach(g::detach);
  }

  /** Deletes every (detached) branch's ops and variables, and forgets the branches. */
  public void remove(GraphRewriter g) {
    branches.forEach(g::remove);
    branches.clear();
  }
}
