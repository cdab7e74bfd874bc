package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.model.HfCheckpoint;
import dev.peft4j.model.Hooks;
import dev.peft4j.model.Llama;
import dev.peft4j.model.LlamaConfig;
import dev.peft4j.model.Tokenizer;
import dev.peft4j.testing.Fixtures;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Packing: three examples in one row of a packed Llama graph give each example's logits and loss as the unpacked
 * graph gives them for the example alone (tiny Llama, RoPE positions not restarted).
 */
class PackedSequencesTest {

  static SameDiff unpacked;
  static SameDiff packed;
  static InstructionBatches examples;
  static Tokenizer tokenizer;

  @BeforeAll
  static void load(@TempDir Path dir) throws Exception {
    Path checkpoint = Fixtures.tinyChatLlama(dir.resolve("model"));
    LlamaConfig config = LlamaConfig.read(checkpoint.resolve("config.json"));
    try (HfCheckpoint w = HfCheckpoint.open(checkpoint)) {
      unpacked = Llama.causalLm(config, w);
    }
    try (HfCheckpoint w = HfCheckpoint.open(checkpoint)) {
      packed = Llama.causalLm(config, w, true);
    }
    try (InputStream in = Files.newInputStream(checkpoint.resolve("tokenizer.json"))) {
      tokenizer = Tokenizer.read(in, 64);
    }
    Path jsonl = Files.writeString(dir.resolve("d.jsonl"), "{\"prompt\": \"Red?\", \"response\": \"Yes.\"}\n"
        + "{\"prompt\": \"What is one plus one?\", \"response\": \"Two.\"}\n"
        + "{\"prompt\": \"Hi\", \"response\": \"hello world.\"}\n");
    // prompt + response + eos, no chat template: short enough for three in a row of the model's 64 positions
    examples = InstructionBatches.of(InstructionData.read(jsonl), tokenizer, Optional.empty(), OptionalLong.of(2), 64);
  }

  @AfterAll
  static void close() {
    tokenizer.close();
  }

  @Test
  void aPackedRowGivesEachExamplesOwnLogitsAndLoss() {
    List<Batch> batches = examples.packedBatches(1, 64, 0);
    assertEquals(1, batches.size(), "all three fit one row of 64");
    Map<String, INDArray> in = batches.get(0).inputs();
    long[] mask = in.get(Llama.ATTENTION_MASK).toLongVector();
    INDArray logits = packed.output(in, Llama.LOGITS).get(Llama.LOGITS);               // [1, s, V]
    double lossSum = 0;
    long counted = 0;
    int at = 0;
    for (int k = 0; k < 3; k++) {
      InstructionBatches.Encoded e = examples.examples().get(k);
      int n = e.inputIds().length;
      for (int t = at; t < at + n; t++) {
        assertEquals(k + 1, mask[t]);
      }
      Map<String, INDArray> alone = InstructionBatches.batch(List.of(e), 0).inputs();
      Map<String, INDArray> out = unpacked.output(alone, Llama.LOGITS, Llama.LOSS);
      INDArray own = logits.get(NDArrayIndex.point(0), NDArrayIndex.interval(at, at + n), NDArrayIndex.all());
      double diff = own.sub(out.get(Llama.LOGITS).get(NDArrayIndex.point(0), NDArrayIndex.all(), NDArrayIndex.all()))
          .amaxNumber().doubleValue();
      System.out.printf("packed example %d (%d tokens at %d): max |logit difference| %.2e%n", k, n, at, diff);
      assertTrue(diff < 1e-4, "example " + k + ": " + diff);
      long learnt = e.learntTokens();
      lossSum += out.get(Llama.LOSS).getDouble(0) * learnt;
      counted += learnt;
      at += n;
    }
    assertEquals(lossSum / counted, packed.output(in, Llama.LOSS).get(Llama.LOSS).getDouble(0), 1e-5,
        "the packed loss is the token-weighted mean of the examples' losses");
  }

  @Test
  void rowsHoldWholeExamplesAndFirstLabelsAreMasked() {
    int first = examples.examples().get(0).inputIds().length;
    int second = examples.examples().get(1).inputIds().length;
    int third = examples.examples().get(2).inputIds().length;
    assertTrue(third <= first + second, "the fixture's lengths " + first + ", " + second + ", " + third);
    List<Batch> batches = examples.packedBatches(2, first + second, 0);
    long[][] mask = batches.get(0).inputs().get(Llama.ATTENTION_MASK).toLongMatrix();
    long[][] labels = batches.get(0).inputs().get(Llama.LABELS).toLongMatrix();
    assertEquals(2, mask.length, "two rows: examples 1 and 2, then 3");
    assertEquals(2, mask[0][first]);
    assertEquals(Llama.IGNORE_INDEX, labels[0][first], "example 2's first label");
    assertEquals(1, mask[1][0]);
    assertEquals(third < first + second ? 0 : 1, mask[1][mask[1].length - 1], "row 2 padded after example 3");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> examples.packedBatches(1, 8, 0));
    assertTrue(e.getMessage().endsWith("tokens, more than the packed rows' 8"), e.getMessage());
  }

  @Test
  void promptLearningRefusesAPackedGraph() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Hooks.require(packed,
        "prompt tuning"));
    assertEquals("prompt tuning cannot adapt a packed-sequence graph (several examples per row): its virtual tokens "
        + "would have to repeat per example; build the graph unpacked", e.getMessage());
    assertEquals(4, Hooks.require(unpacked, "prompt tuning").heads());
  }
}
