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
import dev.peft4j.train.GradientFunction;
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
 * DoRA's arithmetic against a direct computation with plain arrays, its gradients against finite differences with
 * the norm held constant, dropout, initialisation and merging. (Identity at init, training, counts, save/load,
 * unload: the contract suite.)
 */
class DoraTest {

  private static final String SCOPE = "peft/default/dora/head/";
  private static final String A = SCOPE + "lora_A";
  private static final String B = SCOPE + "lora_B";
  private static final String M = SCOPE + "lora_magnitude_vector";

  /** Randomized over seed, rank, alpha and rsLoRA; each case prints its seed in its name. */
  static Stream<Arguments> randomConfigs() {
    Random random = new Random(20261130L);
    return Stream.generate(() -> {
      long seed = random.nextLong();
      Random r = new Random(seed);
      return Arguments.of(seed, 1 + r.nextInt(ToyModels.CLASSES), 0.5 + 32 * r.nextDouble(), r.nextBoolean());
    }).limit(8);
  }

  /** A: [in, r], B: [r, out], m: [out] of the head set to random values (m around the column norms). */
  private static void randomize(SameDiff sd, Random random) {
    sd.getArrForVarName(A).assign(Mlp.uniform(random, 0.5, DataType.DOUBLE, sd.getArrForVarName(A).shape()));
    sd.getArrForVarName(B).assign(Mlp.uniform(random, 1, DataType.DOUBLE, sd.getArrForVarName(B).shape()));
    INDArray m = sd.getArrForVarName(M);
    m.muli(Mlp.uniform(random, 0.3, DataType.DOUBLE, m.length()).addi(1));
  }

  /** x·(g ⊙ (W + s·A·B)) + b with g = m / ‖W + s·A·B‖ per column: the DoRA paper's weight, formed directly. */
  private static INDArray direct(INDArray x, INDArray w, INDArray bias, INDArray a, INDArray b, INDArray m, double s) {
    INDArray v = w.add(a.mmul(b).mul(s));                                          // [in, out]
    INDArray norm = Transforms.sqrt(v.mul(v).sum(0));                              // [out]
    INDArray weight = v.mulRowVector(m.div(norm));                                 // [in, out]
    return x.mmul(weight).addRowVector(bias);                                      // [n, out]
  }

  @ParameterizedTest(name = "seed={0} r={1} alpha={2} rsLora={3}")
  @MethodSource("randomConfigs")
  void headOutputIsTheDecomposedWeightApplied(long seed, int r, double alpha, boolean rsLora) {
    Random random = new Random(seed);
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    Batch batch = Graphs.batches(sd, seed, 1, 5).get(0);
    LoraConfig.Builder builder = Peft.dora(r).alpha(alpha).target("head").seed(seed);
    if (rsLora) {
      builder.rsLora();
    }
    PeftModel model = builder.apply(sd);
    randomize(sd, random);

    String hidden = GraphRewriter.of(sd).linearModule("head").input();
    Map<String, INDArray> out = sd.output(batch.inputs(), hidden, Mlp.LOGITS);
    double s = rsLora ? alpha / Math.sqrt(r) : alpha / r;
    assertEquals(s, ((LoraConfig) model.adapter("default").config()).scaling(), 1e-12);
    INDArray expected = direct(out.get(hidden), sd.getArrForVarName("head.weight"), sd.getArrForVarName("head.bias"),
        sd.getArrForVarName(A), sd.getArrForVarName(B), sd.getArrForVarName(M), s);
    double error = Graphs.relativeError(out.get(Mlp.LOGITS), expected);
    assertTrue(error < 1e-12, "seed " + seed + ": " + error);
  }

