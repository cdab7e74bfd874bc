package dev.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Mlp;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import dev.peft4j.train.Batch;
import dev.peft4j.train.RandomOps;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * LoRA's arithmetic checked against the formula computed by hand. (Gradients against finite differences: the contract
 * suite, for every case.)
 */
class LoraMathTest {

  private static final String A = "peft/default/lora/head/lora_A";
  private static final String B = "peft/default/lora/head/lora_B";

  /** Randomized over seed, rank, alpha and rsLoRA; each case prints its seed in its name. */
  static Stream<Arguments> randomConfigs() {
    long master = 20261122L;
    Random random = new Random(master);
    return Stream.generate(() -> {
      long seed = random.nextLong();
      Random r = new Random(seed);
      return Arguments.of(seed, 1 + r.nextInt(6), 0.5 + 32 * r.nextDouble(), r.nextBoolean());
    }).limit(8);
  }

  @ParameterizedTest(name = "seed={0} r={1} alpha={2} rsLora={3}")
  @MethodSource("randomConfigs")
  void headOutputIsBasePlusScaledLowRankUpdate(long seed, int r, double alpha, boolean rsLora) {
    Random random = new Random(seed);
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    Batch batch = Graphs.batches(sd, seed, 1, 5).get(0);
    LoraConfig.Builder builder = Peft.lora(r).alpha(alpha).target("head").seed(seed);
    if (rsLora) {
      builder.rsLora();
    }
    PeftModel model = builder.apply(sd);
    INDArray b = Mlp.uniform(random, 1, DataType.DOUBLE, r, ToyModels.CLASSES);
    sd.getArrForVarName(B).assign(b);

    String hidden = GraphRewriter.of(sd).linearModule("head").input();
    Map<String, INDArray> out = sd.output(batch.inputs(), hidden, Mlp.LOGITS);
    INDArray x = out.get(hidden);                                             // [n, hidden]
    INDArray w = sd.getArrForVarName("head.weight");                          // [hidden, classes]
    INDArray bias = sd.getArrForVarName("head.bias");                         // [classes]
    INDArray a = sd.getArrForVarName(A);                                      // [hidden, r]
    double s = rsLora ? alpha / Math.sqrt(r) : alpha / r;
    INDArray expected = x.mmul(w).addRowVector(bias).add(x.mmul(a).mmul(b).mul(s));
    assertEquals(s, ((LoraConfig) model.adapter("default").config()).scaling(), 1e-12);
    assertTrue(Graphs.relativeError(out.get(Mlp.LOGITS), expected) < 1e-12,
        "seed " + seed + ": " + Graphs.relativeError(out.get(Mlp.LOGITS), expected));
  }

  @Test
  void initialisesAKaimingUniformAndBZero() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    Peft.lora(4).target("up_proj", "down_proj").apply(sd);
    for (String module : List.of("layers.0.mlp.up_proj", "layers.1.mlp.down_proj")) {
      INDArray a = sd.getArrForVarName("peft/default/lora/" + module + "/lora_A");
      INDArray b = sd.getArrForVarName("peft/default/lora/" + module + "/lora_B");
      long in = a.size(0);
      assertEquals(4, a.size(1));
      assertTrue(a.amaxNumber().doubleValue() <= 1 / Math.sqrt(in), "|A| within 1/sqrt(in)");
      assertTrue(a.amaxNumber().doubleValue() > 0.5 / Math.sqrt(in), "A is not degenerate");
      assertEquals(0.0, b.amaxNumber().doubleValue(), 0.0);
    }
  }

  @Test
  void sameSeedSameInitialA() {
    SameDiff one = ToyModels.mlp(DataType.FLOAT);
    SameDiff two = ToyModels.mlp(DataType.FLOAT);
    SameDiff three = ToyModels.mlp(DataType.FLOAT);
    Peft.lora(4).target("head").seed(3).apply(one);
    Peft.lora(4).target("head").seed(3).apply(two);
    Peft.lora(4).target("head").seed(4).apply(three);
    assertEquals(one.getArrForVarName(A), two.getArrForVarName(A));
    assertNotEquals(one.getArrForVarName(A), three.getArrForVarName(A));
  }

  @Test
  void dropoutIsOffForInferenceAndFreshPerStepWhileTraining() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    PeftModel model = Peft.lora(4).dropout(0.5).target("head").apply(sd);
    sd.getArrForVarName(B).assign(1);
    Batch batch = Graphs.batches(sd, 1, 1, 64).get(0);
    INDArray inference = Graphs.logits(sd, batch);
    assertEquals(inference, Graphs.logits(sd, batch), "inference mode is deterministic");

    model.train();
    long[] seed = {1};
    try (var seeding = RandomOps.seed(sd, () -> seed[0])) {
      INDArray first = Graphs.logits(sd, batch);
      assertEquals(first, Graphs.logits(sd, batch), "same seed, same mask");
      seed[0] = 2;
      INDArray second = Graphs.logits(sd, batch);
      assertNotEquals(first, second, "a new seed draws a new mask");
      assertNotEquals(inference, first, "dropout acts while training");
      // inverted dropout is unbiased: averaged over many masks, the training output approaches the inference one
      INDArray sum = inference.ulike().assign(0);
      int masks = 200;
      for (int i = 0; i < masks; i++) {
        seed[0] = 100 + i;
        sum.addi(Graphs.logits(sd, batch));
      }
      double singleMaskError = Transforms.abs(first.sub(inference)).meanNumber().doubleValue();
      double averagedError = Transforms.abs(sum.divi(masks).sub(inference)).meanNumber().doubleValue();
      assertTrue(averagedError < 0.2 * singleMaskError, averagedError + " vs " + singleMaskError);
    }
    model.eval();
    assertEquals(inference, Graphs.logits(sd, batch), "back in inference mode: no dropout");
  }

  @Test
  void safeMergeRefusesNonFiniteWeightsAndLeavesEverythingAsItWas() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    PeftModel model = Peft.lora(2).target("head", "fc").apply(sd);
    Lora lora = (Lora) model.adapter("default");
    sd.getArrForVarName(B).putScalar(0, Float.POSITIVE_INFINITY);
    Batch batch = Graphs.batches(sd, 1, 1, 3).get(0);
    Map<String, INDArray> before = Graphs.parameters(sd);
    IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
        lora::safeMerge);
    assertTrue(e.getMessage().contains("head.weight"), e.getMessage());
    assertEquals(before.toString(), Graphs.parameters(sd).toString(), "no weight was touched");
    assertTrue(!lora.isMerged() && lora.isEnabled());
    sd.getArrForVarName(B).putScalar(0, 0.25f);
    INDArray adapted = Graphs.logits(sd, batch);
    lora.safeMerge();
    assertTrue(Graphs.relativeError(Graphs.logits(sd, batch), adapted) < 1e-5);
  }

  @Test
  void unmergeRestoresTheBaseWeightsToRoundingError() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    INDArray w = sd.getArrForVarName("head.weight").dup();
    PeftModel model = Peft.lora(2).target("head").apply(sd);
    sd.getArrForVarName(B).assign(Nd4j.rand(DataType.FLOAT, 2, ToyModels.CLASSES));
    Lora lora = (Lora) model.adapter("default");
    lora.merge();
    assertTrue(Transforms.abs(sd.getArrForVarName("head.weight").sub(w)).maxNumber().doubleValue() > 1e-3);
    lora.unmerge();
    assertTrue(Graphs.relativeError(sd.getArrForVarName("head.weight"), w) < 1e-6);
  }
}
