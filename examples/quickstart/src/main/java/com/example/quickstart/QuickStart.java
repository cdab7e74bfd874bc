package com.example.quickstart;

import dev.peft4j.Peft;
import dev.peft4j.PeftModel;
import dev.peft4j.model.Heads;
import dev.peft4j.model.PretrainedModels;
import dev.peft4j.model.Tokenizer;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * peft4j's quick start as a user's application: LoRA on the pretrained all-MiniLM-L6-v2 with a sentiment head,
 * a few training steps, save the adapter, load it onto a fresh copy of the model, merge it into the weights.
 */
public final class QuickStart {

  static final List<String> TEXTS = List.of("I loved this film.", "A wonderful, joyful story.",
      "Great value, very pleased.", "Friendly staff and lovely food.", "This was terrible and boring.",
      "I want my money back.", "It broke after two days.", "The worst service ever.");
  static final long[] LABELS = {1, 1, 1, 1, 0, 0, 0, 0};
  static final long SEED = 7;

  /** What the quick start computed, for the test to check. */
  public record Result(TrainingHistory history, INDArray trained, INDArray loaded, INDArray merged,
      long trainableParameters) {}

  public static Result run(Path adapterDir) throws IOException {
    // 1. the pretrained encoder (from the classpath) and a 2-class head on its mean-pooled output
    PretrainedModels.Encoder miniLm = PretrainedModels.miniLm(32);
    SameDiff sd = Heads.sequenceClassification(miniLm.sameDiff(), miniLm.config().hiddenSize(), 2,
        Heads.Pooling.MEAN, SEED);
    Batch batch = batch(miniLm.tokenizer());

    // 2. LoRA on the attention's query and value projections; the new head trains in full
    PeftModel model = Peft.lora(8).alpha(16).dropout(0.1).target("query", "value")
        .modulesToSave(Heads.CLASSIFIER).apply(sd);
    System.out.println(model.trainableParameters());

    // 3. a few AdamW steps (the Trainer leaves the model in inference mode afterwards)
    TrainingHistory history = new Trainer.Builder(model).steps(4).learningRate(1e-3).seed(SEED).progress(null)
        .build().fit(List.of(batch));
    INDArray trained = model.output(batch.inputs(), Heads.LOGITS).get(Heads.LOGITS);

    // 4. save in Hugging Face PEFT's layout, load onto a fresh copy of the same base model
    model.save(adapterDir);
    SameDiff fresh = Heads.sequenceClassification(PretrainedModels.miniLm(32).sameDiff(),
        miniLm.config().hiddenSize(), 2, Heads.Pooling.MEAN, SEED);
    PeftModel loaded = Peft.load(fresh, adapterDir);
    INDArray loadedLogits = loaded.output(batch.inputs(), Heads.LOGITS).get(Heads.LOGITS);

    // 5. merge LoRA into the weights: a plain SameDiff graph again, computing the same logits
    SameDiff merged = loaded.mergeAndUnload();
    INDArray mergedLogits = merged.output(batch.inputs(), Heads.LOGITS).get(Heads.LOGITS);
    miniLm.tokenizer().close();
    return new Result(history, trained, loadedLogits, mergedLogits, model.trainableParameters().count());
  }

  private static Batch batch(Tokenizer tokenizer) {
    Tokenizer.Encoded encoded = tokenizer.encode(TEXTS);
    Map<String, INDArray> inputs = new HashMap<>(encoded.bertInputs());
    inputs.put(Heads.LABELS, Nd4j.createFromArray(LABELS));
    return new Batch(inputs, encoded.tokens());
  }

  public static void main(String[] args) throws IOException {
    Path dir = Files.createTempDirectory("peft4j-quickstart");
    Result r = run(dir);
    System.out.printf("loss %.4f -> %.4f; adapter saved in %s; merged logits %s%n",
        r.history().steps().get(0).loss(), r.history().steps().get(r.history().steps().size() - 1).loss(), dir,
        r.merged());
  }
}
