package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.graph.ArrayHolders;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.model.Llama;
import dev.peft4j.model.Mlp;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import java.io.IOException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.random.custom.RandomBernoulli;
import org.nd4j.linalg.factory.Nd4j;

/** {@link DataParallel} against the unsplit pass of {@link Gradients}. */
class DataParallelTest {

  /** Rows × workers, with shards of unequal size (5 over 2: 3 + 2; 5 over 3: 2 + 2 + 1; 3 over 8: three of 1). */
  @ParameterizedTest(name = "{0} rows over {1} workers, seed {2}")
  @CsvSource({"5, 2, 101", "5, 3, 202", "3, 8, 303", "8, 2, 404"})
  void sameLossAndGradientsAsTheWholeBatch(int rows, int workers, long seed) {
    System.out.println("DataParallelTest seed " + seed);
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    List<String> params = CheckpointedGradientsTest.trainable(sd);
    Map<String, INDArray> inputs = Graphs.batches(sd, seed, 1, rows).get(0).inputs();
    try (DataParallel parallel = DataParallel.of(sd, workers)) {
      assertEquals(Math.min(rows, workers), DataParallel.split(inputs, workers).size());
      SameGradients.assertSame(Gradients.of(sd, inputs, List.of(Mlp.LOSS), params),
          parallel.gradients(inputs, Mlp.LOSS, params), Mlp.LOSS, params, 1e-12, 1e-12, "");
    }
  }

  @ParameterizedTest(name = "{0} rows over {1} workers, seed {2}")
  @CsvSource({"5, 2, 505", "7, 3, 606"})
  void outputsAreTheWholeBatchsStackedByRows(int rows, int workers, long seed) {
    System.out.println("DataParallelTest seed " + seed);
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    Map<String, INDArray> inputs = Graphs.batches(sd, seed, 1, rows).get(0).inputs();
    try (DataParallel parallel = DataParallel.of(sd, workers)) {
      Map<String, INDArray> expected = sd.output(inputs, Mlp.LOGITS, Mlp.PROBABILITIES);
      Map<String, INDArray> actual = parallel.output(inputs, Mlp.LOGITS, Mlp.PROBABILITIES);
      for (String o : List.of(Mlp.LOGITS, Mlp.PROBABILITIES)) {
        assertArrayEquals(expected.get(o).shape(), actual.get(o).shape(), o);
        assertTrue(expected.get(o).equalsWithEps(actual.get(o), 1e-12), o + ": " + expected.get(o) + " vs "
            + actual.get(o));
      }
      IllegalArgumentException loss = assertThrows(IllegalArgumentException.class,
          () -> parallel.output(inputs, Mlp.LOSS));
      assertTrue(loss.getMessage().contains(Mlp.LOSS) && loss.getMessage().contains("one row per input row"),
          loss.getMessage());
    }
  }

  @Test
  void followsTheOriginalsWeightsStepAfterStepOnALanguageModel() throws IOException {
    SameDiff sd = CheckpointedGradientsTest.trainableLlama();
    List<String> params = CheckpointedGradientsTest.trainable(sd);
    Map<String, INDArray> inputs = unpaddedLlamaBatch(new Random(7), 4, 6); // every row counts 5 tokens: exact
    try (DataParallel parallel = DataParallel.of(sd, 2)) {
      for (int step = 0; step < 3; step++) {
        OutAndGrad expected = Gradients.of(sd, inputs, List.of(Llama.LOSS), params);
        SameGradients.assertSame(expected, parallel.gradients(inputs, Llama.LOSS, params), Llama.LOSS, params, 1e-5,
            1e-5, ", step " + step);
        for (String p : params) { // a plain SGD step on the original: the replica must see the new weights
          sd.getArrForVarName(p).subi(expected.getGradients().get(p).mul(1e-1));
        }
      }
      String w = "model.layers.1.mlp.down_proj.weight"; // a weight array replaced, as a merge or a load does
      sd.setArrayForVariable(w, sd.getArrForVarName(w).mul(3));
      SameGradients.assertSame(Gradients.of(sd, inputs, List.of(Llama.LOSS), params),
          parallel.gradients(inputs, Llama.LOSS, params), Llama.LOSS, params, 1e-5, 1e-5,
          " after a weight array was replaced");
    }
  }

