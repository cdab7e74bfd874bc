package dev.peft4j.spark;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.io.AdapterFiles;
import java.io.Serializable;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What {@link SparkScorer} runs on every executor: the model, the adapters by name and how rows become batches and
 * batches become columns. Shipped to the executors with each task, and the key of the model each executor JVM keeps
 * loaded, so two scorers of equal configs share one loaded model.
 *
 * @param modelDir      a Hugging Face task checkpoint directory ({@code HfModels.loadTask}) every executor can read
 * @param adapters      adapter name → adapter directory every executor can read, in load order (the first is active
 *                      for rows of a scorer without an adapter column)
 * @param adapterColumn the string column naming each row's adapter (null in a row: the base model), or null when
 *                      every row uses the one adapter (or the base model, with no adapter)
 * @param batchSize     rows per forward pass on an executor
 * @param output        probabilities or logits
 * @param labelColumn   the appended INT column: the argmax label
 * @param scoresColumn  the appended {@code array<double>} column: one value per label
 * @param padTokenId    the id that pads a batch's shorter rows on the right (their attention mask is 0 there)
 */
public record ScoringConfig(String modelDir, Map<String, String> adapters, String adapterColumn, int batchSize,
    ScoreOutput output, String labelColumn, String scoresColumn, long padTokenId) implements Serializable {

  private static final long serialVersionUID = 1L;

  public ScoringConfig {
    checkArgument(modelDir != null && !modelDir.isBlank(), "modelDir must be a directory, got '%s'", modelDir);
    checkArgument(adapters != null, "adapters must not be null");
    adapters.forEach((name, dir) -> {
      AdapterFiles.checkAdapterName(name);
      checkArgument(dir != null && !dir.isBlank(), "adapter '%s' needs a directory, got '%s'", name, dir);
    });
    adapters = Collections.unmodifiableMap(new LinkedHashMap<>(adapters));
    checkArgument(adapterColumn == null || !adapterColumn.isBlank(), "adapterColumn must not be blank");
    checkArgument(adapterColumn == null || !adapters.isEmpty(),
        "adapter column '%s' given but no adapter loaded: add one with adapter(name, dir)", adapterColumn);
    checkArgument(adapterColumn != null || adapters.size() <= 1,
        "%s adapters %s need an adapter column naming each row's adapter", adapters.size(), adapters.keySet());
    checkArgument(batchSize >= 1, "batchSize must be at least 1, got %s", batchSize);
    checkArgument(output != null, "output must not be null");
    checkArgument(labelColumn != null && !labelColumn.isBlank(), "labelColumn must not be blank");
    checkArgument(scoresColumn != null && !scoresColumn.isBlank(), "scoresColumn must not be blank");
    checkArgument(!labelColumn.equals(scoresColumn), "label and scores columns are both named '%s'", labelColumn);
    checkArgument(padTokenId >= 0, "padTokenId must be >= 0, got %s", padTokenId);
  }
}
