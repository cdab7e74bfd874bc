package dev.peft4j.spark;

import static com.google.common.base.Preconditions.checkArgument;

import java.io.Serializable;

/**
 * How {@link SparkScorer} turns rows into batches and batches into columns; shipped to the executors with each task.
 *
 * @param adapterColumn the string column naming each row's adapter (null in a row: the base model), or null when
 *                      every row runs with the model's active adapter (the first one loaded)
 * @param batchSize     rows per forward pass on an executor
 * @param output        probabilities or logits
 * @param labelColumn   the appended INT column: the argmax label
 * @param scoresColumn  the appended {@code array<double>} column: one value per label
 * @param padTokenId    the id that pads a batch's shorter rows on the right (their attention mask is 0 there)
 */
public record ScoringConfig(String adapterColumn, int batchSize, ScoreOutput output, String labelColumn,
    String scoresColumn, long padTokenId) implements Serializable {

  private static final long serialVersionUID = 1L;

  public ScoringConfig {
    checkArgument(adapterColumn == null || !adapterColumn.isBlank(), "adapterColumn must not be blank");
    checkArgument(batchSize >= 1, "batchSize must be at least 1, got %s", batchSize);
    checkArgument(output != null, "output must not be null");
    checkArgument(labelColumn != null && !labelColumn.isBlank(), "labelColumn must not be blank");
    checkArgument(scoresColumn != null && !scoresColumn.isBlank(), "scoresColumn must not be blank");
    checkArgument(!labelColumn.equals(scoresColumn), "label and scores columns are both named '%s'", labelColumn);
    checkArgument(padTokenId >= 0, "padTokenId must be >= 0, got %s", padTokenId);
  }
}
