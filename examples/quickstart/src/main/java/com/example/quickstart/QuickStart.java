package com.example.quickstart;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
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
 * peft4j's README quick start as a user's application, built against the published artifacts by their coordinates
 * only: LoRA on the pretrained all-MiniLM-L6-v2 with a sentiment head, five training steps, save the adapter, load it
 * onto a fresh copy of the model, merge it into the weights. The lines between the markers are the README's quick
 * start verbatim (peft-bench's {@code QuickStartTest} holds them equal).
 */
public final class QuickStart {

  /** What the quick start computed, for the test to check; {@code dir} holds the saved adapter. */
  public record Result(TrainingHistory history, INDArray trained, INDArray loaded, INDArray merged,
      long trainableParameters, Path dir) {}

  public static Result run() throws IOException {
    // README quick start: begin
    // the bundled all-MiniLM-L6-v2 (texts cut at 32 tokens) with a new 2-label classifier on top, seed 7
    PretrainedModels.Encoder miniLm = PretrainedModels.miniLm(32);
    SameDiff sd = Heads.sequenceClassification(miniLm.sameDiff(), miniLm.config().hiddenSize(), 2,
        Heads.Pooling.MEAN, 7);

    // one batch of two labelled texts: the encoder's inputs (token ids, attention mask, token types) + "labels"
    Tokenizer.Encoded encoded = miniLm.tokenizer().encode(List.of("I loved this film.", "This was terrible."));
    Map<String, INDArray> inputs = new HashMap<>(encoded.bertInputs());
    inputs.put(Heads.LABELS, Nd4j.createFromArray(1L, 0L));  // 1 = positive, 0 = negative
    Batch batch = new Batch(inputs, encoded.tokens());

    // LoRA r=8 on every layer's attention query and value; the new classifier trains in full beside it
    PeftModel model = Peft.lora(8).alpha(16).target("query", "value").modulesToSave(Heads.CLASSIFIER).apply(sd);
    System.out.println(model.trainableParameters());
    // trainable params: 74,498 || all params: 22,640,644 || trainable%: 0.3290

    // five AdamW steps on that batch (with a progress bar); only the adapter and the classifier change
    TrainingHistory history = Trainer.builder(model).steps(5).learningRate(1e-3).seed(7).build()
        .fit(List.of(batch));
    System.out.printf("loss %.3f → %.3f%n", history.firstLoss(), history.lastLoss());
    INDArray logits = model.output(batch.inputs(), Heads.LOGITS).get(Heads.LOGITS);  // [2 texts, 2 labels]

    // save in Hugging Face PEFT's format: adapter_config.json + adapter_model.safetensors
    Path dir = Files.createTempDirectory("my-adapter");
    model.save(dir);

    // later, or in another program: the same base model, with the saved adapter loaded onto it
    PretrainedModels.Encoder again = PretrainedModels.miniLm(32);
    SameDiff base = Heads.sequenceClassification(again.sameDiff(), again.config().hiddenSize(), 2,
        Heads.Pooling.MEAN, 7);
    PeftModel loaded = Peft.load(base, dir);
    INDArray loadedLogits = loaded.output(batch.inputs(), Heads.LOGITS).get(Heads.LOGITS);

    // merge for inference: W ← W + s·A·B, the LoRA branches removed; a plain SameDiff graph again
    SameDiff merged = loaded.mergeAndUnload();
    INDArray mergedLogits = merged.output(batch.inputs(), Heads.LOGITS).get(Heads.LOGITS);

    miniLm.tokenizer().close();  // tokenizers hold native memory
    again.tokenizer().close();
    // README quick start: end
    return new Result(history, logits, loadedLogits, mergedLogits, model.trainableParameters().count(), dir);
  }

  public static void main(String[] args) throws IOException {
    Result r = run();
    System.out.printf("adapter saved in %s; merged logits %s%n", r.dir(), r.merged());
  }
}
