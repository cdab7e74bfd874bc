package dev.peft4j.methods;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Mlp;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Keeps the README's quick start honest. */
class ReadmeExampleTest {

  @Test
  void quickStartPrintsWhatTheReadmeSays() {
    SameDiff sd = Mlp.classifier(32, 128, 3, 4, DataType.FLOAT, 7);
    PeftModel m = Peft.lora(16).alpha(32).dropout(0.05).target("fc", "head").apply(sd);
    // (32+128)·16 + 2·(128+128)·16 + (128+4)·16 trainable; 32·128+128 + 2·(128·128+128) + 128·4+4 base
    assertEquals("trainable params: 12,864 || all params: 50,628 || trainable%: 25.4089",
        m.trainableParameters().toString());
  }

  /** README "From Hugging Face and back", on the tiny task fixtures (bert-sst2 → tiny-bert-cls, its adapter). */
  @Test
  void fromHuggingFaceAndBackRunsAsTheReadmeShowsIt(@TempDir Path tmp) throws IOException {
    Batch sample = Graphs.tinyBertBatch(3);
    INDArray ids = sample.inputs().get(Bert.INPUT_IDS);
    List<Batch> batches = List.of(new Batch(Map.of(Bert.INPUT_IDS, ids, Bert.ATTENTION_MASK,
        sample.inputs().get(Bert.ATTENTION_MASK), Bert.TOKEN_TYPE_IDS, sample.inputs().get(Bert.TOKEN_TYPE_IDS),
        Heads.LABELS, sample.inputs().get(Heads.LABELS)), sample.tokens()));

    HfModels.Loaded bert = HfModels.loadTask(Fixtures.dir("tiny-bert-cls"));
    PeftModel model = Peft.fromPretrained(bert.sameDiff(), Fixtures.dir("seq-cls-tiny-bert"));
    INDArray logits = model.output(Map.of(Bert.INPUT_IDS, ids), Heads.LOGITS).get(Heads.LOGITS);
    model.unfreezeAdapter(PeftModel.DEFAULT_ADAPTER);
    Trainer.builder(model).steps(2).learningRate(1e-3).progress(null).build().fit(batches);
    model.save(tmp.resolve("bert-sst2-lora-more"));

    assertEquals(List.of(4L, 3L), List.of(logits.shape()[0], logits.shape()[1]));
    String config = Files.readString(tmp.resolve("bert-sst2-lora-more").resolve(AdapterFiles.CONFIG));
    assertTrue(config.contains("\"task_type\": \"SEQ_CLS\"") && config.contains("\"base_model_name_or_path\": \""),
        config);
  }
}
