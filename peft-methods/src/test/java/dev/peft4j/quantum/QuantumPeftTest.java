package dev.peft4j.quantum;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.methods.ParameterBudget.Shape;
import dev.peft4j.methods.ParameterBudget;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Mlp;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import dev.peft4j.train.GradientFunction;
import dev.peft4j.train.LearningRateSchedule;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Quantum-PEFT: orthonormal U and V for widths that are and are not powers of two, the graph's circuit against the
 * array one, gradients against finite differences, the trainable count against the package's table, and a full-rank
 * update reached by training. (Identity at init, merging, saving, disabling: the contract suite.)
 */
class QuantumPeftTest {

  private static final String SCOPE = "peft/default/quantum_peft/";

  static Stream<Arguments> widths() {
    // width, K, circuit layers: powers of two, MiniLM's 384 and 1536, LLaMA-2's 11008 = 2^8·43, 1000 = 2^3·5^3, primes
    return Stream.of(Arguments.of(2, 2, 1), Arguments.of(3, 3, 2), Arguments.of(12, 12, 1), Arguments.of(64, 64, 1),
        Arguments.of(64, 16, 3), Arguments.of(384, 384, 1), Arguments.of(384, 32, 4), Arguments.of(1000, 100, 2),
        Arguments.of(1536, 64, 2), Arguments.of(4096, 64, 1), Arguments.of(11008, 48, 1), Arguments.of(43, 43, 1));
  }

  @ParameterizedTest(name = "width {0}, K {1}, L {2}")
  @MethodSource("widths")
  void columnsAreOrthonormalForEveryWidth(int width, int k, int layers) {
    long seed = 20261206L + 31L * width + k + layers;
    System.out.println("QuantumPeftTest.columnsAreOrthonormalForEveryWidth seed " + seed);
    Circuit circuit = Circuit.of(width, layers);
    INDArray angles = randomAngles(new Random(seed), circuit.angleCount());
    INDArray u = circuit.columns(angles, k);                                              // [n, K]
    assertArrayEquals(new long[] {width, k}, u.shape());
    double error = maxAbs(u.transpose().mmul(u).subi(Nd4j.eye(k).castTo(DataType.DOUBLE)));
    System.out.printf("width %d = %s, K %d, L %d: %d angles, max |UᵀU − I| = %.2e%n", width,
        Circuit.factorString(circuit.dims()), k, layers, circuit.angleCount(), error);
    assertTrue(error <= 1e-6, "max |UᵀU − I| = " + error + " for width " + width);
    assertTrue(maxAbs(u) < 1 - 1e-3, "U should mix the basis, not permute it: max |U| = " + maxAbs(u));
  }

  /** {@link #widths()} up to 1536: the graph runs in double on a shared machine. */
  static Stream<Arguments> graphWidths() {
    return widths().filter(a -> (int) a.get()[0] <= 1536);
  }

  /** The training path (gates on the graph's activations) computes the same Q as the array path merge uses. */
  @ParameterizedTest(name = "width {0}, K {1}, L {2}")
  @MethodSource("graphWidths")
  void graphCircuitEqualsArrayCircuit(int width, int k, int layers) {
    long seed = 7L * width + k;
    System.out.println("QuantumPeftTest.graphCircuitEqualsArrayCircuit seed " + seed);
    Circuit circuit = Circuit.of(width, layers);
    Random random = new Random(seed);
    INDArray angles = randomAngles(random, circuit.angleCount());
    INDArray x = Nd4j.rand(DataType.DOUBLE, 5, width).subi(0.5);
    for (boolean transpose : new boolean[] {false, true}) {
      SameDiff sd = SameDiff.create();
      SDVariable in = sd.placeHolder("x", DataType.DOUBLE, -1, width);
      SDVariable theta = sd.var("theta", angles.dup());
      SDVariable y = circuit.apply(sd, "buffer", in, theta, transpose);
      INDArray graph = sd.output(Map.of("x", x), y.name()).get(y.name());
      INDArray array = circuit.apply(x, angles, transpose);
      assertTrue(maxAbs(graph.sub(array)) <= 1e-10, "graph vs array, transpose " + transpose + ": "
          + maxAbs(graph.sub(array)));
    }
  }

