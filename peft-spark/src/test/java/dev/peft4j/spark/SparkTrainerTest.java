package dev.peft4j.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfModels;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * SparkTrainer in local mode ({@code local[2,2]}: two partitions, one retry) against {@link Trainer} with
 * {@code dataParallel(2)} on one machine over the same global batches: the same losses and weights per step.
 */
class SparkTrainerTest {

  static final long DATA_SEED = 20261206L;
  static final int STEPS = 3;
  static final int GLOBAL_BATCH = 5; // partition 0 gives 3 rows a step, partition 1 gives 2

  private static SparkSession spark;

  @BeforeAll
  static void start() {
    spark = LocalSpark.start("spark-trainer");
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  interface Method extends java.io.Serializable {
    AdapterConfig config();
  }

  static Stream<Arguments> methods() {
    return Stream.of(
        Arguments.of("lora", (Method) () -> Peft.lora(4).alpha(8).target("query", "value").build()),
        Arguments.of("ia3", (Method) () -> Peft.ia3().target("key", "value", "output.dense")
            .feedforward("output.dense").build()),
        Arguments.of("prompt tuning", (Method) () -> Peft.promptTuning(3).seed(3).build()));
  }

  static ModelSource source(Method method) throws IOException {
    return ModelSource.files(Fixtures.dir("tiny-bert"), dir -> method.config()
        .apply(Heads.sequenceClassification(HfModels.load(dir).sameDiff(), 32, 2, Heads.Pooling.MEAN, 3)));
  }

  /** 14 rows of tiny-bert input (ids, a mask of 4 to 8 real tokens, a label), in two partitions of 7. */
  static Dataset<Row> examples(long seed) {
    System.out.println("data seed " + seed);
    Random random = new Random(seed);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < 14; i++) {
      long[] ids = new long[8];
      long[] mask = new long[8];
      int real = 4 + random.nextInt(5);
      for (int t = 0; t < 8; t++) {
        ids[t] = t < real ? 1 + random.nextInt(127) : 0;
        mask[t] = t < real ? 1 : 0;
      }
      rows.add(RowFactory.create(boxed(ids), boxed(mask), (long) random.nextInt(2)));
    }
    StructType schema = new StructType()
        .add("input_ids", DataTypes.createArrayType(DataTypes.LongType))
        .add("attention_mask", DataTypes.createArrayType(DataTypes.LongType))
        .add("labels", DataTypes.LongType);
    return spark.createDataFrame(rows, schema).repartition(2).cache();
  }

  private static List<Long> boxed(long[] a) {
    List<Long> out = new ArrayList<>();
    for (long v : a) {
      out.add(v);
    }
    return out;
  }

  /** The global batches SparkTrainer trains on: each step, partition p's next rows, partitions in order. */
  static List<Batch> globalBatches(PeftModel model, Dataset<Row> data, int steps) {
    List<String> columns = Examples.inputColumns(model.sameDiff(), List.of(data.columns()));
    List<List<Row>> partitions = data.javaRDD().glom().collect();
    List<Batch> batches = new ArrayList<>();
    for (int step = 1; step <= steps; step++) {
      List<Row> rows = new ArrayList<>();
      for (int p = 0; p < partitions.size(); p++) {
        List<Row> own = partitions.get(p);
        int n = GLOBAL_BATCH / partitions.size() + (p < GLOBAL_BATCH % partitions.size() ? 1 : 0);
        for (int i = 0; i < n; i++) {
          rows.add(own.get(((step - 1) * n + i) % own.size()));
        }
      }
      batches.add(Batch.of(Examples.toArrays(model.sameDiff(), rows, columns), "labels"));
    }
    return batches;
  }

  static SparkTrainer.Builder trainer() {
    return SparkTrainer.builder(sourceInUse).steps(STEPS).globalBatch(GLOBAL_BATCH).learningRate(1e-2).seed(5);
  }

  private static ModelSource sourceInUse;
  private static final AtomicInteger INJECTED = new AtomicInteger();

  @ParameterizedTest(name = "{0}")
  @MethodSource("methods")
  void sameLossesAndWeightsAsDataParallelOnOneMachine(String name, Method method) throws IOException {
    Dataset<Row> data = examples(DATA_SEED);
    sourceInUse = source(method);
    PeftModel distributed = sourceInUse.load();
    PeftModel single = sourceInUse.load();
    TrainingHistory spark = trainer().build().fit(distributed, data);
    TrainingHistory local = Trainer.builder(single).steps(STEPS).learningRate(1e-2).seed(5).progress(null)
        .dataParallel(2).nativeMemoryGuard(false).build().fit(globalBatches(single, data, STEPS));
    assertSameRuns(name, spark, local, distributed, single, 1e-5);
    assertTrue(spark.lastLoss() != spark.firstLoss(), "it trained");
    ExecutorModels.evict(sourceInUse);
  }

