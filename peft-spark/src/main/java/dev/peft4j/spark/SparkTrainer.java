package dev.peft4j.spark;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.PeftModel;
import dev.peft4j.train.AdamW;
import dev.peft4j.train.TrainerBuilder;
import dev.peft4j.train.OptimizerSettings;
import dev.peft4j.train.StepGradients;
import dev.peft4j.train.StepListener;
import dev.peft4j.train.TrainingHistory;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.storage.StorageLevel;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Trains the trainable set of a {@link PeftModel} on a Spark {@code Dataset<Row>}: data parallelism across
 * executors, with {@link dev.peft4j.train.Trainer}'s arithmetic.
 *
 * <pre>{@code
 * ModelSource source = ModelSource.path("/shared/minilm", dir -> Peft.lora(16).alpha(32).target("query", "value")
 *     .apply(Heads.sequenceClassification(HfModels.load(dir).sameDiff(), 384, 2, Heads.Pooling.MEAN, 7)));
 * PeftModel model = source.load();                        // the driver's copy: the one trained
 * TrainingHistory h = SparkTrainer.builder(source).steps(200).globalBatch(64).learningRate(3e-4).seed(7)
 *     .build().fit(model, examples);                      // columns input_ids, attention_mask, labels
 * }</pre>
 *
 * <p>The dataset's partitions are the shards: with {@code W} partitions and a global batch of {@code n} rows,
 * partition {@code p} contributes {@code nₚ = n/W} rows to every step ({@code +1} for the first {@code n mod W}),
 * taken in order from its own rows and cycled. A synchronous step ({@code localSteps} 1, the default):
 * <pre>
 *   driver:     broadcast θ (the trainable set only)
 *   executor p: ∂Lₚ/∂θ on its nₚ rows, weighted nₚ/n          dropout seeded by (seed, step) and salted by p
 *   driver:     g = Σₚ (nₚ/n)·∂Lₚ/∂θ  (treeAggregate)  → clip to maxGradNorm → AdamW
 * </pre>
 * which is exactly what {@code Trainer} with {@code dataParallel(W)} computes on one machine over the batches made
 * of the partitions' rows in partition order (the tests hold the two equal). Local SGD ({@code localSteps(k)}, k &gt; 1):
 * each executor takes k steps of its own on its shard (AdamW with fresh moments each round, the step's scheduled
 * learning rate, clipping), and the driver replaces θ by the row-weighted mean Σₚ (nₚ/n)·θₚ: one exchange every k
 * steps instead of every step, at some cost in accuracy (measured in {@code peft-spark/README.md}).
 *
 * <p>Executors build their model once per JVM from the {@link ModelSource} ({@link ExecutorModels}); the driver's
 * model must be what the source builds (the executors check the trainable names and sizes). Tasks that fail are
 * retried by Spark; a retried shard replaces its failed attempt, and the driver checks that every shard counted
 * exactly once. A step whose job fails is not applied: {@link #fit} throws with the executor's message, and the
 * model holds the weights of the last completed step. Adapters that act between steps on the driver's model alone
 * (AdaLoRA's rank allocation) are refused.
 */
public final class SparkTrainer {

  /**
   * Where one step's time went, in seconds: the driver's broadcast of θ, the Spark job (scheduling, serialisation,
   * the executors' compute, the tree aggregation), the longest shard's compute and all shards' compute summed
   * (tasks that share an executor JVM take turns with its model: there the job takes at least the sum), and the
   * driver's update. {@code bytesOut}: θ broadcast, once per executor; {@code bytesIn}: the arrays every shard sent
   * back.
   */
  public record StepTimes(int step, double broadcast, double job, double compute, double computeSum, double update,
      long bytesOut, long bytesIn) {}

  private final Settings settings;
  private final ModelSource source;
  private final ShardHook hook;
  private final List<StepTimes> times = new ArrayList<>();

  private SparkTrainer(ModelSource source, Settings settings, ShardHook hook) {
    this.source = source;
    this.settings = settings;
    this.hook = hook;
  }

  /** Called on an executor after a shard's work, before its result is sent: the tests fail tasks through it. */
  @FunctionalInterface
  interface ShardHook extends Serializable {
    void afterShard(int step, int partition);
  }

  /** The step times of the last {@link #fit}, one record per exchange (per step; per round in local SGD). */
  public List<StepTimes> times() {
    return List.copyOf(times);
  }

  /**
   * Trains {@code model} (the driver's copy, built by the source) for {@code steps} steps on {@code data}, whose
   * partitions are the shards (repartition first to choose their number).
   *
   * @throws IllegalArgumentException naming the missing and the present columns, if {@code data} lacks a column the
   *     model's inputs need; if the global batch is smaller than the number of partitions, or a partition is empty
   * @throws IllegalStateException with the executor's message, if a step's Spark job fails (the model then holds the
   *     weights after the last completed step); if nothing is trainable, the graph has not exactly one loss, or an
   *     active adapter must act between steps (AdaLoRA)
   */
  public TrainingHistory fit(PeftModel model, Dataset<Row> data) {
    checkArgument(model != null && data != null, "model and data must not be null");
    SameDiff sd = model.sameDiff();
    List<String> names = model.trainableParameters().names();
    checkState(!names.isEmpty(), "nothing to train: every adapter is disabled or merged (%s)", model);
    checkState(sd.getLossVariables().size() == 1, "the graph needs exactly one loss variable, has %s",
        sd.getLossVariables());
    for (String a : model.activeAdapters()) {
      checkState(!(model.adapter(a) instanceof StepListener), "adapter '%s' (%s) acts between steps on one model; "
          + "it cannot train on Spark, where every executor holds its own copy", a, model.adapter(a).getClass()
          .getSimpleName());
    }
    List<String> columns = Examples.inputColumns(sd, Arrays.asList(data.columns()));
    JavaRDD<List<Row>> shards = data.select(columns.stream().map(data::col).toArray(Column[]::new))
        .javaRDD().glom().persist(StorageLevel.MEMORY_ONLY()); // each partition's rows as one list, kept for the run
    try {
      int partitions = shards.getNumPartitions();
      checkArgument(settings.globalBatch >= partitions, "the global batch (%s rows) is smaller than the dataset's "
          + "%s partitions: every partition computes a share of each batch; raise the global batch or repartition "
          + "the dataset to at most %s partitions", settings.globalBatch, partitions, settings.globalBatch);
      List<Integer> sizes = SparkFailures.run(() -> shards.map(List::size).collect());
      for (int p = 0; p < sizes.size(); p++) {
        checkArgument(sizes.get(p) > 0, "partition %s of the dataset is empty (rows per partition: %s): every "
            + "partition computes a share of each batch; repartition the dataset", p, sizes);
      }
      return train(model, sd, names, columns, shards, partitions);
    } finally {
      shards.unpersist(false);
    }
  }

  private TrainingHistory train(PeftModel model, SameDiff sd, List<String> names, List<String> columns,
      JavaRDD<List<Row>> shards, int partitions) {
    JavaSparkContext sc = JavaSparkContext.fromSparkContext(shards.context());
    Broadcast<ModelSource> shippedSource = sc.broadcast(source);
    AdamW optimizer = settings.localSteps == 1 ? settings.optimizer.adamW(sd, names) : null;
    List<TrainingHistory.Step> history = new ArrayList<>();
    times.clear();
    try {
      for (int first = 1; first <= settings.steps; first += settings.localSteps) {
        int roundSteps = Math.min(settings.localSteps, settings.steps - first + 1);
        long start = System.nanoTime();
        LinkedHashMap<String, float[]> weights = TrainableArrays.snapshot(sd, names);
        Broadcast<Round> round = sc.broadcast(new Round(first, roundSteps, weights));
        long broadcast = System.nanoTime();
        ShardTask task = new ShardTask(shippedSource, round, settings, columns, partitions, hook);
        ShardResult sum;
        try {
          sum = SparkFailures.run(() -> shards.mapPartitionsWithIndex(task, true)
              .treeAggregate(ShardResult.zero(), ShardResult::plus, ShardResult::plus));
        } catch (RuntimeException e) {
          throw new IllegalStateException(String.format("step %s of %s failed on Spark; the model holds the weights "
              + "after step %s: %s", first, settings.steps, first - 1, e.getMessage()), e);
        } finally {
          round.destroy();
        }
        long job = System.nanoTime();
        checkState(sum.shards == partitions && sum.rows == (long) settings.globalBatch * roundSteps,
            "step %s: the shards' results cover %s shards and %s rows, expected %s and %s", first, sum.shards,
            sum.rows, partitions, (long) settings.globalBatch * roundSteps);
        Map<String, INDArray> combined = TrainableArrays.arrays(sd, sum.weighted);
        double norm = Double.NaN;
        if (optimizer != null) {
          norm = StepGradients.clip(combined, settings.optimizer.maxGradNorm());
          optimizer.step(combined, settings.learningRate(first));
        } else {
          combined.forEach((n, w) -> sd.getArrForVarName(n).assign(w)); // the row-weighted mean of the shards' θ
        }
        long end = System.nanoTime();
        long bytesOut = weights.values().stream().mapToLong(a -> 4L * a.length).sum();
        times.add(new StepTimes(first, (broadcast - start) / 1e9, (job - broadcast) / 1e9, sum.computeNanos / 1e9,
            sum.computeNanosSum / 1e9, (end - job) / 1e9, bytesOut, sum.arrayBytes() * partitions));
        for (int j = 0; j < roundSteps; j++) {
          history.add(new TrainingHistory.Step(first + j, sum.losses[j], settings.learningRate(first + j),
              j == roundSteps - 1 ? norm : Double.NaN, sum.tokens / roundSteps, (end - start) / 1e9 / roundSteps));
        }
      }
    } finally {
      shippedSource.destroy();
    }
    long stateBytes = optimizer == null ? 0 : 8L * model.trainableParameters().count();
    return new TrainingHistory(history, List.of(), stateBytes, names);
  }

  /** What the executors need of one exchange: its first step, its number of steps, and θ at its start. */
  record Round(int firstStep, int steps, LinkedHashMap<String, float[]> weights) implements Serializable {}

  /** The run's settings, shipped to the executors with every task. */
  record Settings(int steps, int globalBatch, OptimizerSettings optimizer, long seed, int localSteps)
      implements Serializable {

    /** The scheduled learning rate of step {@code step} (1-based), as {@code Trainer} computes it. */
    double learningRate(int step) {
      return optimizer.learningRate(step, steps);
    }

    /** The rows partition {@code p} of {@code partitions} contributes to each global batch. */
    int shardRows(int p, int partitions) {
      return globalBatch / partitions + (p < globalBatch % partitions ? 1 : 0);
    }

    /**
     * The dropout seed of step {@code step}: {@code Trainer}'s for its {@code step}-th micro-batch (one micro-batch
     * per step), so that shard p draws the masks of {@code DataParallel}'s replica p.
     */
    long stepSeed(int step) {
      return seed * 0x9E3779B97F4A7C15L + step;
    }
  }

  /**
   * The options of a trainer whose executors build their model from {@code source}; {@link Builder#steps} and
   * {@link Builder#globalBatch} are required.
   */
  public static Builder builder(ModelSource source) {
    return new Builder(source);
  }

  /**
   * Options of a {@link SparkTrainer}; each can be set once. The steps, the seed and the optimizer's options are
   * {@link TrainerBuilder}'s, as {@code Trainer}'s.
   */
  public static final class Builder extends TrainerBuilder<Builder> {
    private final ModelSource source;
    private int globalBatch = -1;
    private int localSteps = -1;
    private ShardHook hook;

    private Builder(ModelSource source) {
      checkArgument(source != null, "the model source must not be null");
      this.source = source;
    }

    /** Rows per step over all partitions (required; at least the number of partitions, checked by {@code fit}). */
    public Builder globalBatch(int rows) {
      checkState(globalBatch == -1, "the global batch was already set to %s", globalBatch);
      checkArgument(rows > 0, "the global batch must be > 0 rows, got %s", rows);
      this.globalBatch = rows;
      return this;
    }

    /**
     * Local SGD: each executor takes {@code k} steps on its own shard between exchanges, and the driver averages
     * their trainable sets by rows (default 1: synchronous, every step's gradients combined). In local SGD each
     * executor's clipping applies to its own gradients and its AdamW starts fresh moments every round.
     */
    public Builder localSteps(int k) {
      checkState(localSteps == -1, "local steps were already set to %s", localSteps);
      checkArgument(k >= 1, "local steps must be >= 1, got %s", k);
      this.localSteps = k;
      return this;
    }

    /** For the tests: runs on the executor after each shard's work. */
    Builder afterShard(ShardHook h) {
      this.hook = h;
      return this;
    }

    /** @throws IllegalStateException if steps or the global batch was not set, or warm-up exceeds the steps */
    public SparkTrainer build() {
      int steps = steps();
      checkState(globalBatch > 0, "the global batch must be set");
      OptimizerSettings optimizer = optimizerSettings(); // checks the warm-up against the steps
      return new SparkTrainer(source, new Settings(steps, globalBatch, optimizer, seed(),
          localSteps == -1 ? 1 : localSteps), hook);
    }
  }
}
