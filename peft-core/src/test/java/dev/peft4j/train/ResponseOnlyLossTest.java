package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.model.ChatTemplate;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The causal-LM loss on instruction batches counts the response tokens only: it equals a cross-entropy computed by
 * hand over the response positions of the logits, moves when a response target moves, and moves when the prompt's
 * targets are unmasked (so the −100 labels are what leaves the prompt out). Tiny Llama with the tiny ChatML tokenizer.
 */
class ResponseOnlyLossTest {

  static HfModels.Decoder model;
  static Map<String, INDArray> inputs;
  static int learnt;

  @BeforeAll
  static void load(@TempDir Path dir) throws Exception {
    Path checkpoint = Fixtures.tinyChatLlama(dir.resolve("model"));
    model = HfModels.loadDecoder(checkpoint);
    Path jsonl = dir.resolve("data.jsonl");
    Files.writeString(jsonl, "{\"prompt\": \"What is two plus three?\", \"response\": \"Five.\"}\n"
        + "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
        + "\"content\": \"Red?\"}, {\"role\": \"assistant\", \"content\": \"Yes.\"}, {\"role\": \"user\", "
        + "\"content\": \"Blue?\"}, {\"role\": \"assistant\", \"content\": \"No.\"}]}\n");
    ChatTemplate template = ChatTemplate.read(checkpoint.resolve("tokenizer_config.json")).orElseThrow();
    InstructionBatches b = InstructionBatches.of(InstructionData.read(jsonl), model.tokenizer().orElseThrow(),
        java.util.Optional.of(template), OptionalLong.empty(), 64);
    inputs = b.batches(2, 0).get(0).inputs();
    assertEquals(0, b.truncated());
    learnt = b.examples().stream().mapToInt(InstructionBatches.Encoded::learntTokens).sum();
  }

  @AfterAll
  static void close() {
    model.tokenizer().orElseThrow().close();
  }

  static double loss(INDArray labels) {
    Map<String, INDArray> in = new HashMap<>(inputs);
    in.put(Llama.LABELS, labels);
    return model.sameDiff().output(in, Llama.LOSS).get(Llama.LOSS).getDouble(0);
  }

  @Test
  void lossIsTheCrossEntropyOfTheResponseTokensOnly() {
    INDArray labels = inputs.get(Llama.LABELS);
    INDArray logits = model.sameDiff().output(inputs, Llama.LOGITS).get(Llama.LOGITS);  // [b, s, V]
    double sum = 0;
    int counted = 0;
    for (int b = 0; b < labels.size(0); b++) {
      for (int t = 0; t + 1 < labels.size(1); t++) {
        long target = labels.getLong(b, t + 1);
        if (target == Llama.IGNORE_INDEX) {
          continue;
        }
        double max = Double.NEGATIVE_INFINITY;
        for (int v = 0; v < logits.size(2); v++) {
          max = Math.max(max, logits.getDouble(b, t, v));
        }
        double z = 0;
        for (int v = 0; v < logits.size(2); v++) {
          z += Math.exp(logits.getDouble(b, t, v) - max);
        }
        sum += -(logits.getDouble(b, t, target) - max - Math.log(z));
        counted++;
      }
    }
    assertEquals(learnt, counted, "every learnt label of both examples, both assistant turns of the second");
    assertTrue(counted >= 11, "'Fi v e. <|im_end|>', then two turns of at least 3 tokens and <|im_end|>: " + counted);
    double byHand = sum / counted;
    assertEquals(byHand, loss(labels), 1e-5);
    System.out.printf("response-only loss %.6f over %d tokens (by hand %.6f)%n", loss(labels), counted, byHand);
  }

  @Test
  void responseTargetsMoveTheLossAndUnmaskedPromptTargetsWould() {
    INDArray labels = inputs.get(Llama.LABELS);
    double base = loss(labels);
    INDArray response = labels.dup();
    int t = firstLearnt(labels, 0);
    response.putScalar(0, t, (labels.getLong(0, t) + 1) % 128);
    assertTrue(Math.abs(loss(response) - base) > 1e-3, "a response target changed: " + loss(response) + " vs " + base);

    INDArray unmasked = labels.dup();
    INDArray ids = inputs.get(Llama.INPUT_IDS);
    INDArray mask = inputs.get(Llama.ATTENTION_MASK);
    for (int b = 0; b < labels.size(0); b++) {
      for (int s = 0; s < labels.size(1); s++) {
        if (mask.getLong(b, s) == 1) {
          unmasked.putScalar(b, s, ids.getLong(b, s));
        }
      }
    }
    assertTrue(Math.abs(loss(unmasked) - base) > 1e-3, "prompt tokens counted: " + loss(unmasked) + " vs " + base);
  }

  private static int firstLearnt(INDArray labels, int row) {
    for (int t = 1; t < labels.size(1); t++) {
      if (labels.getLong(row, t) != Llama.IGNORE_INDEX) {
        return t;
      }
    }
    throw new AssertionError("no learnt token in row " + row);
  }
}
