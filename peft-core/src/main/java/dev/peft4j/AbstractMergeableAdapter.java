package dev.peft4j;

import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.quant.QuantizedBase;
import java.util.ArrayList;
import java.util.List;

/**
 * {@link AbstractAdapter} for methods whose update folds into the base weights. A method implements
 * {@link #mergedWeights()} (what each touched base tensor becomes) and {@link #unmergeWeights()}; this class checks
 * the state, refuses a {@link #safeMerge()} that would write NaN or infinity before anything is written, and wires
 * the branch out while merged. A merged weight of a quantised base ({@link QuantizedBase}) is written as a float
 * weight in place of the packed one, and unmerging puts the packed form back exactly (without calling
 * {@link #unmergeWeights()} for it: {@code mergedWeights} and {@code unmergeWeights} see the quantised weight by its
 * {@link GraphRewriter#DEQUANTIZED_WEIGHT} name).
 *
 * @param <C> the method's config type
 */
public abstract class AbstractMergeableAdapter<C extends AdapterConfig> extends AbstractAdapter<C>
    implements MergeableAdapter {

  /** A base tensor and the value it takes when merged. */
  public record MergedWeight(String variable, org.nd4j.linalg.api.ndarray.INDArray value) {}

  /** Quantised base weights replaced by merged float ones, to be packed again on unmerge. */
  private final List<QuantizedBase.Unpacked> unpacked = new ArrayList<>();

  protected AbstractMergeableAdapter(String name, C config) {
    super(name, config);
  }

  /** The merged value of every base tensor the update touches, computed aside; nothing is written. */
  protected abstract List<MergedWeight> mergedWeights();

  /** Takes the update back out of the base tensors (the inverse of assigning {@link #mergedWeights()}). */
  protected abstract void unmergeWeights();

  @Override
  public final boolean isMerged() {
    return state() == State.MERGED;
  }

  @Override
  public final void merge() {
    mergeChecked(false);
  }

  @Override
  public final void safeMerge() {
    mergeChecked(true);
  }

  /**
   * The values {@link #merge()} would write, computed aside: nothing is written. For adapters made of several
   * (a hybrid), which must check all of their parts' merges before any part writes.
   *
   * @throws IllegalStateException if not applied, merged already, or disabled
   */
  public final List<MergedWeight> mergePreview() {
    requireApplied();
    checkState(state() != State.MERGED, "adapter '%s' is merged already", name());
    checkState(state() == State.ENABLED, "adapter '%s' is disabled; enable it before merging", name());
    return mergedWeights();
  }

  private void mergeChecked(boolean safe) {
    List<MergedWeight> merged = mergePreview();
    if (safe) {
      for (MergedWeight w : merged) {
        checkState(!w.value().isNaN().any() && !w.value().isInfinite().any(),
            "merging adapter '%s' would put NaN or infinity into '%s'; nothing was merged", name(), w.variable());
      }
    }
    for (MergedWeight w : merged) {
      if (w.variable().endsWith(GraphRewriter.DEQUANTIZED_WEIGHT)) { // a quantised base weight: merged in fp
        LinearModule m = graph().linearModules().stream().filter(l -> l.weight().equals(w.variable())).findFirst()
            .orElseThrow();
        unpacked.add(QuantizedBase.replaceWithFloat(sd(), m, w.value()));
      } else {
        sd().getArrForVarName(w.variable()).assign(w.value());
      }
    }
    detach();
    setState(State.MERGED);
  }

  @Override
  public final void unmerge() {
    requireApplied();
    checkState(state() == State.MERGED, "adapter '%s' is not merged", name());
    unpacked.forEach(u -> QuantizedBase.restore(sd(), u)); // the packed base, bit for bit
    unpacked.clear();
    unmergeWeights();
    attach();
    setState(State.ENABLED);
  }

  @Override
  public final void mergeAndUnload() {
    requireApplied();
    if (state() != State.MERGED) {
      merge();
    }
    modulesToSave().mergeAndUnload();
    removeBranch();
  }

  @Override
  public final void unload() {
    requireApplied();
    if (state() == State.MERGED) {
      unmerge();
    }
    super.unload();
  }
}