  @Test
  void withDropoutTheShardsMasksComeFromTheSeed() throws IOException {
    Dataset<Row> data = examples(DATA_SEED + 1);
    sourceInUse = source(() -> Peft.lora(4).alpha(8).dropout(0.3).target("query", "value").build());
    PeftModel[] models = {sourceInUse.load(), sourceInUse.load(), sourceInUse.load()};
    TrainingHistory first = trainer().build().fit(models[0], data);
    TrainingHistory second = trainer().build().fit(models[1], data);
    assertSameRuns("dropout, two Spark runs", first, second, models[0], models[1], 0);
    // the masks are DataParallel's: shard p salts the step's seed with p
    TrainingHistory local = Trainer.builder(models[2]).steps(STEPS).learningRate(1e-2).seed(5).progress(null)
        .dataParallel(2).nativeMemoryGuard(false).build().fit(globalBatches(models[2], data, STEPS));
    assertSameRuns("dropout, Spark and DataParallel", first, local, models[0], models[2], 1e-5);
    ExecutorModels.evict(sourceInUse);
  }

  @Test
  void aRetriedTaskCountsOnce() throws IOException {
    Dataset<Row> data = examples(DATA_SEED + 2);
    sourceInUse = source(() -> Peft.lora(4).alpha(8).target("query", "value").build());
    PeftModel unfailed = sourceInUse.load();
    PeftModel retried = sourceInUse.load();
    TrainingHistory plain = trainer().build().fit(unfailed, data);
    // partition 1's task of step 2 fails after computing its gradients; Spark runs it again (local mode: the
    // executor is this JVM, so the counter is this class's)
    INJECTED.set(0);
    TrainingHistory again = trainer().afterShard((step, partition) -> {
      if (step == 2 && partition == 1 && TaskContext.get().attemptNumber() == 0) {
        INJECTED.incrementAndGet();
        throw new IllegalStateException("injected failure of the first attempt");
      }
    }).build().fit(retried, data);
    assertEquals(1, INJECTED.get(), "the first attempt failed once");
    assertSameRuns("retry", plain, again, unfailed, retried, 0);
    ExecutorModels.evict(sourceInUse);
  }

