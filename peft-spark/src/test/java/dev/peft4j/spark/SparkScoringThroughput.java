package dev.peft4j.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.PretrainedModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
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
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Measures (asserts nothing about speed): rows/s of {@link SparkScorer} in local[2] against {@code PeftModel.output} /
 * {@code outputMixed} in this JVM, on all-MiniLM-L6-v2 with a 2-label mean-pooled head and LoRA r=16 on query and
 * value, one adapter and 4 mixed adapters ({@code -Dpeft4j.bench.master=local[1]} for another master). Run with
 * {@code mvn -o -B test -pl peft-spark -am -Dtest=SparkScoringThroughput -Dpeft4j.bench=true
 * -Dsurefire.failIfNoSpecifiedTests=false}; the numbers go to the test's output file.
 */
@EnabledIfSystemProperty(named = "peft4j.bench", matches = "true")
class SparkScoringThroughput {

  private static final int ROWS = Integer.getInteger("peft4j.bench.rows", 256);
  private static final int TOKENS = Integer.getInteger("peft4j.bench.tokens", 32);
  private static final int BATCH = 32;
  private static final int REPEATS = Integer.getInteger("peft4j.bench.repeats", 5);
  private static final String[] NAMES = {"a", "b", "c", "d"};

  @TempDir
  Path tmp;

  /** MiniLM + a seeded head + the adapters in {@code dirs}; the checkpoint path is unused (the model is bundled). */
  private static ModelSource.ModelBuilder miniLm(List<String> adapterNames, List<String> adapterDirs) {
    List<String> names = List.copyOf(adapterNames);     // serialisable copies: the builder ships to executors
    List<String> dirs = List.copyOf(adapterDirs);
    return ignored -> {
      PeftModel m = PeftModel.wrap(head());
      for (int i = 0; i < names.size(); i++) {
        Peft.loadAdapter(m, names.get(i), Path.of(dirs.get(i)));
      }
      return m;
    };
  }

  private static org.nd4j.autodiff.samediff.SameDiff head() {
    return Heads.sequenceClassification(PretrainedModels.miniLm(TOKENS).sameDiff(), 384, 2, Heads.Pooling.MEAN, 7);
  }

  private Path saveAdapter(String name, long seed) throws IOException {
    PeftModel m = Peft.lora(16).alpha(32).target("query", "value").apply(head());
    Nd4j.getRandom().setSeed(seed);
    for (String v : m.trainableParameters().names()) {
      INDArray arr = m.sameDiff().getVariable(v).getArr();
      arr.assign(Nd4j.randn(arr.dataType(), arr.shape()).muli(0.05));
    }
    Path dir = tmp.resolve(name);
    m.save(dir);
    return dir;
  }

  @Test
  void rowsPerSecond() throws IOException {
    List<String> dirs = new ArrayList<>();
    for (int i = 0; i < NAMES.length; i++) {
      dirs.add(saveAdapter(NAMES[i], 100 + i).toString());
    }
    Random random = new Random(5);
    System.out.println("SparkScoringThroughput seed 5, " + ROWS + " rows of " + TOKENS + " tokens, batches of "
        + BATCH);
    List<Row> rows = new ArrayList<>();
    long[][] ids = new long[ROWS][TOKENS];
    List<String> perRow = new ArrayList<>();
    for (int r = 0; r < ROWS; r++) {
      for (int t = 0; t < TOKENS; t++) {
        ids[r][t] = t == 0 ? 101 : t == TOKENS - 1 ? 102 : 1000 + random.nextInt(29000);
      }
      perRow.add(NAMES[r % NAMES.length]);
      rows.add(RowFactory.create(r, Arrays.stream(ids[r]).boxed().toList(), perRow.get(r)));
    }
    StructType schema = new StructType().add("id", DataTypes.IntegerType)
        .add(Bert.INPUT_IDS, DataTypes.createArrayType(DataTypes.LongType)).add("task", DataTypes.StringType);

    // one JVM, one thread: PeftModel.output / outputMixed over the same batches
    PeftModel one = miniLm(List.of("a"), dirs.subList(0, 1)).build(null);
    PeftModel four = miniLm(List.of(NAMES), dirs).build(null);
    Map<String, Runnable> runs = new LinkedHashMap<>();
    runs.put("PeftModel.output, 1 adapter", () -> {
      for (int b = 0; b < ROWS; b += BATCH) {
        one.output(Map.of(Bert.INPUT_IDS, Nd4j.createFromArray(Arrays.copyOfRange(ids, b, b + BATCH))),
            Heads.PROBABILITIES);
      }
    });
    runs.put("PeftModel.outputMixed, 4 adapters", () -> {
      for (int b = 0; b < ROWS; b += BATCH) {
        four.outputMixed(Map.of(Bert.INPUT_IDS, Nd4j.createFromArray(Arrays.copyOfRange(ids, b, b + BATCH))),
            perRow.subList(b, b + BATCH), Heads.PROBABILITIES);
      }
    });

    String master = System.getProperty("peft4j.bench.master", "local[2]");
    SparkSession spark = SparkSession.builder().master(master).appName("scoring-throughput")
        .config("spark.ui.enabled", "false").getOrCreate();
    try {
      Dataset<Row> data = spark.createDataFrame(rows, schema).repartition(2).cache();
      assertEquals(ROWS, data.count());
      Path unused = Files.createDirectories(tmp.resolve("checkpoint"));
      SparkScorer single = SparkScorer.builder(ModelSource.path(unused.toString(),
          miniLm(List.of("a"), dirs.subList(0, 1)))).batchSize(BATCH).build();
      SparkScorer mixed = SparkScorer.builder(ModelSource.path(unused.toString(), miniLm(List.of(NAMES), dirs)))
          .adapterColumn("task").batchSize(BATCH).build();
      Dataset<Row> scoredOne = single.score(data);
      Dataset<Row> scoredMixed = mixed.score(data);
      runs.put("SparkScorer " + master + ", 1 adapter", () -> assertEquals(ROWS, scoredOne.collectAsList().size()));
      runs.put("SparkScorer " + master + ", 4 adapters mixed",
          () -> assertEquals(ROWS, scoredMixed.collectAsList().size()));
      report(runs);
    } finally {
      spark.stop();
    }
  }

  /**
   * Runs each of {@code runs} once to warm up, then {@link #REPEATS} rounds of all of them in turn (interleaved, so
   * that a burst of load from other processes falls on every configuration alike); prints each one's median rows/s
   * and the load averages seen.
   */
  private static void report(Map<String, Runnable> runs) throws IOException {
    runs.values().forEach(Runnable::run);
    Map<String, List<Double>> rates = new LinkedHashMap<>();
    List<String> loads = new ArrayList<>();
    for (int round = 0; round < REPEATS; round++) {
      for (Map.Entry<String, Runnable> run : runs.entrySet()) {
        loads.add(Files.readString(Path.of("/proc/loadavg")).trim().split(" ")[0]);
        long start = System.nanoTime();
        run.getValue().run();
        rates.computeIfAbsent(run.getKey(), k -> new ArrayList<>()).add(ROWS / ((System.nanoTime() - start) / 1e9));
      }
    }
    System.out.println("1-minute load averages before each run: " + loads);
    rates.forEach((what, r) -> {
      List<Double> sorted = r.stream().sorted().toList();
      System.out.printf("%-42s median %7.1f rows/s (runs %s)%n", what, sorted.get(sorted.size() / 2),
          r.stream().map(x -> Math.round(x * 10) / 10.0).toList());
    });
  }
}
