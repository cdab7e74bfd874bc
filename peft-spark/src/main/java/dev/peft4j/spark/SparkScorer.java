package dev.peft4j.spark;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;

/**
 * Scores a {@code Dataset<Row>} of token ids with a sequence classifier and its adapters, on the executors: each
 * executor JVM loads the model and every adapter once ({@code HfModels.loadTask}, then {@code Peft.loadAdapter} per
 * adapter) and scores its partitions in batches, rows with different adapters in one batch through
 * {@code PeftModel.outputMixed} (Hugging Face PEFT's {@code adapter_names=}). The result equals
 * {@code PeftModel.output} / {@code outputMixed} on the same rows.
 * <pre>
 *   input:  input_ids array&lt;int|bigint&gt;  [attention_mask, token_type_ids: the same]  [adapter column: string]
 *   output: the input's columns, then predicted_label int, then probabilities (or logits) array&lt;double&gt;
 * </pre>
 * Texts are tokenised before scoring (Hugging Face's tokenizer gives these column names); rows of one batch may
 * differ in length and are padded on the right.
 *
 * <pre>{@code
 * SparkScorer scorer = SparkScorer.builder("/shared/bert-sst2")       // every executor reads these paths
 *     .adapter("sst2", "/shared/adapters/sst2")
 *     .adapter("imdb", "/shared/adapters/imdb")
 *     .adapterColumn("task")                                           // null in a row: the base model
 *     .batchSize(32)
 *     .build();
 * Dataset<Row> scored = scorer.score(tokenised);                        // + predicted_label, probabilities
 * }</pre>
 */
public final class SparkScorer {

  private final ScoringConfig config;

  private SparkScorer(ScoringConfig config) {
    this.config = config;
  }

  /** A scorer over the Hugging Face task checkpoint in {@code modelDir}, a directory every executor can read. */
  public static Builder builder(String modelDir) {
    return new Builder(modelDir);
  }

  /** A scorer of {@code config}. */
  public static SparkScorer of(ScoringConfig config) {
    checkArgument(config != null, "config must not be null");
    return new SparkScorer(config);
  }

  public ScoringConfig config() {
    return config;
  }

  /**
   * {@code rows} with the predicted label and the scores appended, as a lazy dataset (nothing is scored until an
   * action runs). Before returning, the columns are checked against {@code rows}' schema and one executor loads the
   * model and the adapters (the model it then keeps), so that a model or adapter that cannot load fails here with
   * its own message rather than inside a job. A row naming an adapter that was not loaded, or holding null or
   * mismatched token arrays, fails the job at that row, naming it.
   *
   * @throws IllegalArgumentException naming the column and the dataset's columns, if {@code input_ids} or the
   *     adapter column is missing or of another type, or an output column exists; naming the executor, with
   *     {@code Peft.load}'s message, if an adapter does not fit the model
   * @throws IOException naming the executor, with the loader's message, if the model or an adapter directory cannot
   *     be read
   */
  public Dataset<Row> score(Dataset<Row> rows) throws IOException {
    checkArgument(rows != null, "rows must not be null");
    ScoringColumns columns = ScoringColumns.of(rows.schema(), config);
    loadOnOneExecutor(JavaSparkContext.fromSparkContext(rows.sparkSession().sparkContext()));
    return rows.mapPartitions(new ScorePartition(config, columns), Encoders.row(columns.output()));
  }

  private void loadOnOneExecutor(JavaSparkContext spark) throws IOException {
    ScoringConfig shipped = config;
    try {
      spark.parallelize(List.of(0), 1).foreachPartition(ignored -> ScoringModels.get(shipped));
    } catch (Exception e) { // a SparkException, checked but thrown undeclared from Scala
      // Spark wraps the executor's exception, hand back the executor's own
      for (Throwable cause = e; cause != null; cause = cause.getCause()) {
        if (cause instanceof IOException io) {
          throw io;
        }
        if (cause instanceof IllegalArgumentException iae) {
          throw iae;
        }
      }
      throw e instanceof RuntimeException r ? r : new IllegalStateException(e.getMessage(), e);
    }
  }

  @Override
  public String toString() {
    return "SparkScorer" + config;
  }

  /**
   * Options of a {@link SparkScorer}, each settable once. Defaults: no adapter (the base model), no adapter column,
   * batches of 32, {@link ScoreOutput#PROBABILITIES}, columns {@code predicted_label} and the output's name, pad id 0.
   */
  public static final class Builder {
    private final String modelDir;
    private final Map<String, String> adapters = new LinkedHashMap<>();
    private String adapterColumn;
    private Integer batchSize;
    private ScoreOutput output;
    private String labelColumn;
    private String scoresColumn;
    private Long padTokenId;

    private Builder(String modelDir) {
      this.modelDir = modelDir;
    }

    /**
     * Loads the adapter in {@code dir} (a directory every executor can read) under {@code name}. The first adapter
     * scores every row of a scorer without an adapter column.
     *
     * @throws IllegalArgumentException if {@code name} is taken
     */
    public Builder adapter(String name, String dir) {
      checkArgument(!adapters.containsKey(name), "adapter '%s' was already added (from %s)", name,
          adapters.get(name));
      adapters.put(name, dir);
      return this;
    }

    /** The string column naming each row's adapter (null: the base model); needed with more than one adapter. */
    public Builder adapterColumn(String column) {
      checkState(adapterColumn == null, "adapter column was already set to '%s'", adapterColumn);
      adapterColumn = column;
      return this;
    }

    /** Rows per forward pass; default 32. */
    public Builder batchSize(int rows) {
      checkState(batchSize == null, "batch size was already set to %s", batchSize);
      batchSize = rows;
      return this;
    }

    /** Probabilities (the default) or logits. */
    public Builder output(ScoreOutput what) {
      checkState(output == null, "output was already set to %s", output);
      output = what;
      return this;
    }

    /** The appended columns' names; default {@code predicted_label} and {@code probabilities} / {@code logits}. */
    public Builder outputColumns(String label, String scores) {
      checkState(labelColumn == null, "output columns were already set to '%s', '%s'", labelColumn, scoresColumn);
      labelColumn = label;
      scoresColumn = scores;
      return this;
    }

    /**
     * The token that pads a batch's shorter rows; default 0 (BERT's [PAD]). A decoder classifier finds each row's
     * last token by it: give {@code config.json}'s {@code pad_token_id}.
     */
    public Builder padTokenId(long id) {
      checkState(padTokenId == null, "pad token id was already set to %s", padTokenId);
      padTokenId = id;
      return this;
    }

    /** @throws IllegalArgumentException as {@link ScoringConfig}'s checks */
    public SparkScorer build() {
      ScoreOutput out = output == null ? ScoreOutput.PROBABILITIES : output;
      return new SparkScorer(new ScoringConfig(modelDir, adapters, adapterColumn, batchSize == null ? 32 : batchSize,
          out, labelColumn == null ? "predicted_label" : labelColumn,
          scoresColumn == null ? out.variable() : scoresColumn, padTokenId == null ? 0 : padTokenId));
    }
  }
}
