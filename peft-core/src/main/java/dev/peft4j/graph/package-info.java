/**
 * The graph-rewrite machinery. {@link dev.peft4j.graph.GraphRewriter} is its entry point; behind it
 * {@code ModuleFinder} finds modules and linear layers, {@code GraphEdits} changes the graph and {@code LinkChecker}
 * proves the op↔variable links consistent. Methods build their branches with the ordinary {@code SameDiff} API and
 * ask the rewriter to wire them in ({@link dev.peft4j.graph.GraphRewriter#spliceBranch}), take them out and prove the
 * graph consistent.
 *
 * <p>This package is the only code in peft4j that reads or changes SameDiff's graph records ({@code SameDiffOp},
 * {@code Variable}, the op↔variable links, the cached sessions and the gradient function); other packages ask it
 * ({@code GraphRewriter.opNames()}, {@code ancestorsOf}, {@code consumersOf}). The one other use of a
 * {@code samediff.internal} type is through SameDiff's listener API, whose callbacks receive a {@code SameDiffOp}:
 * {@code dev.peft4j.train.RandomOps} and peft-bench's {@code StepProfile} read its name and op type there, nothing
 * else.
 */
package dev.peft4j.graph;
