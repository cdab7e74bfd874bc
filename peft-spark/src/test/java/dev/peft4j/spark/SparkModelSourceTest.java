package dev.peft4j.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfModels;
import dev.peft4j.testing.Fixtures;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The executors' model source: built once per JVM, and the bad inputs an executor reports by name. */
class SparkModelSourceTest {

  private static SparkSession spark;
  private static JavaSparkContext sc;

  @BeforeAll
  static void start() {
    spark = LocalSpark.start("model-source");
    sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  static final ModelSource.ModelBuilder LORA_HEAD = dir -> Peft.lora(4).alpha(8).target("query", "value")
      .apply(Heads.sequenceClassification(HfModels.load(dir).sameDiff(), 32, 2, Heads.Pooling.MEAN, 3));

  @Test
  void executorsBuildTheModelOncePerJvm() throws IOException {
    ModelSource source = ModelSource.files(Fixtures.dir("tiny-bert"), LORA_HEAD);
    assertTrue(source.carriedBytes() > 10_000, "carries the checkpoint: " + source);
    Broadcast<ModelSource> shipped = sc.broadcast(source);
    // four tasks over two threads of one JVM: each sees the same model object
    List<Integer> identities = sc.parallelize(List.of(1, 2, 3, 4), 4)
        .map(x -> ExecutorModels.with(shipped.value(), System::identityHashCode)).collect();
    assertEquals(1, identities.stream().distinct().count(), "one model per JVM: " + identities);
    assertTrue(ExecutorModels.holds(source));
    long trainable = ExecutorModels.with(source, m -> m.trainableParameters().count());
    assertEquals(source.load().trainableParameters().count(), trainable, "the driver builds the same model");
    ExecutorModels.evict(source);
    assertFalse(ExecutorModels.holds(source));
  }

  @Test
  void anUnreadablePathIsNamedWithTheExecutor() {
    ModelSource source = ModelSource.path("/nonexistent/peft4j/model", LORA_HEAD);
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> SparkFailures.run(
        () -> sc.parallelize(List.of(1, 2), 2).map(x -> ExecutorModels.with(source, m -> 1)).collect()));
    String m = e.getMessage();
    assertTrue(m.startsWith("executor driver on host "), m);
    assertTrue(m.contains("cannot read the model path /nonexistent/peft4j/model: it does not exist"), m);
    assertFalse(m.contains("Job aborted"), "not Spark's wrapping: " + m);
    assertFalse(ExecutorModels.holds(source), "a failed build is not cached");
  }

  @Test
  void anotherPeft4jVersionOnTheDriverIsRefused() throws IOException {
    ModelSource other = new ModelSource(Fixtures.dir("tiny-bert").toString(), null, LORA_HEAD, "0.0.1-elsewhere");
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> SparkFailures.run(
        () -> sc.parallelize(List.of(1), 1).map(x -> ExecutorModels.with(other, m -> 1)).collect()));
    String m = e.getMessage();
    assertTrue(m.startsWith("peft4j versions differ: the driver runs 0.0.1-elsewhere, executor driver on host "), m);
    assertTrue(m.contains(" runs " + ModelSource.localVersion() + ";"), m);
  }

  @Test
  void carriedFilesHaveALimitAndPathsMustBeGiven() {
    assertThrows(IllegalArgumentException.class, () -> ModelSource.path(" ", LORA_HEAD));
    assertThrows(IllegalArgumentException.class, () -> ModelSource.path("/x", null));
    IOException e = assertThrows(IOException.class,
        () -> ModelSource.files(Fixtures.dir("tiny-bert").resolve("config.json"), LORA_HEAD));
    assertTrue(e.getMessage().contains("not a directory"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> new ModelSource(null, new LinkedHashMap<>(), null, "v"));
  }
}
