/**
 * The graph-rewrite machinery, and the only code in peft4j that reaches into SameDiff's internals.
 * {@link dev.peft4j.graph.GraphRewriter} is its entry point; behind it {@code ModuleFinder} finds modules and linear
 * layers, {@code GraphEdits} changes the graph and {@code LinkChecker} proves the op↔variable links consistent.
 * Methods build their branches with the ordinary {@code SameDiff} API and ask the rewriter to wire them in
 * ({@link dev.peft4j.graph.GraphRewriter#spliceBranch}, {@link dev.peft4j.graph.Branches}), take them out and prove
 * the graph consistent.
 *
 * <p>Internals reached here and nowhere else: SameDiff's graph records ({@code SameDiffOp}, {@code Variable}, the
 * op↔variable links, the cached sessions and the gradient function; other packages ask
 * {@code GraphRewriter.opNames()}, {@code ancestorsOf}, {@code consumersOf}), the inference session's array cache
 * ({@link dev.peft4j.graph.RowMajorArrayCache}), the holders that keep a graph's weight arrays
 * ({@link dev.peft4j.graph.ArrayHolders}) and the protected method that runs a training pass
 * ({@link dev.peft4j.graph.TrainingPass}). The one use of a {@code samediff.internal} type elsewhere comes through
 * SameDiff's public listener API, whose callbacks receive a {@code SameDiffOp}: {@code dev.peft4j.train.RandomOps}
 * and peft-bench's {@code StepProfile} read its name and op type there, nothing else.
 */
package dev.peft4j.graph;