  @Test
  void magnitudeStartsAtTheColumnNormsOfTheWeight() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    Peft.dora(2).target("q_proj", "down_proj").apply(sd);
    for (String module : List.of("layers.0.self_attn.q_proj", "layers.1.mlp.down_proj")) {
      INDArray w = sd.getArrForVarName(module + ".weight");                        // [in, out]
      INDArray m = sd.getArrForVarName("peft/default/dora/" + module + "/lora_magnitude_vector");
      assertEquals(w.size(1), m.length());
      assertTrue(Graphs.relativeError(m, Transforms.sqrt(w.mul(w).sum(0))) < 1e-6, module);
      assertEquals(0.0, sd.getArrForVarName("peft/default/dora/" + module + "/lora_B").amaxNumber().doubleValue());
    }
  }

  // ------------------------------------------------------------------------------------------- gradients

  /** Mean softmax cross-entropy over the rows, as the toy's loss. */
  private static double crossEntropy(INDArray logits, INDArray labels) {
    INDArray shifted = logits.subColumnVector(logits.max(1).reshape(logits.size(0), 1));
    INDArray logSum = Transforms.log(Transforms.exp(shifted).sum(1)).reshape(logits.size(0), 1);
    INDArray logSoftmax = shifted.subColumnVector(logSum);
    return -logSoftmax.mul(labels).sum(1).meanNumber().doubleValue();
  }

  /** The head's DoRA output with the norm given (held constant), then the loss. */
  private static double lossWithNorm(INDArray x, INDArray w, INDArray bias, INDArray a, INDArray b, INDArray m,
      double s, INDArray norm, INDArray labels) {
    INDArray weight = w.add(a.mmul(b).mul(s)).mulRowVector(m.div(norm));           // [in, out]
    return crossEntropy(x.mmul(weight).addRowVector(bias), labels);
  }

  @Test
  void gradientsOfABAndMagnitudeMatchFiniteDifferencesWithTheNormHeldConstant() {
    long seed = 77;
    System.out.println("seed " + seed);
    Random random = new Random(seed);
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    PeftModel model = Peft.dora(2).alpha(3).target("head").seed(seed).apply(sd);
    randomize(sd, random);
    Batch batch = Graphs.batches(sd, seed, 1, 5).get(0);
    double s = 3.0 / 2;

    String hidden = GraphRewriter.of(sd).linearModule("head").input();
    INDArray x = sd.output(batch.inputs(), hidden).get(hidden);                   // [n, in]: the head's input
    INDArray w = sd.getArrForVarName("head.weight");
    INDArray bias = sd.getArrForVarName("head.bias");
    INDArray labels = batch.inputs().get(Mlp.LABELS);
    Map<String, INDArray> p = Map.of(A, sd.getArrForVarName(A), B, sd.getArrForVarName(B), M,
        sd.getArrForVarName(M));
    INDArray v = w.add(p.get(A).mmul(p.get(B)).mul(s));
    INDArray norm = Transforms.sqrt(v.mul(v).sum(0));                              // [out], held constant below
    double loss = sd.output(batch.inputs(), Mlp.LOSS).get(Mlp.LOSS).getDouble(0);
    assertEquals(loss, lossWithNorm(x, w, bias, p.get(A), p.get(B), p.get(M), s, norm, labels), 1e-12,
        "the reference computes the graph's loss");

    GradientFunction.prepare(sd);
    Map<String, INDArray> grads = sd.calculateGradients(batch.inputs(), model.trainableParameters().names());
    double eps = 1e-6;
    boolean normMatters = false;
    for (String name : List.of(A, B, M)) {
      INDArray param = p.get(name);
      for (long i = 0; i < param.length(); i++) {
        double original = param.getDouble(i);
        param.putScalar(i, original + eps);
        double plus = lossWithNorm(x, w, bias, p.get(A), p.get(B), p.get(M), s, norm, labels);
        double plusFull = sd.output(batch.inputs(), Mlp.LOSS).get(Mlp.LOSS).getDouble(0);
        param.putScalar(i, original - eps);
        double minus = lossWithNorm(x, w, bias, p.get(A), p.get(B), p.get(M), s, norm, labels);
        double minusFull = sd.output(batch.inputs(), Mlp.LOSS).get(Mlp.LOSS).getDouble(0);
        param.putScalar(i, original);
        double numeric = (plus - minus) / (2 * eps);
        double analytic = grads.get(name).getDouble(i);
        assertTrue(Math.abs(numeric - analytic) <= 1e-6 * Math.max(1, Math.abs(numeric)),
            name + "[" + i + "]: analytic " + analytic + " vs numeric (norm constant) " + numeric);
        double full = (plusFull - minusFull) / (2 * eps);
        normMatters |= Math.abs(full - analytic) > 1e-4 * Math.max(1, Math.abs(full));
      }
    }
    assertTrue(normMatters, "the norm is detached: some gradient of A or B differs from the loss's own derivative");
  }

  // ------------------------------------------------------------------------------------------------ dropout

  @Test
  void dropoutIsOffForInferenceAndUnbiasedWhileTraining() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    PeftModel model = Peft.dora(2).dropout(0.5).target("head").apply(sd);
    randomize32(sd, new Random(5));
    Batch batch = Graphs.batches(sd, 1, 1, 64).get(0);
    INDArray inference = Graphs.logits(sd, batch);
    assertEquals(inference, Graphs.logits(sd, batch), "inference mode is deterministic");

    model.train();
    long[] seed = {1};
    try (var seeding = RandomOps.seed(sd, () -> seed[0])) {
      INDArray first = Graphs.logits(sd, batch);
      assertEquals(first, Graphs.logits(sd, batch), "same seed, same mask");
      seed[0] = 2;
      assertNotEquals(first, Graphs.logits(sd, batch), "a new seed draws a new mask");
      assertNotEquals(inference, first, "dropout acts while training");
      // both the low-rank branch and the rescaled x·W read the dropped input: linear in it, so unbiased
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

  private static void randomize32(SameDiff sd, Random random) {
    sd.getArrForVarName(B).assign(Mlp.uniform(random, 1, DataType.FLOAT, sd.getArrForVarName(B).shape()));
    INDArray m = sd.getArrForVarName(M);
    m.muli(Mlp.uniform(random, 0.3, DataType.FLOAT, m.length()).addi(1));
  }

  // ------------------------------------------------------------------------------------------------ merging

  @Test
  void mergeWritesTheDecomposedWeightAndUnmergeRestoresTheOriginalBitForBit() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    INDArray w = sd.getArrForVarName("head.weight").dup();
    PeftModel model = Peft.dora(2).alpha(4).target("head").apply(sd);
    randomize32(sd, new Random(9));
    Dora dora = (Dora) model.adapter("default");
    dora.merge();
    INDArray a = sd.getArrForVarName(A);
    INDArray b = sd.getArrForVarName(B);
    INDArray v = w.add(a.mmul(b).mul(2.0));
    INDArray expected = v.mulRowVector(sd.getArrForVarName(M).div(Transforms.sqrt(v.mul(v).sum(0))));
    assertTrue(Graphs.relativeError(sd.getArrForVarName("head.weight"), expected) < 1e-6);
    assertTrue(Transforms.abs(sd.getArrForVarName("head.weight").sub(w)).maxNumber().doubleValue() > 1e-3);
    dora.unmerge();
    assertEquals(w, sd.getArrForVarName("head.weight"), "the original weight, exactly");
  }

  @Test
  void unmergeAfterTheWeightChangedTakesOnlyThisUpdateOut() {
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    INDArray w = sd.getArrForVarName("head.weight").dup();
    PeftModel model = Peft.dora(2).alpha(4).target("head").apply(sd);
    randomize(sd, new Random(10));
    Dora dora = (Dora) model.adapter("default");
    INDArray a = sd.getArrForVarName(A);
    INDArray b = sd.getArrForVarName(B);
    INDArray v = w.add(a.mmul(b).mul(2.0));
    INDArray g = sd.getArrForVarName(M).div(Transforms.sqrt(v.mul(v).sum(0)));     // [out]
    dora.merge();
    INDArray other = Mlp.uniform(new Random(11), 1e-3, DataType.DOUBLE, w.shape()); // another update merged since
    sd.getArrForVarName("head.weight").addi(other);
    dora.unmerge();
    // W' + Δ = g ⊙ (W + s·A·B) + Δ  →  W + Δ/g: this update leaves, the other stays (scaled as HF PEFT leaves it)
    INDArray expected = w.add(other.divRowVector(g));
    assertTrue(Graphs.relativeError(sd.getArrForVarName("head.weight"), expected) < 1e-12);
  }

  @Test
  void safeMergeRefusesNonFiniteWeightsAndLeavesEverythingAsItWas() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    PeftModel model = Peft.dora(2).target("head", "fc").apply(sd);
    Dora dora = (Dora) model.adapter("default");
    sd.getArrForVarName(M).putScalar(0, Float.POSITIVE_INFINITY);
    Map<String, INDArray> before = Graphs.parameters(sd);
    IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
        dora::safeMerge);
    assertTrue(e.getMessage().contains("head.weight"), e.getMessage());
    assertEquals(before.toString(), Graphs.parameters(sd).toString(), "no weight was touched");
    assertTrue(!dora.isMerged() && dora.isEnabled());
    assertEquals(List.of("layers.0.fc", "layers.1.fc", "head"), dora.adaptedModules());
  }

  @Test
  void theMagnitudeAloneRescalesTheOutputColumns() {
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    Batch batch = Graphs.batches(sd, 3, 1, 4).get(0);
    String hidden = GraphRewriter.of(sd).linearModule("head").input();
    INDArray base = sd.output(batch.inputs(), hidden, Mlp.LOGITS).get(Mlp.LOGITS);
    INDArray x = sd.output(batch.inputs(), hidden).get(hidden);
    Peft.dora(1).target("head").apply(sd);
    sd.getArrForVarName(M).muli(Nd4j.createFromArray(2.0, 1.0, 0.5));              // B = 0: direction is W's
    INDArray xw = x.mmul(sd.getArrForVarName("head.weight"));                      // [n, out]
    INDArray expected = xw.mulRowVector(Nd4j.createFromArray(2.0, 1.0, 0.5)).addRowVector(
        sd.getArrForVarName("head.bias"));
    assertTrue(Graphs.relativeError(Graphs.logits(sd, batch), expected) < 1e-12);
    assertNotEquals(base, Graphs.logits(sd, batch));
  }
}