  @Test
  void graphGradientsOfAnglesAndLambdaMatchFiniteDifferences() {
    // fc: 10 = 2·5 → 9 = 3²: a qubit, a 5-level qudit and two qutrits; K = 4, L = 2
    SameDiff sd = Mlp.classifier(10, 9, 1, 3, DataType.DOUBLE, 3);
    PeftModel model = Peft.quantumPeft(4).circuitLayers(2).scale(1.5).target("fc").seed(5).apply(sd);
    long seed = 20261207L;
    System.out.println("QuantumPeftTest.graphGradientsOfAnglesAndLambdaMatchFiniteDifferences seed " + seed);
    Random random = new Random(seed);
    List<String> params = model.trainableParameters().names();
    assertEquals(List.of(SCOPE + "layers.0.fc/quantum_peft_V_angles", SCOPE + "layers.0.fc/quantum_peft_U_angles",
        SCOPE + "layers.0.fc/quantum_peft_lambda"), params);
    INDArray lambda = sd.getArrForVarName(params.get(2));
    for (long i = 0; i < lambda.length(); i++) { // λ = 0 would leave the angles' gradients zero
      lambda.putScalar(i, random.nextGaussian());
    }
    Map<String, INDArray> inputs = Map.of(Mlp.INPUT, Nd4j.rand(DataType.DOUBLE, 6, 10).subi(0.5),
        Mlp.LABELS, Nd4j.eye(3).castTo(DataType.DOUBLE).repeat(0, 2));
    GradientFunction.prepare(sd);
    Map<String, INDArray> grads = sd.calculateGradients(inputs, params);
    int checked = Graphs.assertCentralDifferences(sd, inputs, Mlp.LOSS, grads, params, 1e-6, 1e-7);
    assertEquals(3 * (1 + 4) + 3 * (2 + 2) + 4, checked, "every angle and every λ: A(10) + A(9) + K");
  }

  /** The adapted layer computes x·W + s·((x·V) ⊙ λ)·Uᵀ with U, V from the array path, at MiniLM's FFN widths. */
  @Test
  void adaptedLayerEqualsTheFormulaAtMiniLmWidths() {
    SameDiff sd = Mlp.classifier(384, 1536, 1, 2, DataType.DOUBLE, 1);
    INDArray x = Nd4j.rand(DataType.DOUBLE, 3, 384).subi(0.5);
    String output = GraphRewriter.of(sd).linearModule("layers.0.fc").output(); // after apply: base + update
    PeftModel model = Peft.quantumPeft(24).circuitLayers(2).scale(0.5).target("fc").seed(9).apply(sd);
    QuantumPeft adapter = (QuantumPeft) model.adapter(PeftModel.DEFAULT_ADAPTER);
    INDArray lambda = sd.getArrForVarName(SCOPE + "layers.0.fc/quantum_peft_lambda");
    lambda.assign(Nd4j.linspace(-1, 1, 24, DataType.DOUBLE));
    INDArray adapted = sd.output(Map.of(Mlp.INPUT, x), output).get(output);              // [3, 1536]
    INDArray w = sd.getArrForVarName("layers.0.fc.weight");
    INDArray b = sd.getArrForVarName("layers.0.fc.bias");
    INDArray v = adapter.v("layers.0.fc");                                               // [384, 24]
    INDArray u = adapter.u("layers.0.fc");                                               // [1536, 24]
    INDArray expected = x.mmul(w).addRowVector(b)
        .addi(x.mmul(v).mulRowVector(lambda.reshape(1, 24)).mmul(u.transpose()).muli(0.5));
    assertTrue(maxAbs(adapted.sub(expected)) <= 1e-10, "adapted vs formula: " + maxAbs(adapted.sub(expected)));
  }

