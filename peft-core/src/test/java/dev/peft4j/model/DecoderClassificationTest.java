package dev.peft4j.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.TaskType;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Every decoder family's {@code …ForSequenceClassification} against transformers 5.18 (scripts/fixtures_decoder_cls.py):
 * the score read at the rightmost token that is not {@code pad_token_id}, with right and with left padding, a row
 * without padding in each batch.
 */
class DecoderClassificationTest {

  private static final long PAD = 3;

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"llama", "mistral", "qwen2", "qwen3", "gemma"})
  void logitsMatchTransformersWithRightAndLeftPadding(String family, @TempDir Path tmp) throws IOException {
    Path dir = checkpoint(family, tmp);
    Map<String, INDArray> g = golden(family);
    SameDiff sd;
    try (HfCheckpoint weights = HfCheckpoint.open(dir)) {
      sd = Heads.llamaForSequenceClassification(LlamaConfig.read(dir.resolve("config.json")), weights, 3, PAD, 0);
    }
    sd.getVariable(Heads.SCORE + ".weight").getArr().assign(g.get("score.weight").transpose()); // HF's [out, in]
    for (String side : List.of("right", "left")) {
      INDArray logits = sd.output(Map.of(Llama.INPUT_IDS, g.get(side + "_input_ids"), Llama.ATTENTION_MASK,
          g.get(side + "_attention_mask")), Heads.LOGITS).get(Heads.LOGITS);
      double diff = logits.sub(g.get(side + "_logits")).amaxNumber().doubleValue();
      System.out.printf("%s, %s padding: max |logits - transformers'| = %.2e%n", family, side, diff);
      assertTrue(diff <= 1e-5, family + ", " + side + " padding: logits differ by " + diff);
    }
  }

  /** The loader builds the same head for each family's architecture name; Gemma's included. */
  @Test
  void everyFamilysSequenceClassificationLoadsByName(@TempDir Path tmp) throws IOException {
    for (String family : List.of("llama", "mistral", "qwen2", "qwen3", "gemma")) {
      String architecture = switch (family) {
        case "qwen2" -> "Qwen2ForSequenceClassification";
        case "qwen3" -> "Qwen3ForSequenceClassification";
        default -> Character.toUpperCase(family.charAt(0)) + family.substring(1) + "ForSequenceClassification";
      };
      HfModels.Loaded m = HfModels.load(checkpoint(family, tmp.resolve(family)), architecture, 3);
      assertEquals(TaskType.SEQ_CLS, m.taskType(), family);
      INDArray score = m.sameDiff().getArrForVarName(Heads.SCORE + ".weight");  // [H, labels]
      assertEquals(3, score.size(1), family);
    }
  }

  /** transformers 5.18: "Cannot handle batch sizes > 1 if no padding token is defined."; one row is fine. */
  @Test
  void withoutPadTokenIdABatchOfSeveralRowsIsRefusedAndOneRowReadsTheLastPosition() throws IOException {
    Path dir = Fixtures.dir("tiny-llama"); // its config.json has no pad_token_id
    SameDiff sd = HfModels.load(dir, "LlamaForSequenceClassification", 3).sameDiff();
    Map<String, INDArray> g = golden("llama");
    sd.getVariable(Heads.SCORE + ".weight").getArr().assign(g.get("score.weight").transpose());
    INDArray ids = g.get("right_input_ids");
    RuntimeException e = assertThrows(RuntimeException.class, () -> sd.output(Map.of(Llama.INPUT_IDS, ids,
        Llama.ATTENTION_MASK, g.get("right_attention_mask")), Heads.LOGITS));
    assertTrue(messages(e).contains(Heads.NO_PAD_TOKEN_SCOPE), messages(e));
    // the unpadded first row alone: its last position is its last real token, as with pad_token_id
    INDArray one = sd.output(Map.of(Llama.INPUT_IDS, ids.getRow(0, true), Llama.ATTENTION_MASK,
        g.get("right_attention_mask").getRow(0, true)), Heads.LOGITS).get(Heads.LOGITS);
    double diff = one.sub(g.get("right_logits").getRow(0, true)).amaxNumber().doubleValue();
    assertTrue(diff <= 1e-5, "one row without pad_token_id: logits differ by " + diff);
  }

  private static String messages(Throwable e) {
    StringBuilder all = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) {
      all.append(t.getMessage()).append(" | ");
    }
    return all.toString();
  }

  /** The family's tiny checkpoint; Mistral's is tiny-llama's weights under a MistralConfig. */
  static Path checkpoint(String family, Path tmp) throws IOException {
    if (!family.equals("mistral")) {
      return Fixtures.dir("tiny-" + family);
    }
    Path dir = Files.createDirectories(tmp.resolve("tiny-mistral"));
    Files.copy(Fixtures.dir("tiny-llama").resolve("model.safetensors"), dir.resolve("model.safetensors"));
    Files.copy(Fixtures.dir("tiny-llama").getParent().resolve("decoder-cls/mistral/config.json"),
        dir.resolve("config.json"));
    return dir;
  }

  static Map<String, INDArray> golden(String family) throws IOException {
    Map<String, INDArray> out = new HashMap<>();
    Path file = Fixtures.dir("tiny-llama").getParent().resolve("decoder-cls/" + family + ".safetensors");
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      for (String n : f.names()) {
        out.put(n, f.read(n));
      }
    }
    return out;
  }
}
