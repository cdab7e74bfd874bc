package dev.peft4j.prompt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.io.Safetensors;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Hooks;
import dev.peft4j.model.Llama;
import dev.peft4j.prompt.PromptTuningConfig.PromptInit;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.ToyModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Prompt tuning against Hugging Face PEFT 0.21 (scripts/fixtures_prompt.py): its saved prompts reproduce its outputs on
 * tiny-llama (RoPE) and tiny-bert (absolute positions); peft4j's saved prompts are laid out as PEFT's; the inits; bad
 * input.
 */
class PromptTuningTest {

  @Test
  void aPromptSavedByHuggingFacePeftReproducesItsLogitsAndLossOnTinyLlama() throws IOException {
    Path dir = Fixtures.dir("prompt-tiny-llama");
    SameDiff sd = PromptFixtures.tinyLlama();
    PeftModel model = Peft.load(sd, dir);
    GraphRewriter.of(sd).requireConsistentLinks();
    double[] diff = PromptFixtures.diffToGolden(sd, PromptFixtures.read(dir.resolve("golden.safetensors")));
    assertTrue(diff[0] <= 1e-4, "max |Δlogits| on real tokens " + diff[0]);
    assertTrue(diff[1] <= 1e-4, "|Δloss| " + diff[1]);
    assertEquals(5L * 64, model.trainableParameters().count());
  }

  @Test
  void aPromptSavedByHuggingFacePeftReproducesItsHiddenStatesOnTinyBert() throws IOException {
    Path dir = Fixtures.dir("prompt-tiny-bert");
    SameDiff sd = PromptFixtures.tinyBert();
    Peft.load(sd, dir);
    double[] diff = PromptFixtures.diffToGolden(sd, PromptFixtures.read(dir.resolve("golden.safetensors")));
    assertTrue(diff[0] <= 1e-4, "max |Δhidden| on real tokens " + diff[0]);
  }

  @Test
  void disablingAndUnloadingGiveTheBaseLogitsBack() throws IOException {
    Path dir = Fixtures.dir("prompt-tiny-llama");
    Map<String, INDArray> golden = PromptFixtures.read(dir.resolve("golden.safetensors"));
    Map<String, INDArray> base = PromptFixtures.read(Fixtures.dir("tiny-llama").resolve("golden.safetensors"));
    SameDiff sd = PromptFixtures.tinyLlama();
    PeftModel model = Peft.load(sd, dir);
    try (var scope = model.disableAdapters()) {
      assertTrue(PromptFixtures.diffToGolden(sd, base)[0] <= 1e-4);
    }
    assertTrue(PromptFixtures.diffToGolden(sd, golden)[0] <= 1e-4);
    SameDiff unloaded = model.unload();
    assertTrue(PromptFixtures.diffToGolden(unloaded, base)[0] <= 1e-4);
    assertTrue(PromptFixtures.diffToGolden(unloaded, base)[1] <= 1e-4);
  }

  /**
   * Writes {@code target/peft4j-prompt-tiny-llama}: a peft4j prompt with golden logits, for
   * {@code python scripts/fixtures_prompt.py --check peft-methods/target/peft4j-prompt-tiny-llama} (by hand).
   */
  @Test
  void peft4jWritesPeftsKeyShapeAndConfig() throws IOException {
    SameDiff sd = PromptFixtures.tinyLlama();
    PeftModel model = Peft.promptTuning(6).init(PromptInit.SAMPLE_VOCAB).seed(4).apply(sd);
    Path dir = Path.of("target", "peft4j-prompt-tiny-llama");
    model.save(dir);
    Map<String, INDArray> tensors = PromptFixtures.read(dir.resolve(AdapterFiles.WEIGHTS));
    assertEquals(java.util.Set.of("prompt_embeddings"), tensors.keySet(), "PEFT's key, without base_model.model.");
    assertArrayEquals(new long[] {6, 64}, tensors.get("prompt_embeddings").shape());
    JsonObject config = JsonParser.parseString(Files.readString(dir.resolve(AdapterFiles.CONFIG))).getAsJsonObject();
    assertEquals("PROMPT_TUNING", config.get("peft_type").getAsString());
    assertEquals(6, config.get("num_virtual_tokens").getAsInt());
    assertEquals("SAMPLE_VOCAB", config.get("prompt_tuning_init").getAsString());
    Map<String, INDArray> golden = PromptFixtures.read(Fixtures.dir("tiny-llama").resolve("golden.safetensors"));
    Map<String, INDArray> out = sd.output(PromptFixtures.inputs(golden), Llama.LOGITS, Llama.LOSS);
    Map<String, INDArray> written = new LinkedHashMap<>();
    written.put("input_ids", golden.get("input_ids"));
    written.put("attention_mask", golden.get("attention_mask"));
    written.put("loss_labels", golden.get("loss_labels"));
    written.put("logits", out.get(Llama.LOGITS));
    written.put("loss", out.get(Llama.LOSS).reshape());
    Safetensors.write(dir.resolve("golden.safetensors"), written, Map.of("format", "pt"));
    assertArrayEquals(new long[] {3, 10, 128}, out.get(Llama.LOGITS).shape(), "virtual positions are dropped");
  }

