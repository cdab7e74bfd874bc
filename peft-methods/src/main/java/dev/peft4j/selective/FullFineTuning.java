package dev.peft4j.selective;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.graph.GraphRewriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * Full fine-tuning as an adapter: every floating-point weight trains, <b>except the embedding tables</b> (any
 * parameter an embedding lookup {@code gather} reads: BERT's word and token-type embeddings, Llama's
 * {@code embed_tokens} and a tied {@code lm_head} with it). ND4J 1.0.0-M2.1 cannot differentiate a trainable
 * {@code gather}: its gradient graph fails to build. {@link #excludedEmbeddings()} names what was left frozen, and
 * {@code trainableParameters()} does not contain it.
 *
 * <p>The trainable copies live at {@code peft/<adapter>/full/<param>}, so the graph holds the pre-trained weights
 * twice while training; in exchange disable, unload (the pre-trained model bit for bit) and several adapters work as
 * for every other method, and {@code mergeAndUnload()} returns the plain fine-tuned graph.
 */
public final class FullFineTuning extends SelectiveAdapter<FullFineTuningConfig> {

  private List<String> excludedEmbeddings = List.of();

  FullFineTuning(String name, FullFineTuningConfig config) {
    super(name, config, "full");
  }

  @Override
  protected List<String> select(SameDiff sameDiff, GraphRewriter g) {
    List<String> chosen = chosenParameters(config(), sameDiff, g);
    excludedEmbeddings = embeddingTables(sameDiff, g);
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

  /** The embedding tables of the graph: parameters that a {@code gather} op reads as its table. */
  static List<String> embeddingTables(SameDiff sameDiff, GraphRewriter g) {
    List<String> tables = new ArrayList<>();
    ModuleParameters.of(sameDiff, g).values().stream().flatMap(List::stream).forEach(p -> {
      for (String op : g.consumersOf(p)) {
        if ("gather".equals(sameDiff.getOpById(op).opName()) && g.inputsOf(op).get(0).equals(p)) {
          tables.add(p);
          return;
        }
      }
    });
    return tables;
  }

  /**
   * Every parameter but the embedding tables and the excluded modules, in graph order.
   *
   * @throws IllegalArgumentException if an excluded name matches no module (listing the modules), or nothing is left
   */
  static List<String> chosenParameters(FullFineTuningConfig config, SameDiff sameDiff, GraphRewriter g) {
    List<String> excluded = config.excluded();
    Map<String, List<String>> params = ModuleParameters.of(sameDiff, g);
    List<String> unmatched = excluded.stream()
        .filter(e -> params.keySet().stream().noneMatch(m -> ModuleParameters.matches(m, e))).toList();
    checkArgument(unmatched.isEmpty(), "full fine-tuning: excluded modules %s not found in the graph; modules that "
        + "exist: %s", unmatched, params.keySet());
    List<String> tables = embeddingTables(sameDiff, g);
    List<String> chosen = params.entrySet().stream()
        .filter(e -> excluded.stream().noneMatch(x -> ModuleParameters.matches(e.getKey(), x)))
        .flatMap(e -> e.getValue().stream()).filter(p -> !tables.contains(p)).toList();
    checkArgument(!chosen.isEmpty(), "full fine-tuning: nothing left to train (embedding tables %s are always "
        + "frozen, excluded %s); modules: %s", tables, excluded, params.keySet());
    return chosen;
  }

  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(FullFineTuning.class);
}
