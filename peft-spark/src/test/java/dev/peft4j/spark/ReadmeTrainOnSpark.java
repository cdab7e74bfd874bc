package dev.peft4j.spark;

// The README's "Training on Spark" example, word for word but for this package line and the class name: compiled
// with the tests so that it keeps up with the API (not run: it reads a parquet file and a checkpoint given as arguments).
import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfModels;
import dev.peft4j.spark.ModelSource;
import dev.peft4j.spark.SparkTrainer;
import dev.peft4j.train.TrainingHistory;
import java.nio.file.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

final class ReadmeTrainOnSpark {
  public static void main(String[] args) throws Exception {
    String checkpoint = args[0];   // a Hugging Face BERT checkpoint directory every executor can read
    SparkSession spark = SparkSession.builder().appName("peft4j-lora").getOrCreate();
    // input_ids: array<bigint> (padded to one length per batch), attention_mask: array<bigint>, labels: bigint
    Dataset<Row> examples = spark.read().parquet(args[1]).repartition(16);   // 16 partitions = 16 shards
    ModelSource source = ModelSource.path(checkpoint, dir -> Peft.lora(16).alpha(32).target("query", "value")
        .modulesToSave("classifier")
        .apply(Heads.sequenceClassification(HfModels.load(dir).sameDiff(), 384, 2, Heads.Pooling.MEAN, 7)));
    PeftModel model = source.load();                        // the driver's copy: the one trained
    TrainingHistory h = SparkTrainer.builder(source).steps(500).globalBatch(256).learningRate(3e-4)
        .warmupSteps(50).seed(7).build()
        .fit(model, examples);
    System.out.printf("loss %.4f -> %.4f%n", h.firstLoss(), h.lastLoss());
    model.save(Path.of(args[2]));                           // the adapter, in Hugging Face PEFT's format
    spark.stop();
  }
}