  /** A classification head on BERT pools over the real tokens only: the mean of the trimmed hidden states. */
  @Test
  void aMeanPoolingHeadReadsTheRealTokensOnly() throws IOException {
    SameDiff sd = dev.peft4j.model.Heads.sequenceClassification(PromptFixtures.tinyBert(), 32, 3,
        dev.peft4j.model.Heads.Pooling.MEAN, 1);
    Peft.promptTuning(4).seed(3).modulesToSave("classifier").apply(sd);
    Map<String, INDArray> golden = PromptFixtures.read(Fixtures.dir("tiny-bert").resolve("golden.safetensors"));
    Map<String, INDArray> in = PromptFixtures.inputs(golden);
    Map<String, INDArray> out = sd.output(in, dev.peft4j.model.Bert.LAST_HIDDEN_STATE, "logits");
    INDArray hidden = out.get(dev.peft4j.model.Bert.LAST_HIDDEN_STATE);                   // [3, 10, 32]
    assertArrayEquals(new long[] {3, 10, 32}, hidden.shape(), "virtual positions are trimmed");
    INDArray mask = golden.get("attention_mask");
    INDArray w = sd.getArrForVarName("classifier.weight");
    INDArray b = sd.getArrForVarName("classifier.bias");
    for (int i = 0; i < 3; i++) {
      INDArray sum = org.nd4j.linalg.factory.Nd4j.zeros(hidden.dataType(), 1, 32);
      long real = 0;
      for (int t = 0; t < 10; t++) {
        if (mask.getLong(i, t) == 1) {
          sum.addi(hidden.get(org.nd4j.linalg.indexing.NDArrayIndex.point(i),
              org.nd4j.linalg.indexing.NDArrayIndex.point(t), org.nd4j.linalg.indexing.NDArrayIndex.all())
              .reshape(1, 32));
          real++;
        }
      }
      INDArray expected = sum.divi(real).mmul(w).addiRowVector(b);                        // [1, 3]
      double d = expected.sub(out.get("logits").getRow(i).reshape(1, 3)).amaxNumber().doubleValue();
      assertTrue(d <= 1e-5, "row " + i + ": head logits vs the mean over real tokens: " + d);
    }
  }

