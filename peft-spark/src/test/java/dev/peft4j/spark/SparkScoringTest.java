package dev.peft4j.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfCheckpoint;
import dev.peft4j.model.LlamaConfig;
import dev.peft4j.model.HfModels;
import dev.peft4j.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.SparkException;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * {@link SparkScorer} in Spark's local mode (2 task threads, started here) on the tiny BERT classifier
 * (tiny-bert-cls: 3 labels, 64 positions): its scores equal {@code PeftModel.output} / {@code outputMixed} on each row
 * alone, each executor JVM loads the model once, and bad input fails with the loader's or the schema's own message.
 */
class SparkScoringTest {

  private static final double TOLERANCE = 1e-6;
  private static final String[] NAMES = {"hf", "qv", "dense", "key"};

  @TempDir
  static Path tmp;
  private static SparkSession spark;
  private static Path model;
  private static Map<String, Path> adapters;

  @BeforeAll
  static void start() throws IOException {
    model = Fixtures.dir("tiny-bert-cls");
    adapters = new HashMap<>();
    adapters.put("hf", Fixtures.dir("seq-cls-tiny-bert"));      // saved by Hugging Face PEFT
    adapters.put("qv", saveRandomLora(4, 11, "query", "value"));
    adapters.put("dense", saveRandomLora(2, 12, "dense"));
    adapters.put("key", saveRandomLora(8, 13, "key"));
    spark = LocalSpark.start("scoring");
  }

  @AfterAll
  static void stop() {
    if (spark != null) {
      spark.stop();
    }
  }

  /** A LoRA adapter whose A and B are drawn from {@code seed} (B is zero at init, which would score as the base). */
  private static Path saveRandomLora(int r, long seed, String... targets) throws IOException {
    PeftModel m = Peft.lora(r).alpha(2 * r).target(targets).apply(HfModels.loadTask(model).sameDiff());
    Nd4j.getRandom().setSeed(seed);
    for (String name : m.trainableParameters().names()) {
      INDArray arr = m.sameDiff().getVariable(name).getArr();
      arr.assign(Nd4j.randn(arr.dataType(), arr.shape()).muli(0.3));
    }
    Path dir = tmp.resolve("adapter-" + String.join("-", targets) + "-" + seed);
    m.save(dir);
    return dir;
  }

  private static final StructType SCHEMA = new StructType()
      .add("id", DataTypes.IntegerType, false)
      .add(Bert.INPUT_IDS, DataTypes.createArrayType(DataTypes.IntegerType, false), true)
      .add("task", DataTypes.StringType, true);

