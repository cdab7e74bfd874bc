package dev.peft4j.spark;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.PretrainedModels;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Measurements for {@code peft-spark/README.md}, not assertions; runs only with {@code -Dpeft4j.measure=true}:
 * <pre>
 *   mvn -o -B test -pl peft-spark -am -Dtest=SparkTrainingMeasurement -Dpeft4j.measure=true \
 *       -Dsurefire.failIfNoSpecifiedTests=false
 * </pre>
 * Prints lines starting with {@code MEASURE}: the bytes a step exchanges per method on MiniLM, the step time in local
 * mode split into its parts beside {@code DataParallel}'s, Java serialisation and aggregation of a shard's result,
 * and local SGD's accuracy against synchronous training on a small synthetic task.
 */
@EnabledIfSystemProperty(named = "peft4j.measure", matches = "true")
class SparkTrainingMeasurement {

  static final int SEQ = 128;

  @Test
  void measure() throws IOException {
    print("load average at start: " + Files.readString(Path.of("/proc/loadavg")).trim());
    bytesPerMethod();
    SparkSession spark = SparkSession.builder().master("local[2]").appName("measure")
        .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate();
    try {
      stepTimes(spark);
      localSgdAccuracy(spark);
    } finally {
      spark.stop();
    }
    print("load average at end: " + Files.readString(Path.of("/proc/loadavg")).trim());
  }

  static PeftModel miniLm(AdapterConfig config) {
    return config.apply(Heads.sequenceClassification(PretrainedModels.miniLm(SEQ).sameDiff(), 384, 2,
        Heads.Pooling.MEAN, 7));
  }

  /** Trainable floats per method on MiniLM, and what one shard's result costs to serialise and aggregate. */
  void bytesPerMethod() {
    Map<String, AdapterConfig> methods = new LinkedHashMap<>();
    methods.put("LoRA q,v r=16", Peft.lora(16).alpha(32).target("query", "value").build());
    methods.put("IA3 k,v,ff", Peft.ia3().target("key", "value", "output.dense").feedforward("output.dense").build());
    methods.put("prompt tuning 20 tokens", Peft.promptTuning(20).seed(3).build());
    for (Map.Entry<String, AdapterConfig> m : methods.entrySet()) {
      PeftModel model = miniLm(m.getValue());
      List<String> names = model.trainableParameters().names();
      long floats = model.trainableParameters().count();
      LinkedHashMap<String, float[]> arrays = TrainableArrays.snapshot(model.sameDiff(), names);
      ShardResult r = ShardResult.of(4, 512, new double[] {0.5}, arrays, 0);
      byte[] bytes = serialise(r);
      long[] ser = new long[15];
      long[] de = new long[15];
      long[] add = new long[15];
      for (int i = 0; i < ser.length; i++) {
        long t0 = System.nanoTime();
        byte[] b = serialise(r);
        long t1 = System.nanoTime();
        ShardResult back = deserialise(b);
        long t1b = System.nanoTime();
        ShardResult other = deserialise(bytes);
        long t2 = System.nanoTime();
        back.plus(other);
        long t3 = System.nanoTime();
        ser[i] = t1 - t0;
        de[i] = t1b - t1;
        add[i] = t3 - t2;
      }
      print(String.format(Locale.ROOT, "bytes %s: %d trainable floats (%d tensors), %d bytes of arrays per shard "
          + "and per broadcast, %d bytes Java-serialised; serialise %.2f ms, deserialise %.2f ms, add one shard "
          + "%.2f ms (medians of %d)", m.getKey(), floats, names.size(), 4 * floats, bytes.length, median(ser) / 1e6,
          median(de) / 1e6, median(add) / 1e6, ser.length));
    }
  }