  @Test
  void sampleVocabAndTextInitsAreRowsOfTheWordEmbeddings() {
    SameDiff sd = ToyModels.tokens(org.nd4j.linalg.api.buffer.DataType.FLOAT);
    INDArray table = sd.getArrForVarName("embed_tokens.weight").dup();
    PeftModel model = Peft.promptTuning(5).initText("x y", 3, 9).tokenizer("toy").apply(sd);
    INDArray prompt = sd.getArrForVarName(model.trainableParameters().names().get(0));
    long[] expected = {3, 9, 3, 9, 3};
    for (int i = 0; i < 5; i++) {
      assertEquals(table.getRow(expected[i]), prompt.getRow(i), "row " + i + " is the text repeated");
    }
    SameDiff sd2 = ToyModels.tokens(org.nd4j.linalg.api.buffer.DataType.FLOAT);
    PeftModel sampled = Peft.promptTuning(4).init(PromptInit.SAMPLE_VOCAB).seed(11).apply(sd2);
    INDArray rows = sd2.getArrForVarName(sampled.trainableParameters().names().get(0));
    for (int i = 0; i < 4; i++) {
      INDArray row = rows.getRow(i);
      boolean found = false;
      for (int v = 0; v < table.rows(); v++) {
        found |= table.getRow(v).equals(row);
      }
      assertTrue(found, "row " + i + " is a row of the word embeddings");
    }
    SameDiff sd3 = ToyModels.tokens(org.nd4j.linalg.api.buffer.DataType.FLOAT);
    PeftModel random = Peft.promptTuning(4).seed(11).apply(sd3);
    INDArray r = sd3.getArrForVarName(random.trainableParameters().names().get(0));
    assertNotEquals(rows, r);
    assertTrue(Math.abs(r.stdNumber().doubleValue() - 1) < 0.5, "RANDOM is N(0, 1): std " + r.stdNumber());
  }

  @Test
  void aTextLongerThanTheVirtualTokensIsRefused() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Peft.promptTuning(2).initText("three token text", 4, 5, 6));
    assertTrue(e.getMessage().contains("has 3 tokens, more than the 2 virtual tokens"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Peft.promptTuning(2).init(PromptInit.TEXT).build());
    assertThrows(IllegalArgumentException.class, () -> Peft.promptTuning(2).initText("ab", 1).build(),
        "a TEXT init needs a tokenizer, as in HF");
    assertThrows(IllegalArgumentException.class, () -> Peft.promptTuning(0));
  }

  /** n + s beyond the model's positions fails at run time, naming the reason (n alone is checked at apply). */
  @Test
  void anInputTooLongForThePromptIsRefusedByName() {
    SameDiff sd = PromptFixtures.tinyLlama();
    Peft.promptTuning(60).apply(sd);
    Map<String, INDArray> fits = Map.of(Llama.INPUT_IDS, org.nd4j.linalg.factory.Nd4j.zeros(
        org.nd4j.linalg.api.buffer.DataType.INT64, 1, 4), Llama.ATTENTION_MASK, org.nd4j.linalg.factory.Nd4j.ones(
        org.nd4j.linalg.api.buffer.DataType.INT64, 1, 4));
    assertArrayEquals(new long[] {1, 4, 128}, sd.output(fits, Llama.LOGITS).get(Llama.LOGITS).shape(), "60 + 4 = 64");
    Map<String, INDArray> tooLong = Map.of(Llama.INPUT_IDS, org.nd4j.linalg.factory.Nd4j.zeros(
        org.nd4j.linalg.api.buffer.DataType.INT64, 1, 5), Llama.ATTENTION_MASK, org.nd4j.linalg.factory.Nd4j.ones(
        org.nd4j.linalg.api.buffer.DataType.INT64, 1, 5));
    RuntimeException e = assertThrows(RuntimeException.class, () -> sd.output(tooLong, Llama.LOGITS));
    assertTrue(e.getMessage().contains("virtual_tokens_plus_sequence_length_exceed_64_positions"), e.getMessage());
  }

  @Test
  void badInputLeavesTheGraphUntouched() {
    PromptFixtures.rejects(ToyModels::mlp, IllegalArgumentException.class, sd -> Peft.promptTuning(2).apply(sd),
        "prompt tuning needs a transformer graph", Hooks.SEQ_LEN, Hooks.INPUTS_EMBEDS);
    PromptFixtures.rejects(ToyModels::tokens, IllegalArgumentException.class, sd -> Peft.promptTuning(16).apply(sd),
        "16 virtual tokens", "16 positions");
    PromptFixtures.rejects(ToyModels::tokens, IllegalArgumentException.class,
        sd -> Peft.promptTuning(3).initText("z", 99).tokenizer("toy").apply(sd), "token id 99", "vocabulary of 11");
  }
}
