package dev.peft4j.selective;

import dev.peft4j.graph.GraphRewriter;
import java.util.List;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * Full fine-tuning as an adapter: every floating-point weight but the embedding tables trains (see
 * {@link FullFineTuningConfig} for why those stay frozen). The trainable copies live at
 * {@code peft/<adapter>/full/<param>}, so the graph holds the pre-trained weights twice while training; in exchange
 * disable, unload (the pre-trained model bit for bit) and several adapters work as for every other method, and
 * {@code mergeAndUnload()} returns the plain fine-tuned graph.
 */
public final class FullFineTuning extends SelectiveAdapter<FullFineTuningConfig> {

  private List<String> excludedEmbeddings = List.of();

  FullFineTuning(String name, FullFineTuningConfig config) {
    super(name, config, "full");
  }

  @Override
  protected List<String> select(SameDiff sameDiff, GraphRewriter g) {
    List<String> chosen = config().select(sameDiff, g);
    excludedEmbeddings = FullFineTuningConfig.embeddingTables(sameDiff, g);
    if (!excludedEmbeddings.isEmpty()) {
      LOG.info("full fine-tuning leaves the embedding tables {} frozen: ND4J 1.0.0-M2.1 cannot differentiate a "
          + "trainable gather", excludedEmbeddings);
    }
    return chosen;
  }

  /** The embedding tables left frozen (ND4J 1.0.0-M2.1 cannot differentiate a trainable {@code gather}). */
  public List<String> excludedEmbeddings() {
    requireApplied();
    return excludedEmbeddings;
  }

  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(FullFineTuning.class);
}