  /** MiniLM LoRA q,v r=16 at a global batch of 8 × 128: SparkTrainer over 2 partitions against DataParallel(2). */
  void stepTimes(SparkSession spark) throws IOException {
    int steps = 5;
    Random random = new Random(11);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < 16; i++) {
      List<Long> ids = new ArrayList<>();
      for (int t = 0; t < SEQ; t++) {
        ids.add(t == 0 ? 101L : 1000L + random.nextInt(20000));
      }
      rows.add(RowFactory.create(ids, (long) random.nextInt(2)));
    }
    StructType schema = new StructType().add(Bert.INPUT_IDS, DataTypes.createArrayType(DataTypes.LongType))
        .add(Heads.LABELS, DataTypes.LongType);
    Dataset<Row> data = spark.createDataFrame(rows, schema).repartition(2).cache();
    ModelSource source = ModelSource.path(System.getProperty("java.io.tmpdir"),
        dir -> miniLm(Peft.lora(16).alpha(32).target("query", "value").build()));
    PeftModel distributed = source.load();
    SparkTrainer trainer = SparkTrainer.builder(source).steps(steps).globalBatch(8).learningRate(1e-4).seed(5)
        .build();
    long start = System.nanoTime();
    TrainingHistory h = trainer.fit(distributed, data);
    double sparkTotal = (System.nanoTime() - start) / 1e9;
    List<SparkTrainer.StepTimes> times = trainer.times().subList(1, steps); // the first builds the gradient function
    print(String.format(Locale.ROOT, "spark step (MiniLM LoRA q,v r=16, 8 x %d, 2 partitions of 4 rows, local[2], "
        + "median of steps 2-%d): total %.3f s = broadcast %.4f + job %.3f (shards' compute: longest %.3f, sum %.3f) "
        + "+ driver update %.4f; job minus the shards' compute sum %.3f s; first step %.2f s; losses %s; run %.1f s",
        SEQ, steps,
        median(times.stream().mapToDouble(t -> t.broadcast() + t.job() + t.update()).toArray()),
        median(times.stream().mapToDouble(SparkTrainer.StepTimes::broadcast).toArray()),
        median(times.stream().mapToDouble(SparkTrainer.StepTimes::job).toArray()),
        median(times.stream().mapToDouble(SparkTrainer.StepTimes::compute).toArray()),
        median(times.stream().mapToDouble(SparkTrainer.StepTimes::computeSum).toArray()),
        median(times.stream().mapToDouble(SparkTrainer.StepTimes::update).toArray()),
        median(times.stream().mapToDouble(t -> t.job() - t.computeSum()).toArray()),
        trainer.times().get(0).job(), Arrays.toString(h.steps().stream().mapToDouble(TrainingHistory.Step::loss)
            .toArray()), sparkTotal));
    ExecutorModels.evict(source);
    PeftModel single = source.load();
    List<String> columns = Examples.inputColumns(single.sameDiff(), List.of(data.columns()));
    List<List<Row>> parts = data.javaRDD().glom().collect();
    List<Batch> batches = new ArrayList<>();
    for (int step = 1; step <= steps; step++) {
      List<Row> global = new ArrayList<>();
      for (List<Row> own : parts) {
        for (int i = 0; i < 4; i++) {
          global.add(own.get(((step - 1) * 4 + i) % own.size()));
        }
      }
      batches.add(Batch.of(Examples.toArrays(single.sameDiff(), global, columns), Heads.LABELS));
    }
    TrainingHistory dp = Trainer.builder(single).steps(steps).learningRate(1e-4).seed(5).progress(null)
        .dataParallel(2).build().fit(batches);
    print(String.format(Locale.ROOT, "DataParallel(2) step, same batches: median of steps 2-%d %.3f s, first %.2f s; "
        + "losses %s", steps, median(dp.steps().subList(1, steps).stream().mapToDouble(TrainingHistory.Step::seconds)
            .toArray()), dp.steps().get(0).seconds(),
        Arrays.toString(dp.steps().stream().mapToDouble(TrainingHistory.Step::loss).toArray())));
    data.unpersist();
  }

  /** A synthetic task on tiny-bert: is most of a row's tokens from the lower half of the vocabulary? */
  void localSgdAccuracy(SparkSession spark) throws IOException {
    Random random = new Random(2026);
    List<Row> train = syntheticRows(random, 512);
    List<Row> test = syntheticRows(random, 256);
    StructType schema = new StructType().add(Bert.INPUT_IDS, DataTypes.createArrayType(DataTypes.LongType))
        .add(Heads.LABELS, DataTypes.LongType);
    Dataset<Row> data = spark.createDataFrame(train, schema).repartition(4).cache();
    ModelSource source = ModelSource.files(Fixtures.dir("tiny-bert"), dir -> Peft.lora(8).alpha(16)
        .target("query", "value").modulesToSave("classifier")
        .apply(Heads.sequenceClassification(HfModels.load(dir).sameDiff(), 32, 2, Heads.Pooling.MEAN, 3)));
    int steps = 96;
    for (int k : new int[] {1, 4, 8, 16}) {
      PeftModel model = source.load();
      SparkTrainer trainer = SparkTrainer.builder(source).steps(steps).globalBatch(32).learningRate(1e-2).seed(5)
          .schedule(dev.peft4j.train.LearningRateSchedule.CONSTANT).localSteps(k).build();
      long start = System.nanoTime();
      TrainingHistory h = trainer.fit(model, data);
      double seconds = (System.nanoTime() - start) / 1e9;
      print(String.format(Locale.ROOT, "local SGD k=%d (4 partitions x 8 rows, %d steps, lr 1e-2 constant): test "
          + "accuracy %.4f, train accuracy %.4f, mean loss of the last 8 steps %.4f, %d exchanges, %.1f s",
          k, steps, accuracy(model, test), accuracy(model, train), h.meanLossOfLast(8), trainer.times().size(),
          seconds));
    }
    ExecutorModels.evict(source);
    data.unpersist();
  }

  static List<Row> syntheticRows(Random random, int n) {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      List<Long> ids = new ArrayList<>();
      int low = 0;
      for (int t = 0; t < 8; t++) {
        long id = 1 + random.nextInt(127);
        low += id < 64 ? 1 : 0;
        ids.add(id);
      }
      if (low == 4) { // no ties
        ids.set(0, ids.get(0) < 64 ? 100L : 10L);
        low += ids.get(0) < 64 ? 1 : -1;
      }
      rows.add(RowFactory.create(ids, low > 4 ? 1L : 0L));
    }
    return rows;
  }

  static double accuracy(PeftModel model, List<Row> rows) {
    long[][] ids = new long[rows.size()][];
    long[] labels = new long[rows.size()];
    for (int i = 0; i < rows.size(); i++) {
      @SuppressWarnings("unchecked") // made from Java lists, not read back from Spark
      List<Long> own = (List<Long>) rows.get(i).get(0);
      ids[i] = own.stream().mapToLong(Long::longValue).toArray();
      labels[i] = rows.get(i).getLong(1);
    }
    Map<String, INDArray> inputs = new HashMap<>();
    inputs.put(Bert.INPUT_IDS, Nd4j.createFromArray(ids));
    inputs.put(Heads.LABELS, Nd4j.createFromArray(labels));
    INDArray logits = model.output(inputs, Heads.LOGITS).get(Heads.LOGITS);
    INDArray predicted = logits.argMax(1);
    int right = 0;
    for (int i = 0; i < rows.size(); i++) {
      right += predicted.getLong(i) == labels[i] ? 1 : 0;
    }
    return (double) right / rows.size();
  }

  static byte[] serialise(Object o) {
    try (ByteArrayOutputStream bytes = new ByteArrayOutputStream(); ObjectOutputStream out =
        new ObjectOutputStream(bytes)) {
      out.writeObject(o);
      out.flush();
      return bytes.toByteArray();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  static ShardResult deserialise(byte[] b) {
    try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(b))) {
      return (ShardResult) in.readObject();
    } catch (IOException | ClassNotFoundException e) {
      throw new IllegalStateException(e);
    }
  }

  static double median(long[] values) {
    long[] v = values.clone();
    Arrays.sort(v);
    return v[v.length / 2];
  }

  static double median(double[] values) {
    double[] v = values.clone();
    Arrays.sort(v);
    return v[v.length / 2];
  }

  static void print(String line) {
    System.out.println("MEASURE " + line);
  }
}