  /** The package documentation's table: A(n) for L = 1 and L = 2. */
  static Stream<Arguments> table() {
    return Stream.of(Arguments.of(64, 12, 18), Arguments.of(128, 14, 21), Arguments.of(256, 16, 24),
        Arguments.of(384, 18, 27), Arguments.of(512, 18, 27), Arguments.of(768, 20, 30), Arguments.of(1024, 20, 30),
        Arguments.of(1536, 22, 33), Arguments.of(2048, 22, 33), Arguments.of(3072, 24, 36),
        Arguments.of(4096, 24, 36));
  }

  @ParameterizedTest(name = "width {0}")
  @MethodSource("table")
  void trainableCountFollowsTheTable(int width, int anglesL1, int anglesL2) {
    assertEquals(anglesL1, Circuit.angleCount(width, 1));
    assertEquals(anglesL2, Circuit.angleCount(width, 2));
    SameDiff sd = square(width);
    int k = 8;
    QuantumPeftConfig config = Peft.quantumPeft(k).circuitLayers(2).target("proj").build();
    long closedForm = config.parameterCount(sd);
    PeftModel model = config.apply(sd);
    long built = model.trainableParameters().count();
    assertEquals(2L * anglesL2 + k, built, "A(in) + A(out) + K from the built arrays");
    assertEquals(built, closedForm, "the config's closed form");
    assertTrue(built < 2L * width, "fewer than LoRA r = 1 (" + 2 * width + ")");
  }

  @Test
  void budgetOnLlama2_7b() {
    ParameterBudget llama = ParameterBudget.of(Shape.llama(4096, 32, 11008, 32, 32, 32000, 4096));
    assertEquals(32L * 4 * (24 + 24 + 16), llama.count(Peft.quantumPeft(16).target("q_proj", "k_proj", "v_proj", "o_proj").build()),
        "32 layers · 4 modules · (A(4096) + A(4096) + K)");
    assertEquals(8_192L, llama.count(Peft.quantumPeft(16).target("q_proj", "k_proj", "v_proj", "o_proj").build()));
    assertEquals(32L * (4 * (24 + 24 + 16) + 3 * (24 + 100 + 16)), llama.count(Peft.quantumPeft(16).target("all-linear").build()),
        "A(11008) = 2·(8·1 + 42) = 100 for gate, up and down");
    assertEquals(16_777_216L, llama.lora(16, "q_proj", "k_proj", "v_proj", "o_proj"), "LoRA r=16 beside it");
  }