  @Test
  void shardsDrawTheirOwnDropoutMasks() {
    SameDiff sd = SameDiff.create();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 256);
    SDVariable w = sd.var("w", Nd4j.ones(DataType.FLOAT, 1, 256));
    SDVariable mask = new RandomBernoulli(sd, sd.shape(x), 0.5).outputVariable().castTo(DataType.FLOAT);
    x.mul(mask).mul(w).mean("loss");
    sd.setLossVariables("loss");
    try (var seeding = RandomOps.seed(sd, () -> 42);
        DataParallel parallel = DataParallel.of(sd, 2)) {
      INDArray firstShardOnly = Nd4j.zeros(DataType.FLOAT, 4, 256);
      firstShardOnly.getRow(0).assign(1);
      INDArray secondShardOnly = Nd4j.zeros(DataType.FLOAT, 4, 256);
      secondShardOnly.getRow(2).assign(1);
      INDArray first = parallel.gradients(Map.of("x", firstShardOnly), "loss", List.of("w")).getGradients().get("w");
      INDArray second = parallel.gradients(Map.of("x", secondShardOnly), "loss", List.of("w")).getGradients().get("w");
      // each gradient is row 0 of its shard's mask / 1024: about half of the 256 entries set, and not the same half
      assertTrue(first.sumNumber().doubleValue() * 1024 > 64 && second.sumNumber().doubleValue() * 1024 > 64,
          first + " / " + second);
      assertFalse(first.equalsWithEps(second, 1e-9), "both shards drew the same mask");
      INDArray again = parallel.gradients(Map.of("x", firstShardOnly), "loss", List.of("w")).getGradients().get("w");
      assertEquals(first, again, "the same seed must draw the same mask");
    }
  }

  @Test
  void badInputIsRefusedWithWhatWasGiven() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    assertThrows(IllegalArgumentException.class, () -> DataParallel.of(sd, 0));
    DataParallel parallel = DataParallel.of(sd, 2);
    Map<String, INDArray> inputs = new HashMap<>(Graphs.batches(sd, 1, 1, 4).get(0).inputs());
    inputs.put(Mlp.LABELS, Nd4j.zeros(DataType.FLOAT, 3, ToyModels.CLASSES));
    IllegalArgumentException mismatch = assertThrows(IllegalArgumentException.class,
        () -> parallel.gradients(inputs, Mlp.LOSS, List.of("head.weight")));
    assertTrue(mismatch.getMessage().contains("[4, " + ToyModels.MLP_IN + "]")
        && mismatch.getMessage().contains("[3, " + ToyModels.CLASSES + "]"), mismatch.getMessage());
    IllegalArgumentException loss = assertThrows(IllegalArgumentException.class,
        () -> parallel.gradients(inputs, "no_such_loss", List.of()));
    assertTrue(loss.getMessage().contains("no_such_loss"), loss.getMessage());
    parallel.close();
    assertThrows(IllegalStateException.class,
        () -> parallel.gradients(Graphs.batches(sd, 1, 1, 4).get(0).inputs(), Mlp.LOSS, List.of("head.weight")));
  }

  /**
   * A mode switch rewires an op (as dropout's branch is rewired between training and inference): the replicas of
   * each wiring are built once and found again, and still compute the unsplit batch's gradients and outputs.
   */
  @Test
  void switchingBetweenTwoWiringsKeepsBothReplicaSets() {
    SwitchableGraph g = new SwitchableGraph();
    Map<String, INDArray> inputs = g.batch(5, 707);
    Map<String, INDArray> features = Map.of("x", inputs.get("x"));
    try (DataParallel parallel = DataParallel.of(g.sd, 2)) {
      SameGradients.assertSame(Gradients.of(g.sd, inputs, List.of("loss"), g.params), parallel.gradients(inputs,
          "loss", g.params), "loss", g.params, 1e-12, 1e-12, ", training wiring");
      List<SameDiff> training = parallel.replicas("loss");
      assertEquals(2, training.size());
      assertEquals(2, parallel.replicasBuilt());
      for (int round = 0; round < 2; round++) {
        g.readScaledInput(true); // "inference mode"
        INDArray expected = g.sd.output(features, "logits").get("logits");
        INDArray actual = parallel.output(features, "logits").get("logits");
        assertTrue(expected.equalsWithEps(actual, 1e-12), "inference wiring, round " + round + ": " + expected
            + " vs " + actual);
        g.readScaledInput(false); // "training mode" again
        SameGradients.assertSame(Gradients.of(g.sd, inputs, List.of("loss"), g.params), parallel.gradients(inputs,
            "loss", g.params), "loss", g.params, 1e-12, 1e-12, ", training wiring, round " + round);
        assertEquals(4, parallel.replicasBuilt(), "round " + round + ": two for training, two for inference");
        for (int i = 0; i < 2; i++) {
          assertSame(training.get(i), parallel.replicas("loss").get(i), "training replica " + i);
        }
      }
    }
  }

  @Test
  void aChangeOfTrainableVariablesRebuildsTheReplicas() {
    SwitchableGraph g = new SwitchableGraph();
    Map<String, INDArray> inputs = g.batch(4, 808);
    try (DataParallel parallel = DataParallel.of(g.sd, 2)) {
      parallel.gradients(inputs, "loss", g.params);
      List<SameDiff> before = parallel.replicas("loss");
      GraphRewriter.of(g.sd).freeze(List.of("w1"));
      List<String> left = List.of("w2");
      SameGradients.assertSame(Gradients.of(g.sd, inputs, List.of("loss"), left), parallel.gradients(inputs, "loss",
          left), "loss", left, 1e-12, 1e-12, ", after freezing w1");
      assertEquals(4, parallel.replicasBuilt());
      List<SameDiff> after = parallel.replicas("loss");
      for (int i = 0; i < 2; i++) {
        assertNotSame(before.get(i), after.get(i), "replica " + i);
        assertFalse(after.get(i).getVariable("w1").getVariableType() == VariableType.VARIABLE, "replica " + i);
      }
    }
  }

  /**
   * Replicas compute with the graph's own weight arrays (not copies refreshed at each call), and a weight array
   * replaced in the graph is the one the next call's replicas hold.
   */
  @Test
  void replicasHoldTheGraphsWeightArraysThemselves() {
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    List<String> params = CheckpointedGradientsTest.trainable(sd);
    Map<String, INDArray> inputs = Graphs.batches(sd, 909, 1, 6).get(0).inputs();
    try (DataParallel parallel = DataParallel.of(sd, 2)) {
      parallel.gradients(inputs, Mlp.LOSS, params);
      assertReplicasHoldTheGraphsArrays(sd, parallel.replicas(Mlp.LOSS));
      String first = params.get(0);
      INDArray replaced = sd.getArrForVarName(first).mul(0.5);
      ArrayHolders.hold(sd, first, replaced);
      SameGradients.assertSame(Gradients.of(sd, inputs, List.of(Mlp.LOSS), params),
          parallel.gradients(inputs, Mlp.LOSS, params), Mlp.LOSS, params, 1e-12, 1e-12, ", after replacing " + first);
      assertEquals(2, parallel.replicasBuilt(), "replacing an array rebuilds nothing");
      assertReplicasHoldTheGraphsArrays(sd, parallel.replicas(Mlp.LOSS));
      assertSame(replaced, parallel.replicas(Mlp.LOSS).get(1).getArrForVarName(first));
    }
  }

  private static void assertReplicasHoldTheGraphsArrays(SameDiff sd, List<SameDiff> replicas) {
    assertEquals(2, replicas.size());
    for (SameDiff replica : replicas) {
      SameDiff grad = replica.getFunction("grad");
      for (SDVariable v : sd.variables()) {
        if (v.getVariableType() == VariableType.VARIABLE || v.getVariableType() == VariableType.CONSTANT) {
          INDArray original = sd.getArrForVarName(v.name());
          assertSame(original, replica.getArrForVarName(v.name()), v.name());
          if (grad != null && grad.hasVariable(v.name())) {
            assertSame(original, grad.getArrForVarName(v.name()), "gradient function's " + v.name());
          }
        }
      }
    }
  }

  @Test
  void theTrainersDefaultCutsNoShardOfOneRowFromALargerBatch() {
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    for (int[] rowsWorkersShards : new int[][] {{1, 2, 1}, {2, 2, 1}, {3, 2, 1}, {4, 2, 2}, {5, 8, 2}, {9, 4, 4}}) {
      Map<String, INDArray> inputs = Graphs.batches(sd, 1, 1, rowsWorkersShards[0]).get(0).inputs();
      List<Map<String, INDArray>> shards = DataParallel.split(inputs, rowsWorkersShards[1], 2);
      assertEquals(rowsWorkersShards[2], shards.size(), Arrays.toString(rowsWorkersShards));
      assertTrue(rowsWorkersShards[0] == 1 || shards.stream().allMatch(s -> s.get(Mlp.INPUT).size(0) >= 2),
          Arrays.toString(rowsWorkersShards));
    }
  }

  @Test
  void aBatchOfOneRowRunsOnTheGraphWithoutReplicas() {
    SwitchableGraph g = new SwitchableGraph();
    Map<String, INDArray> inputs = g.batch(1, 909);
    try (DataParallel parallel = DataParallel.of(g.sd, 2)) {
      SameGradients.assertSame(Gradients.of(g.sd, inputs, List.of("loss"), g.params), parallel.gradients(inputs,
          "loss", g.params), "loss", g.params, 1e-12, 1e-12, ", one row");
      assertEquals(0, parallel.replicasBuilt());
    }
  }

  /**
   * {@code loss = softmaxCrossEntropy(labels, tanh(in·w1)·w2)}, where {@code in} is {@code x} or, rewired as a mode
   * switch rewires dropout's branch, {@code 0.5·x}. {@code x: [n, 6]  w1: [6, 5]  w2: [5, 3]  labels: [n, 3]}.
   */
  private static final class SwitchableGraph {
    final SameDiff sd = SameDiff.create();
    final List<String> params = List.of("w1", "w2");
    private final String firstMatmul;

    SwitchableGraph() {
      Random random = new Random(3);
      SDVariable x = sd.placeHolder("x", DataType.DOUBLE, -1, 6);
      SDVariable labels = sd.placeHolder("labels", DataType.DOUBLE, -1, 3);
      x.mul("scaled", 0.5);
      SDVariable h = x.mmul(sd.var("w1", uniform(random, 6, 5)));
      firstMatmul = sd.getVariableOutputOp(h.name()).getOwnName();
      SDVariable logits = sd.math.tanh(h).mmul("logits", sd.var("w2", uniform(random, 5, 3)));
      sd.loss.softmaxCrossEntropy("loss", labels, logits, null);
      sd.setLossVariables("loss");
    }

    private static INDArray uniform(Random random, int rows, int columns) {
      double[][] values = new double[rows][columns];
      for (double[] row : values) {
        for (int c = 0; c < columns; c++) {
          row[c] = random.nextDouble() - 0.5;
        }
      }
      return Nd4j.createFromArray(values);
    }

    void readScaledInput(boolean scaled) {
      GraphRewriter.of(sd).setInput(firstMatmul, 0, scaled ? "scaled" : "x");
    }

    Map<String, INDArray> batch(int rows, long seed) {
      System.out.println("DataParallelTest seed " + seed);
      Random random = new Random(seed);
      double[][] x = new double[rows][6];
      double[][] labels = new double[rows][3];
      for (int r = 0; r < rows; r++) {
        for (int c = 0; c < 6; c++) {
          x[r][c] = random.nextGaussian();
        }
        labels[r][random.nextInt(3)] = 1;
      }
      return Map.of("x", Nd4j.createFromArray(x), "labels", Nd4j.createFromArray(labels));
    }
  }

  /** {@code rows} sequences of {@code length} random tokens, no padding, labels = the ids (a causal LM batch). */
  private static Map<String, INDArray> unpaddedLlamaBatch(Random random, int rows, int length) {
    long[][] ids = new long[rows][length];
    long[][] mask = new long[rows][length];
    for (int r = 0; r < rows; r++) {
      for (int t = 0; t < length; t++) {
        ids[r][t] = 1 + random.nextInt(127);
        mask[r][t] = 1;
      }
    }
    INDArray idArray = Nd4j.createFromArray(ids);
    return Map.of(Llama.INPUT_IDS, idArray, Llama.ATTENTION_MASK, Nd4j.createFromArray(mask), Llama.LABELS,
        idArray.dup());
  }
}
