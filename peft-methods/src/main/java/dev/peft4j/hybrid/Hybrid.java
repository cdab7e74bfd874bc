package dev.peft4j.hybrid;

import dev.peft4j.Adapter;
import java.util.List;

/**
 * A hybrid adapter with at least one part that cannot be merged (a bottleneck adapter, prompt tuning): its parts are
 * applied in order and enabled, disabled, trained, saved and unloaded together. See the package documentation;
 * {@link MergeableHybrid} is the hybrid whose every part merges.
 */
public final class Hybrid extends AbstractHybrid {

  Hybrid(String name, HybridConfig config, List<Adapter> parts) {
    super(name, config, parts);
  }
}