  /**
   * A full-rank update at a parameter budget where LoRA's rank is 1: a 32 × 32 regression toward a random full-rank
   * map, K = 32, L = 3 (A(32) = 4·5 = 20 per side, 72 in all; LoRA r = 1 costs 64, r = 2 costs 128).
   */
  @Test
  void fullRankUpdateIsReachable() {
    long seed = 20261208L;
    System.out.println("QuantumPeftTest.fullRankUpdateIsReachable seed " + seed);
    int n = 32;
    Random random = new Random(seed);
    INDArray target = gaussian(random, n, n).muli(1 / Math.sqrt(n));                    // W*: [32, 32]
    List<Batch> data = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      INDArray x = gaussian(random, 64, n);
      data.add(new Batch(Map.of("input", x, "labels", x.mmul(target)), 64));
    }
    SameDiff sd = regression(n);
    PeftModel model = Peft.quantumPeft(n).circuitLayers(3).target("proj").seed(seed).apply(sd);
    long budget = model.trainableParameters().count();
    assertEquals(20 + 20 + 32, budget);
    long loraRank = budget / (n + n);
    TrainingHistory history = Trainer.builder(model).steps(250).learningRate(3e-2)
        .schedule(LearningRateSchedule.CONSTANT).progress(null).build().fit(data);
    INDArray delta = ((QuantumPeft) model.adapter(PeftModel.DEFAULT_ADAPTER)).delta("proj");  // [32, 32]
    double[] sigma = singularValues(delta);
    double largest = sigma[0];
    int rank = 0;
    for (double s : sigma) {
      rank += s > 1e-3 * largest ? 1 : 0;
    }
    System.out.printf("Quantum-PEFT %d scalars: loss %.4f -> %.4f, rank(ΔW) = %d, σ = %.4f … %.4f; LoRA's rank at "
        + "this budget: %d%n", budget, history.meanLossOfFirst(5), history.meanLossOfLast(5), rank, largest,
        sigma[sigma.length - 1], loraRank);
    PeftModel lora = Peft.lora(1).alpha(1).target("proj").seed(seed).apply(regression(n)); // 64 scalars
    TrainingHistory loraHistory = Trainer.builder(lora).steps(250).learningRate(3e-2)
        .schedule(LearningRateSchedule.CONSTANT).progress(null).build().fit(data);
    System.out.printf("LoRA r=1, %d scalars, same data and steps: loss %.4f -> %.4f%n",
        lora.trainableParameters().count(), loraHistory.meanLossOfFirst(5), loraHistory.meanLossOfLast(5));
    assertTrue(history.meanLossOfLast(5) < 0.9 * history.meanLossOfFirst(5), "the regression should make progress "
        + "(a random 32 × 32 map is out of reach of 72 scalars; about 17% of the loss goes)");
    assertTrue(rank > loraRank, "rank(ΔW) = " + rank + " should exceed LoRA's rank " + loraRank + " at " + budget
        + " scalars");
    assertEquals(n, rank, "every λ moved off zero: full rank");
    assertTrue(history.meanLossOfLast(5) < loraHistory.meanLossOfLast(5), "measured here: 0.840 against LoRA r=1's "
        + "0.901 (72 scalars against 64)");
  }

  // ------------------------------------------------------------------------------------------------ fixtures

  /** {@code proj: [width, width]} without bias, an MSE loss against {@code labels}. */
  static SameDiff square(int width) {
    return linear(width, width, Nd4j.zeros(DataType.FLOAT, width, width));
  }

  /** {@code y = x·W} with W = 0 ({@code proj}), mean squared error against {@code labels}; double. */
  static SameDiff regression(int n) {
    return linear(n, n, Nd4j.zeros(DataType.DOUBLE, n, n));
  }

  private static SameDiff linear(int in, int out, INDArray weight) {
    SameDiff sd = SameDiff.create();
    SDVariable x = sd.placeHolder("input", weight.dataType(), -1, in);                   // [batch, in]
    SDVariable labels = sd.placeHolder("labels", weight.dataType(), -1, out);            // [batch, out]
    SDVariable y = x.mmul(sd.var("proj.weight", weight)).rename("logits");               // [batch, out]
    sd.loss.meanSquaredError("loss", labels, y, null);
    sd.setLossVariables("loss");
    return sd;
  }

  static INDArray randomAngles(Random random, int count) {
    double[] values = new double[count];
    for (int i = 0; i < count; i++) {
      values[i] = (2 * random.nextDouble() - 1) * Math.PI;
    }
    return Nd4j.create(values, new long[] {count}, DataType.DOUBLE);
  }

  private static INDArray gaussian(Random random, int rows, int cols) {
    double[] values = new double[rows * cols];
    for (int i = 0; i < values.length; i++) {
      values[i] = random.nextGaussian();
    }
    return Nd4j.create(values, new long[] {rows, cols}, DataType.DOUBLE);
  }

  /** Singular values, descending, by LAPACK's gesvd. */
  static double[] singularValues(INDArray m) {
    INDArray a = m.castTo(DataType.DOUBLE).dup('f');
    long k = Math.min(a.rows(), a.columns());
    INDArray s = Nd4j.create(DataType.DOUBLE, k);
    Nd4j.getBlasWrapper().lapack().gesvd(a, s, null, null);
    return s.toDoubleVector();
  }

  static double maxAbs(INDArray a) {
    return a.dup().castTo(DataType.DOUBLE).amaxNumber().doubleValue();
  }
}
