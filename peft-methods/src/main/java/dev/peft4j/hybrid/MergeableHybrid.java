package dev.peft4j.hybrid;

import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.AbstractMergeableAdapter;
import dev.peft4j.AbstractMergeableAdapter.MergedWeight;
import dev.peft4j.Adapter;
import dev.peft4j.MergeableAdapter;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A hybrid adapter whose every part merges (LoRA + IA³, say): {@link #merge()} folds all parts into the base weights,
 * part by part in order, after checking that no two parts change the same base tensor (their updates would not
 * simply add: which one applies first matters) and, for {@link #safeMerge()}, that every merged value is finite.
 * Nothing is written unless every check passes.
 */
public final class MergeableHybrid extends AbstractHybrid implements MergeableAdapter {

  MergeableHybrid(String name, HybridConfig config, List<Adapter> parts) {
    super(name, config, parts);
  }

  @Override
  public boolean isMerged() {
    return state() == State.MERGED;
  }

  @Override
  public void merge() {
    mergeChecked(false);
  }

  @Override
  public void safeMerge() {
    mergeChecked(true);
  }

  private void mergeChecked(boolean safe) {
    requireApplied();
    checkState(state() != State.MERGED, "adapter '%s' is merged already", name());
    checkState(state() == State.ENABLED, "adapter '%s' is disabled; enable it before merging", name());
    Map<String, Integer> changedBy = new HashMap<>();
    List<Adapter> live = parts.live();
    for (int i = 0; i < live.size(); i++) {
      for (MergedWeight w : ((AbstractMergeableAdapter<?>) live.get(i)).mergePreview()) {
        Integer other = changedBy.putIfAbsent(w.variable(), i);
        checkState(other == null, "parts %s (%s) and %s (%s) of hybrid adapter '%s' both change '%s', so the result "
            + "of merging depends on their order; the hybrid runs unmerged only (nothing was merged)", other,
            parts.type(other == null ? i : other), i, parts.type(i), name(), w.variable());
        checkState(!safe || (!w.value().isNaN().any() && !w.value().isInfinite().any()),
            "merging part %s (%s) of adapter '%s' would put NaN or infinity into '%s'; nothing was merged", i,
            parts.type(i), name(), w.variable());
      }
    }
    live.forEach(p -> ((MergeableAdapter) p).merge()); // the parts change disjoint tensors: order does not matter
    setState(State.MERGED);
  }

  @Override
  public void unmerge() {
    requireApplied();
    checkState(state() == State.MERGED, "adapter '%s' is not merged", name());
    List<Adapter> live = parts.live();
    for (int i = live.size() - 1; i >= 0; i--) {
      ((MergeableAdapter) live.get(i)).unmerge();
    }
    setState(State.ENABLED);
  }

  @Override
  public void mergeAndUnload() {
    requireApplied();
    if (state() != State.MERGED) {
      merge();
    }
    modulesToSave().mergeAndUnload();
    parts.live().forEach(p -> ((MergeableAdapter) p).mergeAndUnload());
    parts.forget();
    removeBranch();
  }

  @Override
  public void unload() {
    requireApplied();
    if (state() == State.MERGED) {
      unmerge();
    }
    super.unload();
  }
}
