package dev.peft4j.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.methods.Peft;
import dev.peft4j.model.HfModels;
import dev.peft4j.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's "Scoring on Spark" example, run as written on the tiny fixtures: tiny-bert-cls for bert-sst2, the PEFT
 * adapter seq-cls-tiny-bert for sst2 and a LoRA adapter saved here for imdb, parquet files in a temporary directory
 * for /shared.
 */
class ReadmeScoringExampleTest {

  @TempDir
  Path shared;

  @Test
  void theReadmeExampleScoresAndWritesParquet() throws IOException {
    String model = Fixtures.dir("tiny-bert-cls").toString();
    String sst2 = Fixtures.dir("seq-cls-tiny-bert").toString();       // PEFT's, with its own classifier
    // one adapter with its own head per model: a second modules_to_save copy of 'classifier' does not load (README)
    Path imdb = shared.resolve("imdb");
    Peft.lora(4).alpha(8).target("query", "value").apply(HfModels.loadTask(Path.of(model)).sameDiff()).save(imdb);
    SparkSession spark = SparkSession.builder().appName("score").master("local[*]")
        .config("spark.ui.enabled", "false").getOrCreate();
    try {
      StructType schema = new StructType().add("id", DataTypes.IntegerType)
          .add("input_ids", DataTypes.createArrayType(DataTypes.IntegerType))
          .add("attention_mask", DataTypes.createArrayType(DataTypes.IntegerType))
          .add("task", DataTypes.StringType);
      spark.createDataFrame(List.of(
          RowFactory.create(1, List.of(2, 7, 9, 3), List.of(1, 1, 1, 1), "sst2"),
          RowFactory.create(2, List.of(2, 11, 3), List.of(1, 1, 1), "imdb"),
          RowFactory.create(3, List.of(2, 5, 3), List.of(1, 1, 1), null)), schema)
          .write().parquet(shared.resolve("reviews-tokenised.parquet").toString());

      // from here on, the README's example with its paths replaced
      Dataset<Row> tokenised = spark.read().parquet(shared.resolve("reviews-tokenised.parquet").toString());
      SparkScorer scorer = SparkScorer.builder(model)
          .adapter("sst2", sst2)
          .adapter("imdb", imdb.toString())
          .adapterColumn("task")
          .batchSize(32)
          .build();
      scorer.score(tokenised)
          .select("id", "task", "predicted_label", "probabilities")
          .write().parquet(shared.resolve("scored").toString());

      List<Row> scored = spark.read().parquet(shared.resolve("scored").toString()).orderBy("id").collectAsList();
      assertEquals(List.of("id", "task", "predicted_label", "probabilities"),
          Arrays.asList(spark.read().parquet(shared.resolve("scored").toString()).columns()));
      assertEquals(3, scored.size());
      for (Row r : scored) {
        List<Double> p = r.getList(3);
        assertEquals(3, p.size(), "tiny-bert-cls has 3 labels");
        assertEquals(1.0, p.stream().mapToDouble(Double::doubleValue).sum(), 1e-6);
        assertTrue(r.getInt(2) >= 0 && r.getInt(2) < 3);
      }
      ExecutorModels.evict(scorer.source());
    } finally {
      spark.stop();
    }
  }
}
