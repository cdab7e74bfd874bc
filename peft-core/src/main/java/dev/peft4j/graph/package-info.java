/**
 * The graph-rewrite machinery: {@link dev.peft4j.graph.GraphRewriter} is the only code in peft4j that touches
 * SameDiff's internals ({@code SameDiffOp}, {@code Variable}, op↔variable links, cached sessions and the gradient
 * function). Methods build their branches with the ordinary {@code SameDiff} API and ask the rewriter to wire them in,
 * take them out and prove the graph consistent.
 */
package dev.peft4j.graph;