  @Test
  void aFailedJobLeavesTheModelUnchanged() throws IOException {
    Dataset<Row> data = examples(DATA_SEED + 3);
    sourceInUse = source(() -> Peft.lora(4).alpha(8).target("query", "value").build());
    PeftModel model = sourceInUse.load();
    Map<String, INDArray> before = weights(model);
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> trainer()
        .afterShard((step, partition) -> {
          if (partition == 1) {
            throw new IllegalStateException("injected failure of every attempt");
          }
        }).build().fit(model, data));
    assertTrue(e.getMessage().startsWith("step 1 of 3 failed on Spark; the model holds the weights after step 0: "
        + "injected failure of every attempt"), e.getMessage());
    before.forEach((n, w) -> assertEquals(w, model.sameDiff().getArrForVarName(n), n + " changed"));
    ExecutorModels.evict(sourceInUse);
  }

  @Test
  void localSgdIsTheRowWeightedMeanOfTheShardsOwnTraining() throws IOException {
    Dataset<Row> data = examples(DATA_SEED + 4);
    sourceInUse = source(() -> Peft.lora(4).alpha(8).target("query", "value").build());
    PeftModel model = sourceInUse.load();
    // one round of 2 local steps: each partition trains alone, then θ = (3/5)·θ₀ + (2/5)·θ₁
    SparkTrainer trainer = SparkTrainer.builder(sourceInUse).steps(2).globalBatch(GLOBAL_BATCH).learningRate(1e-2)
        .seed(5).localSteps(2).build();
    TrainingHistory h = trainer.fit(model, data);
    assertEquals(1, trainer.times().size(), "one exchange for 2 steps");
    List<List<Row>> partitions = data.javaRDD().glom().collect();
    List<String> columns = Examples.inputColumns(model.sameDiff(), List.of(data.columns()));
    Map<String, INDArray> mean = new LinkedHashMap<>();
    double[] losses = new double[2];
    for (int p = 0; p < 2; p++) {
      int rows = p == 0 ? 3 : 2;
      double weight = (double) rows / GLOBAL_BATCH;
      PeftModel alone = sourceInUse.load();
      List<Batch> batches = new ArrayList<>();
      for (int step = 1; step <= 2; step++) {
        List<Row> own = new ArrayList<>();
        for (int i = 0; i < rows; i++) {
          own.add(partitions.get(p).get(((step - 1) * rows + i) % partitions.get(p).size()));
        }
        batches.add(Batch.of(Examples.toArrays(alone.sameDiff(), own, columns), "labels"));
      }
      // alone: one pass per micro-batch, as a partition's local steps (not the trainer's default over every core)
      TrainingHistory shard = Trainer.builder(alone).steps(2).learningRate(1e-2).seed(5).progress(null)
          .dataParallel(1).nativeMemoryGuard(false).build().fit(batches);
      for (int j = 0; j < 2; j++) {
        losses[j] += weight * shard.steps().get(j).loss();
      }
      for (String n : alone.trainableParameters().names()) {
        INDArray w = alone.sameDiff().getArrForVarName(n).mul(weight);
        mean.merge(n, w, INDArray::addi);
      }
    }
    assertArrayEquals(losses, h.steps().stream().mapToDouble(TrainingHistory.Step::loss).toArray(), 1e-6,
        "each step's loss: the shards' losses weighted by rows");
    double worst = 0;
    for (Map.Entry<String, INDArray> e : mean.entrySet()) {
      double diff = e.getValue().sub(model.sameDiff().getArrForVarName(e.getKey())).amaxNumber().doubleValue();
      worst = Math.max(worst, diff);
    }
    System.out.println("local SGD against the shards trained alone and averaged: largest weight difference " + worst);
    assertTrue(worst <= 1e-6, "largest weight difference " + worst);
    ExecutorModels.evict(sourceInUse);
  }

  @Test
  void badInputIsNamed() throws IOException {
    Dataset<Row> data = examples(DATA_SEED + 5);
    sourceInUse = source(() -> Peft.lora(4).alpha(8).target("query", "value").build());
    PeftModel model = sourceInUse.load();
    Map<String, INDArray> before = weights(model);
    IllegalArgumentException columns = assertThrows(IllegalArgumentException.class,
        () -> trainer().build().fit(model, data.drop("labels").withColumnRenamed("input_ids", "ids")));
    assertTrue(columns.getMessage().startsWith("the dataset lacks the columns [input_ids, labels] that the model's "
        + "inputs need; it has [ids, attention_mask]"), columns.getMessage());
    IllegalArgumentException batch = assertThrows(IllegalArgumentException.class, () -> SparkTrainer
        .builder(sourceInUse).steps(1).globalBatch(1).build().fit(model, data));
    assertTrue(batch.getMessage().startsWith("the global batch (1 rows) is smaller than the dataset's 2 partitions"),
        batch.getMessage());
    IllegalArgumentException empty = assertThrows(IllegalArgumentException.class, () -> SparkTrainer
        .builder(sourceInUse).steps(1).globalBatch(20).build().fit(model, data.repartition(20)));
    assertTrue(empty.getMessage().matches("partition \\d+ of the dataset is empty \\(rows per partition: \\[.*"),
        empty.getMessage());
    ModelSource nowhere = ModelSource.path("/nonexistent/minilm", SparkModelSourceTest.LORA_HEAD);
    IllegalStateException path = assertThrows(IllegalStateException.class,
        () -> SparkTrainer.builder(nowhere).steps(1).globalBatch(2).build().fit(model, data));
    assertTrue(path.getMessage().matches("(?s)step 1 of 1 failed on Spark; the model holds the weights after step 0: "
        + "executor driver on host \\S+ \\(task of partition \\d, attempt \\d\\) cannot read the model path "
        + "/nonexistent/minilm: it does not exist.*"), path.getMessage());
    ModelSource otherVersion = new ModelSource(Fixtures.dir("tiny-bert").toString(), null, SparkModelSourceTest.LORA_HEAD, "0.0.9");
    IllegalStateException version = assertThrows(IllegalStateException.class,
        () -> SparkTrainer.builder(otherVersion).steps(1).globalBatch(2).build().fit(model, data));
    assertTrue(version.getMessage().contains("peft4j versions differ: the driver runs 0.0.9, executor driver"),
        version.getMessage());
    before.forEach((n, w) -> assertEquals(w, model.sameDiff().getArrForVarName(n), n + " changed"));
    assertThrows(IllegalStateException.class, () -> SparkTrainer.builder(sourceInUse).steps(1).build());
    assertThrows(IllegalStateException.class, () -> SparkTrainer.builder(sourceInUse).globalBatch(2).globalBatch(3));
    assertThrows(IllegalArgumentException.class, () -> SparkTrainer.builder(sourceInUse).localSteps(0));
  }

  private static Map<String, INDArray> weights(PeftModel model) {
    Map<String, INDArray> out = new LinkedHashMap<>();
    model.trainableParameters().names().forEach(n -> out.put(n, model.sameDiff().getArrForVarName(n).dup()));
    return out;
  }

  private static void assertSameRuns(String name, TrainingHistory a, TrainingHistory b, PeftModel ma, PeftModel mb,
      double tolerance) {
    assertEquals(a.steps().size(), b.steps().size());
    double[] la = a.steps().stream().mapToDouble(TrainingHistory.Step::loss).toArray();
    double[] lb = b.steps().stream().mapToDouble(TrainingHistory.Step::loss).toArray();
    System.out.println(name + ": losses " + java.util.Arrays.toString(la) + " vs " + java.util.Arrays.toString(lb));
    assertArrayEquals(la, lb, tolerance, name + ": losses");
    double worst = 0;
    for (String p : ma.trainableParameters().names()) {
      double diff = ma.sameDiff().getArrForVarName(p).sub(mb.sameDiff().getArrForVarName(p)).amaxNumber()
          .doubleValue();
      worst = Math.max(worst, diff);
      assertTrue(diff <= tolerance, name + ": " + p + " differs by " + diff);
    }
    System.out.println(name + ": largest weight difference " + worst);
  }
}
