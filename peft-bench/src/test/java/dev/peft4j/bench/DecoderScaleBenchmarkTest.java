package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.methods.ParameterBudget;
import dev.peft4j.model.Llama;
import dev.peft4j.model.LlamaConfig;
import dev.peft4j.model.RandomLlamaWeights;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/** The logic of the 0.6B-scale run, on the shape's numbers and on a tiny decoder (milliseconds, no 2.4 GB model). */
class DecoderScaleBenchmarkTest {

  private static final LlamaConfig TINY =
      new LlamaConfig("qwen3", 1100, 32, 48, 2, 4, 2, 8, 32, 1e-6, 1e6, true, false, false, true);

  @Test
  void configIsQwen3WithFewerPositions() {
    LlamaConfig c = DecoderScaleBenchmark.config();
    assertEquals(LlamaConfig.qwen3_0_6B(), c);
    assertEquals(151_936, c.vocabSize());
  }

  @Test
  void linearParametersAreWhatQloraPacks() {
    ParameterBudget b = ParameterBudget.of(ParameterBudget.Shape.of(DecoderScaleBenchmark.config()));
    // 28 layers × (q 1024·2048 + k, v 1024·1024 each + o 2048·1024 + gate, up, down 1024·3072 each)
    assertEquals(28L * (1024 * 2048 * 2 + 1024 * 1024 * 2 + 3L * 1024 * 3072),
        DecoderScaleBenchmark.linearParameters(b));
    assertEquals(440_401_920L, DecoderScaleBenchmark.linearParameters(b));
    // the packed bytes QuantizedBase reported for this model in the run of 2026-12-06: 227,190,544
    double estimate = DecoderScaleBenchmark.linearParameters(b) * DecoderScaleBenchmark.NF4_BYTES_PER_PARAMETER;
    assertEquals(227_190_544, estimate, 227_190_544 * 1e-3);
  }

  @Test
  void greedyWithoutCacheTakesTheArgmaxOfTheLastPositionEachStep() {
    SameDiff sd = Llama.causalLm(TINY, RandomLlamaWeights.of(TINY, 3));
    // ids in [1000, vocab): the tiny vocabulary is 1,100
    INDArray prompt = DecoderScaleBenchmark.promptBatch(2, 5, TINY.vocabSize()).get(Llama.INPUT_IDS);      // [2, 5]
    long[][] out = DecoderScaleBenchmark.greedyWithoutCache(sd, prompt, 3);
    assertEquals(2, out.length);
    INDArray ids = prompt.dup();
    for (int n = 0; n < 3; n++) {
      INDArray logits = sd.output(Map.of(Llama.INPUT_IDS, ids, Llama.ATTENTION_MASK,
          Nd4j.ones(DataType.INT64, ids.shape())), Llama.LOGITS).get(Llama.LOGITS);       // [2, t, V]
      INDArray last = logits.get(NDArrayIndex.all(), NDArrayIndex.point(ids.size(1) - 1), NDArrayIndex.all());
      long[] expected = {last.getRow(0).argMax().getLong(0), last.getRow(1).argMax().getLong(0)};
      assertArrayEquals(expected, new long[] {out[0][n], out[1][n]}, "token " + n);
      ids = Nd4j.concat(1, ids, Nd4j.createFromArray(expected).reshape(2, 1));
    }
    // a row generates the same tokens alone as in the batch
    long[][] alone = DecoderScaleBenchmark.greedyWithoutCache(sd, prompt.getRow(1, true), 3);
    assertArrayEquals(out[1], alone[0]);
  }

  @Test
  void inferenceEstimateIsWeightsPlusLogits() {
    ParameterBudget b = ParameterBudget.of(ParameterBudget.Shape.of(DecoderScaleBenchmark.config()));
    assertEquals(4 * (596_049_920L + 8L * 256 * 151_936), DecoderScaleBenchmark.inferenceEstimate(b, 8, 256));
    double nf4 = DecoderScaleBenchmark.NF4_BYTES_PER_PARAMETER;
    assertTrue(nf4 > 0.5 && nf4 < 0.52, "NF4 bytes a parameter: " + nf4);
  }
}
