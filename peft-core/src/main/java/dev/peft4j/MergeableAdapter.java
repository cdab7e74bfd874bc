package dev.peft4j;

/**
 * An adapter whose effect can be folded into the base weights, so inference costs nothing extra.
 * While merged, the adapter's own branch is out of the computation and its parameters do not train.
 */
public interface MergeableAdapter extends Adapter {

  /** Whether the adapter's update is currently folded into the base weights. */
  boolean isMerged();

  /**
   * Adds the adapter's update to the base weights and takes its branch out of the graph.
   *
   * @throws IllegalStateException if already merged, or disabled
   */
  void merge();

  /**
   * Like {@link #merge()}, but first computes every merged weight aside and refuses, leaving everything untouched,
   * if any of them holds NaN or infinity.
   *
   * @throws IllegalStateException if already merged, disabled, or a merged weight would not be finite
   */
  void safeMerge();

  /**
   * Subtracts the update again and wires the branch back in.
   *
   * @throws IllegalStateException if not merged
   */
  void unmerge();

  /**
   * Merges (unless merged already) and removes the adapter's ops and variables, keeping the updated base weights.
   */
  void mergeAndUnload();
}