  /** {@code n} rows of 3–12 random tokens, each naming one of {@code names} (a null name: the base model). */
  private static List<Row> rows(long seed, int n, String... names) {
    System.out.println("SparkScoringTest rows seed " + seed);
    Random random = new Random(seed);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int[] ids = new int[3 + random.nextInt(10)];
      for (int t = 0; t < ids.length; t++) {
        ids[t] = 1 + random.nextInt(127);
      }
      String name = names.length == 0 ? null : names[random.nextInt(names.length)];
      rows.add(RowFactory.create(i, Arrays.stream(ids).boxed().toList(), name));
    }
    return rows;
  }

  private static Map<String, String> dirs(String... names) {
    Map<String, String> out = new java.util.LinkedHashMap<>();
    for (String n : names) {
      out.put(n, adapters.get(n).toString());
    }
    return out;
  }

  /** The reference: the model with {@code names} loaded in this JVM, outside Spark. */
  private static PeftModel reference(String... names) throws IOException {
    PeftModel m = PeftModel.wrap(HfModels.loadTask(model).sameDiff());
    for (String n : names) {
      Peft.loadAdapter(m, n, adapters.get(n));
    }
    return m;
  }

  private static Map<String, INDArray> alone(Row row) {
    @SuppressWarnings("unchecked")
    List<Integer> ids = (List<Integer>) row.get(1);                  // a Java list: the test built the row
    long[][] one = {ids.stream().mapToLong(Integer::longValue).toArray()};
    return Map.of(Bert.INPUT_IDS, Nd4j.createFromArray(one));                                 // [1, s]
  }

  /** Checks every scored row against {@code expected(row)} and the label against its argmax; returns the rows. */
  private static void assertScores(List<Row> input, List<Row> scored, java.util.function.Function<Row, float[]> expected,
      String scoresColumn) {
    assertEquals(input.size(), scored.size());
    Map<Integer, Row> byId = new HashMap<>();
    scored.forEach(r -> byId.put(r.getInt(0), r));
    for (Row in : input) {
      Row out = byId.get(in.getInt(0));
      assertEquals(in.get(1), out.getList(1), "the input columns come through");
      assertEquals(in.get(2), out.get(2));
      float[] want = expected.apply(in);
      List<Double> got = out.getList(out.fieldIndex(scoresColumn));
      assertEquals(want.length, got.size());
      int argmax = 0;
      for (int l = 0; l < want.length; l++) {
        assertEquals(want[l], got.get(l), TOLERANCE, "row " + in.getInt(0) + " label " + l);
        argmax = want[l] > want[argmax] ? l : argmax;
      }
      assertEquals(argmax, out.getInt(out.fieldIndex("predicted_label")), "row " + in.getInt(0));
    }
  }

  /** Models built by {@link #COUNTED} in this JVM. */
  private static final AtomicInteger BUILDS = new AtomicInteger();
  private static final ModelSource.ModelBuilder COUNTED = dir -> {
    BUILDS.incrementAndGet();
    return new TaskModelWithAdapters(Map.of("qv", adapters.get("qv").toString())).build(dir);
  };

  @Test
  void oneAdapterScoresEqualPeftModelOutputRowForRowAndTheJvmBuildsOnce() throws IOException {
    List<Row> input = rows(101, 37);
    Dataset<Row> data = spark.createDataFrame(input, SCHEMA).repartition(3);
    int buildsBefore = BUILDS.get();
    SparkScorer scorer = SparkScorer.builder(ModelSource.path(model.toString(), COUNTED)).batchSize(5).build();
    Dataset<Row> scored = scorer.score(data);
    assertEquals(List.of("id", Bert.INPUT_IDS, "task", "predicted_label", "probabilities"),
        Arrays.asList(scored.columns()));
    List<Row> out = scored.collectAsList();

    PeftModel ref = reference("qv");
    assertScores(input, out, row -> ref.output(alone(row), "probabilities").get("probabilities").toFloatVector(),
        "probabilities");
    assertEquals(1, BUILDS.get() - buildsBefore,
        "the JVM builds the model once for 3 partitions of 8 batches, on 2 task threads");
    scored.count();
    assertEquals(1, BUILDS.get() - buildsBefore, "and keeps it for the next job");
    ExecutorModels.evict(scorer.source());
  }

  @Test
  void mixedAdaptersScoreEqualOutputMixedRowForRow() throws IOException {
    String[] perRow = {"hf", "qv", "dense", "key", null};
    List<Row> input = rows(202, 41, perRow);
    Dataset<Row> data = spark.createDataFrame(input, SCHEMA).repartition(2);
    SparkScorer.Builder builder = SparkScorer.builder(model.toString());
    dirs(NAMES).forEach(builder::adapter);
    SparkScorer scorer = builder.adapterColumn("task").batchSize(6).output(ScoreOutput.LOGITS).build();
    List<Row> out = scorer.score(data).collectAsList();
    ExecutorModels.evict(scorer.source());

    PeftModel ref = reference(NAMES);
    assertScores(input, out, row -> ref.outputMixed(alone(row), Arrays.asList(row.getString(2)), "logits")
        .get("logits").toFloatVector(), "logits");
    // the adapters differ: a row scored with another adapter would not pass
    float[] hf = ref.outputMixed(alone(input.get(0)), List.of("hf"), "logits").get("logits").toFloatVector();
    float[] key = ref.outputMixed(alone(input.get(0)), List.of("key"), "logits").get("logits").toFloatVector();
    assertTrue(Math.abs(hf[0] - key[0]) > 1e-3, Arrays.toString(hf) + " vs " + Arrays.toString(key));
  }

  @Test
  void attentionMaskAndLongIdsAreRead() throws IOException {
    StructType schema = new StructType().add("id", DataTypes.IntegerType)
        .add(Bert.INPUT_IDS, DataTypes.createArrayType(DataTypes.LongType))
        .add(Bert.ATTENTION_MASK, DataTypes.createArrayType(DataTypes.LongType));
    // the second row pads itself: its last two tokens are masked out, so it scores as its first three alone
    List<Row> input = List.of(RowFactory.create(0, List.of(5L, 6L, 7L), List.of(1L, 1L, 1L)),
        RowFactory.create(1, List.of(5L, 6L, 7L, 0L, 0L), List.of(1L, 1L, 1L, 0L, 0L)));
    SparkScorer scorer = SparkScorer.builder(model.toString()).adapter("dense", adapters.get("dense").toString())
        .build();
    List<Row> out = scorer.score(spark.createDataFrame(input, schema)).collectAsList();
    ExecutorModels.evict(scorer.source());
    List<Double> first = out.get(0).getList(4);
    List<Double> second = out.get(1).getList(4);
    PeftModel ref = reference("dense");
    float[] want = ref.output(Map.of(Bert.INPUT_IDS, Nd4j.createFromArray(new long[][] {{5, 6, 7}})),
        "probabilities").get("probabilities").toFloatVector();
    for (int l = 0; l < want.length; l++) {
      assertEquals(want[l], first.get(l), TOLERANCE);
      assertEquals(want[l], second.get(l), TOLERANCE);
    }
  }

  /**
   * Hugging Face's LlamaForSequenceClassification on tiny-llama with pad id 0 (as its PEFT fixture was made) and the
   * PEFT SEQ_CLS adapter: it reads each row at its last non-pad token, so right-padding a batch must not move it.
   */
  private static final ModelSource.ModelBuilder LLAMA_CLS = dir -> {
    try (HfCheckpoint weights = HfCheckpoint.open(dir)) {
      PeftModel m = PeftModel.wrap(Heads.llamaForSequenceClassification(LlamaConfig.read(dir.resolve("config.json")),
          weights, 2, 0L, 0));
      return Peft.loadAdapter(m, "cls", Fixtures.dir("seq-cls-tiny-llama"));
    }
  };

  @Test
  void aDecoderClassifiersPaddedBatchesEqualEachRowAlone() throws IOException {
    List<Row> input = rows(404, 19, "cls");
    SparkScorer scorer = SparkScorer.builder(ModelSource.path(Fixtures.dir("tiny-llama").toString(), LLAMA_CLS))
        .adapterColumn("task").batchSize(4).padTokenId(0).output(ScoreOutput.LOGITS).build();
    List<Row> out = scorer.score(spark.createDataFrame(input, SCHEMA).repartition(2)).collectAsList();
    ExecutorModels.evict(scorer.source());
    PeftModel ref = LLAMA_CLS.build(Fixtures.dir("tiny-llama"));
    assertScores(input, out, row -> ref.output(alone(row), "logits").get("logits").toFloatVector(), "logits");
  }

  @Test
  void missingOrMistypedColumnsAreNamedBeforeAnyTask() {
    SparkScorer mixed = SparkScorer.builder(model.toString()).adapter("qv", adapters.get("qv").toString())
        .adapter("key", adapters.get("key").toString()).adapterColumn("task").build();
    Dataset<Row> text = spark.createDataFrame(List.of(RowFactory.create("a sentence", "qv")),
        new StructType().add("text", DataTypes.StringType).add("task", DataTypes.StringType));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> mixed.score(text));
    assertEquals("the dataset has no column 'input_ids' (token ids, array<int> or array<bigint>); its columns: "
        + "[text, task]", e.getMessage());

    Dataset<Row> stringIds = spark.createDataFrame(List.of(RowFactory.create("1 2 3", "qv")),
        new StructType().add(Bert.INPUT_IDS, DataTypes.StringType).add("task", DataTypes.StringType));
    e = assertThrows(IllegalArgumentException.class, () -> mixed.score(stringIds));
    assertEquals("column 'input_ids' is string; expected array<int> or array<bigint>", e.getMessage());

    Dataset<Row> noTask = spark.createDataFrame(rows(1, 2), SCHEMA).drop("task");
    e = assertThrows(IllegalArgumentException.class, () -> mixed.score(noTask));
    assertEquals("the dataset has no adapter column 'task' (a string naming each row's adapter); its columns: "
        + "[id, input_ids]", e.getMessage());

    Dataset<Row> intTask = spark.createDataFrame(rows(1, 2), SCHEMA).drop("task").withColumnRenamed("id", "task");
    e = assertThrows(IllegalArgumentException.class, () -> mixed.score(intTask));
    assertEquals("adapter column 'task' is int; expected string", e.getMessage());

    Dataset<Row> labelled = spark.createDataFrame(rows(1, 2, "qv"), SCHEMA).withColumnRenamed("id",
        "predicted_label");
    e = assertThrows(IllegalArgumentException.class, () -> mixed.score(labelled));
    assertTrue(e.getMessage().startsWith("the dataset already has a column 'predicted_label'"), e.getMessage());
  }

  @Test
  void anAdapterNameThatWasNotLoadedFailsAtItsRowNamingTheLoadedOnes() throws IOException {
    SparkScorer scorer = SparkScorer.builder(model.toString()).adapter("qv", adapters.get("qv").toString())
        .adapter("key", adapters.get("key").toString()).adapterColumn("task").build();
    List<Row> input = new ArrayList<>(rows(303, 3, "qv"));
    input.set(1, RowFactory.create(1, List.of(4, 5, 6), "sst2"));
    Dataset<Row> scored = scorer.score(spark.createDataFrame(input, SCHEMA).coalesce(1));
    SparkException e = assertThrows(SparkException.class, scored::collectAsList);
    Throwable cause = root(e);
    assertTrue(cause instanceof IllegalArgumentException, cause.toString());
    assertEquals("row 1 of partition 0: column 'task' names adapter 'sst2', which was not loaded; loaded: [qv, key]",
        cause.getMessage());
    ExecutorModels.evict(scorer.source());
  }

  @Test
  void anAdapterDirectoryThatIsMissingOrDoesNotFitFailsWithPeftLoadsMessage() throws IOException {
    Path missing = tmp.resolve("no-such-adapter");
    String loadMessage = assertThrows(IOException.class,
        () -> Peft.load(HfModels.loadTask(model).sameDiff(), missing)).getMessage();
    SparkScorer scorer = SparkScorer.builder(model.toString()).adapter("gone", missing.toString()).build();
    Dataset<Row> data = spark.createDataFrame(rows(1, 4), SCHEMA);
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> scorer.score(data));
    assertTrue(e.getMessage().startsWith("executor driver on host "), e.getMessage());
    assertTrue(e.getMessage().endsWith(" could not load the model from " + model + ": adapter 'gone': "
        + loadMessage), e.getMessage());

    Path llama = Fixtures.dir("lora-tiny-llama");                 // targets q_proj, v_proj: nothing in BERT
    String fitMessage = assertThrows(IllegalArgumentException.class,
        () -> Peft.load(HfModels.loadTask(model).sameDiff(), llama)).getMessage();
    SparkScorer misfit = SparkScorer.builder(model.toString()).adapter("llama", llama.toString()).build();
    e = assertThrows(IllegalStateException.class, () -> misfit.score(data));
    assertTrue(e.getMessage().startsWith("executor driver on host "), e.getMessage());
    assertTrue(e.getMessage().endsWith(": adapter 'llama': " + fitMessage), e.getMessage());
    assertFalse(e.getMessage().contains("Job aborted"), "not Spark's account: " + e.getMessage());
    assertFalse(ExecutorModels.holds(misfit.source()), "a failed build is not kept");

    SparkScorer bare = SparkScorer.builder(Fixtures.dir("tiny-bert").toString()).build();   // BertModel: no head
    IllegalArgumentException iae = assertThrows(IllegalArgumentException.class, () -> bare.score(data));
    assertEquals("the model is not a sequence classifier: scoring needs an 'input_ids' input and a 'probabilities' "
        + "output", iae.getMessage());
    ExecutorModels.evict(bare.source());
  }

  @Test
  void severalAdaptersWithoutAColumnAreRefused() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> SparkScorer.builder(model.toString()).adapter("qv", "/a").adapter("key", "/b").build());
    assertEquals("2 adapters [qv, key] need an adapter column naming each row's adapter", e.getMessage());
  }

  private static Throwable root(Throwable t) {
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    return t;
  }
}
