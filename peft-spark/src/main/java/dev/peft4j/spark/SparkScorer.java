package dev.peft4j.spark;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.io.AdapterFiles;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkException;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;

/**
 * Scores a {@code Dataset<Row>} of token ids with a sequence classifier and its adapters, on the executors: each
 * executor JVM builds the model once ({@link ModelSource}, {@link ExecutorModels}) and scores its partitions in
 * batches, rows with different adapters in one batch through {@code PeftModel.outputMixed} (Hugging Face PEFT's
 * {@code adapter_names=}). The scores equal {@code PeftModel.output} / {@code outputMixed} on the same rows.
 * <pre>
 *   input:  input_ids array&lt;int|bigint&gt;  [attention_mask, token_type_ids: the same]  [adapter column: string]
 *   output: the input's columns, then predicted_label int, then probabilities (or logits) array&lt;double&gt;
 * </pre>
 * Texts are tokenised before scoring (a Hugging Face tokenizer's output has these column names); rows of one batch
 * may differ in length and are padded on the right.
 *
 * <pre>{@code
 * SparkScorer scorer = SparkScorer.builder("/shared/bert-sst2")       // every executor reads these paths
 *     .adapter("sst2", "/shared/adapters/sst2")                        // loaded with Peft.loadAdapter
 *     .adapter("imdb", "/shared/adapters/imdb")
 *     .adapterColumn("task")                                           // null in a row: the base model
 *     .batchSize(32)
 *     .build();
 * Dataset<Row> scored = scorer.score(tokenised);                        // + predicted_label, probabilities
 * }</pre>
 * Each scorer is its own source: its model stays built in every executor that scored with it until the application
 * ends, so build one scorer and reuse it.
 */
public final class SparkScorer {

  private final ModelSource source;
  private final ScoringConfig config;

  private SparkScorer(ModelSource source, ScoringConfig config) {
    this.source = source;
    this.config = config;
  }

  /**
   * A scorer over the Hugging Face task checkpoint in {@code modelDir} ({@code HfModels.loadTask}), a directory every
   * executor can read, with the adapters {@link Builder#adapter} adds.
   */
  public static Builder builder(String modelDir) {
    checkArgument(modelDir != null && !modelDir.isBlank(), "the model directory must not be blank");
    return new Builder(modelDir, null);
  }

  /**
   * A scorer of the model {@code source} builds, with the adapters its builder loads (the first active): for a
   * checkpoint carried with the source ({@link ModelSource#files}) or a graph built another way.
   */
  public static Builder builder(ModelSource source) {
    checkArgument(source != null, "the model source must not be null");
    return new Builder(null, source);
  }

  public ModelSource source() {
    return source;
  }

  public ScoringConfig config() {
    return config;
  }

  /**
   * {@code rows} with the predicted label and the scores appended, as a lazy dataset (nothing is scored until an
   * action runs). Before returning, the columns are checked against {@code rows}' schema, and one executor builds the
   * model (which it then keeps), so that a model or adapter that cannot load fails here with the executor's own
   * message rather than inside a later job. A row naming an adapter that was not loaded, or holding null or
   * mismatched token arrays, fails the job at that row, naming it.
   *
   * @throws IllegalArgumentException naming the column and the dataset's columns, if {@code input_ids} or the
   *     adapter column is missing or of another type, or an output column exists; if the model has no
   *     {@code input_ids} input or no probabilities / logits output
   * @throws IllegalStateException naming the executor and its host, with the loader's message ({@code Peft.load}'s
   *     for an adapter directory that is missing, unreadable or does not fit the model), if the model cannot be built
   */
  public Dataset<Row> score(Dataset<Row> rows) {
    checkArgument(rows != null, "rows must not be null");
    ScoringColumns columns = ScoringColumns.of(rows.schema(), config);
    JavaSparkContext spark = JavaSparkContext.fromSparkContext(rows.sparkSession().sparkContext());
    Broadcast<ModelSource> shipped = spark.broadcast(source); // once per executor, not in every task
    buildOnOneExecutor(spark, shipped);
    return rows.mapPartitions(new ScorePartition(shipped, config, columns), Encoders.row(columns.output()));
  }

  private void buildOnOneExecutor(JavaSparkContext spark, Broadcast<ModelSource> shipped) {
    ScoreOutput output = config.output();
    try {
      spark.parallelize(List.of(0), 1).foreachPartition(ignored -> ExecutorModels.with(shipped.value(), m -> {
        ScorePartition.requireClassifier(m, output);
        return null;
      }));
    } catch (Exception e) { // a SparkException, checked but thrown undeclared from Scala
      // the executor's own exception, whole (its message names the executor), rather than Spark's account of it
      Throwable cause = e;
      while (cause instanceof SparkException && cause.getCause() != null) {
        cause = cause.getCause();
      }
      if (cause instanceof RuntimeException r) {
        throw r;
      }
      throw new IllegalStateException(cause.getMessage(), e);
    }
  }

  @Override
  public String toString() {
    return "SparkScorer(" + source + ", " + config + ")";
  }

  /**
   * Options of a {@link SparkScorer}, each settable once. Defaults: no adapter (the base model), no adapter column,
   * batches of 32, {@link ScoreOutput#PROBABILITIES}, columns {@code predicted_label} and the output's name, pad id 0.
   */
  public static final class Builder {
    private final String modelDir;
    private final ModelSource source;
    private final Map<String, String> adapters = new LinkedHashMap<>();
    private String adapterColumn;
    private Integer batchSize;
    private ScoreOutput output;
    private String labelColumn;
    private String scoresColumn;
    private Long padTokenId;

    private Builder(String modelDir, ModelSource source) {
      this.modelDir = modelDir;
      this.source = source;
    }

    /**
     * Loads the adapter in {@code dir} (a directory every executor can read) under {@code name}, with
     * {@code Peft.loadAdapter}. The first adapter scores every row of a scorer without an adapter column.
     *
     * @throws IllegalArgumentException if {@code name} is taken or invalid, or the scorer's model comes from a
     *     {@link ModelSource} (whose builder loads the adapters)
     */
    public Builder adapter(String name, String dir) {
      checkArgument(source == null, "the adapters of a ModelSource's model are the ones its builder loads");
      AdapterFiles.checkAdapterName(name);
      checkArgument(dir != null && !dir.isBlank(), "adapter '%s' needs a directory, got '%s'", name, dir);
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

    /**
     * @throws IllegalArgumentException as {@link ScoringConfig}'s checks; an adapter column with no adapter added,
     *     or several adapters without one
     */
    public SparkScorer build() {
      if (source == null) {
        checkArgument(adapterColumn == null || !adapters.isEmpty(),
            "adapter column '%s' given but no adapter added: add one with adapter(name, dir)", adapterColumn);
        checkArgument(adapterColumn != null || adapters.size() <= 1,
            "%s adapters %s need an adapter column naming each row's adapter", adapters.size(), adapters.keySet());
      }
      ScoreOutput out = output == null ? ScoreOutput.PROBABILITIES : output;
      ScoringConfig config = new ScoringConfig(adapterColumn, batchSize == null ? 32 : batchSize, out,
          labelColumn == null ? "predicted_label" : labelColumn, scoresColumn == null ? out.variable() : scoresColumn,
          padTokenId == null ? 0 : padTokenId);
      return new SparkScorer(source != null ? source
          : ModelSource.path(modelDir, new TaskModelWithAdapters(adapters)), config);
    }
  }
}
