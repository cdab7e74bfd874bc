package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.ModelInputs;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import java.io.IOException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Training with data parallelism over two workers gives the losses and weights of training without it (up to float
 * rounding) when nothing is random: the classification loss is a mean over the batch's rows, so the shards' gradients
 * averaged by rows are the whole batch's. Methods that rewrite different parts of the layers: LoRA, DoRA, QLoRA (NF4
 * base), IA³, bottleneck adapters, prefix tuning (keys and values lengthened per row), prompt tuning (virtual tokens
 * prepended per row) and AdaLoRA (an orthogonality term added to the loss, not a mean over rows).
 */
class DataParallelTrainingTest {

  static Stream<Arguments> methods() {
    return Stream.of(
        Arguments.of("lora", (Supplier<AdapterConfig>) () -> Peft.lora(4).alpha(8).target("query", "value").build()),
        Arguments.of("dora", (Supplier<AdapterConfig>) () -> Peft.dora(4).alpha(8).target("query", "value").build()),
        Arguments.of("qlora (nf4 base)",
            (Supplier<AdapterConfig>) () -> Peft.qlora(4).alpha(8).target("query", "value").build()),
        Arguments.of("ia3", (Supplier<AdapterConfig>) () -> Peft.ia3().target("key", "value", "output.dense")
            .feedforward("output.dense").build()),
        Arguments.of("bottleneck", (Supplier<AdapterConfig>) () -> Peft.bottleneck(8).build()),
        Arguments.of("prefix tuning", (Supplier<AdapterConfig>) () -> Peft.prefixTuning(4).seed(3).build()),
        Arguments.of("prompt tuning", (Supplier<AdapterConfig>) () -> Peft.promptTuning(3).seed(3).build()),
        Arguments.of("adalora", (Supplier<AdapterConfig>) () -> Peft.adaLora(4, 2).alpha(8).totalStep(4)
            .target("query", "value").build()));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("methods")
  void sameLossesAndWeightsAsOneWorker(String name, Supplier<AdapterConfig> config) throws IOException {
    long seed = 20261201L;
    System.out.println(name + ": batch seed " + seed);
    Batch batch = Graphs.tinyBertBatch(seed); // 4 rows with different padding: shards of 2 + 2
    PeftModel[] models = new PeftModel[2];
    TrainingHistory[] runs = new TrainingHistory[2];
    for (int run = 0; run < 2; run++) {
      models[run] = config.get().apply(bert());
      runs[run] = Trainer.builder(models[run]).steps(4).learningRate(1e-2).seed(5).progress(null)
          .dataParallel(run == 0 ? 1 : 2).build().fit(List.of(batch));
    }
    // the shards sum in another order; AdamW divides each element's moment by its own scale, so the rounding of a
    // near-zero gradient element becomes a difference of up to lr in that weight: a looser bound than the losses'
    SameRuns.assertSame(name, runs, models, 2e-4);
  }

  @Test
  void withDropoutItIsReproducibleAndTrains() throws IOException {
    Batch batch = Graphs.tinyBertBatch(3);
    double[][] losses = new double[2][];
    for (int run = 0; run < 2; run++) {
      PeftModel model = Peft.lora(4).alpha(8).dropout(0.3).target("query", "value").apply(bert());
      TrainingHistory h = Trainer.builder(model).steps(6).learningRate(1e-2).seed(5).progress(null)
          .dataParallel(2).evaluateEvery(3, (step, m) -> java.util.Map.of("step", (double) step)) // mode switches
          .build().fit(List.of(batch));
      losses[run] = h.steps().stream().mapToDouble(TrainingHistory.Step::loss).toArray();
    }
    assertArrayEquals(losses[0], losses[1], 0, "two runs with the same seed");
    assertTrue(losses[0][5] < losses[0][0], "it trained: " + Arrays.toString(losses[0]));
  }

  @Test
  void badSettingsAreRefused() throws IOException {
    PeftModel model = Peft.lora(4).target("query").apply(bert());
    assertThrows(IllegalArgumentException.class, () -> Trainer.builder(model).dataParallel(0));
    assertThrows(IllegalStateException.class, () -> Trainer.builder(model).dataParallel(2).dataParallel(2));
    IllegalStateException both = assertThrows(IllegalStateException.class,
        () -> Trainer.builder(model).steps(1).dataParallel(2).gradientCheckpointing(true).build());
    assertTrue(both.getMessage().contains("checkpointing") && both.getMessage().contains("data parallel"),
        both.getMessage());
  }

  /**
   * LoRA with dropout: training, an evaluation in inference mode (dropout's branch rewired), training again. The
   * training replicas are the same objects afterwards and, with the same seed, give the same gradients; the inference
   * run went through replicas of the inference wiring and equals the model's own output.
   */
  @Test
  void anEvaluationBetweenStepsKeepsTheWarmReplicas() throws IOException {
    PeftModel model = Peft.lora(4).alpha(8).dropout(0.3).target("query", "value").apply(bert());
    SameDiff sd = model.sameDiff();
    List<String> names = model.trainableParameters().names();
    Map<String, INDArray> inputs = ModelInputs.complete(sd, Graphs.tinyBertBatch(11).inputs());
    Map<String, INDArray> features = new HashMap<>(inputs);
    features.remove(Heads.LABELS);
    try (var seeding = RandomOps.seed(sd, () -> 9);
        DataParallel parallel = DataParallel.of(sd, 2)) {
      model.train();
      OutAndGrad first = parallel.gradients(inputs, Heads.LOSS, names);
      List<SameDiff> training = parallel.replicas(Heads.LOSS);
      model.eval();
      INDArray expected = model.output(features, Heads.LOGITS).get(Heads.LOGITS);
      INDArray actual = parallel.output(features, Heads.LOGITS).get(Heads.LOGITS);
      assertTrue(expected.equalsWithEps(actual, 1e-5), "inference mode: " + expected + " vs " + actual);
      model.train();
      OutAndGrad again = parallel.gradients(inputs, Heads.LOSS, names);
      assertEquals(4, parallel.replicasBuilt(), "two replicas for training, two for inference, none rebuilt");
      for (int i = 0; i < 2; i++) {
        assertSame(training.get(i), parallel.replicas(Heads.LOSS).get(i), "training replica " + i);
      }
      assertEquals(first.getOutputs().get(Heads.LOSS), again.getOutputs().get(Heads.LOSS), "loss after an evaluation");
      for (String p : names) {
        assertEquals(first.getGradients().get(p), again.getGradients().get(p), p + " after an evaluation");
      }
    }
  }

  @Test
  void theDefaultFollowsTheCoresAndCheckpointingOrOneWorkerTurnsItOff() throws IOException {
    PeftModel model = Peft.lora(4).target("query").apply(bert());
    assertEquals(Runtime.getRuntime().availableProcessors(),
        Trainer.builder(model).steps(1).build().dataParallelWorkers());
    assertEquals(1, Trainer.builder(model).steps(1).dataParallel(1).build().dataParallelWorkers());
    assertEquals(3, Trainer.builder(model).steps(1).dataParallel(3).build().dataParallelWorkers());
    assertEquals(1, Trainer.builder(model).steps(1).gradientCheckpointing(true).build().dataParallelWorkers(),
        "checkpointing alone means one worker");
    assertEquals(1, Trainer.builder(model).steps(1).gradientCheckpointing(true).dataParallel(1).build()
        .dataParallelWorkers());
  }

  private static SameDiff bert() throws IOException {
    return Heads.sequenceClassification(HfModels.load(Fixtures.dir("tiny-bert")).sameDiff(), 32, 2,
        Heads.Pooling.MEAN, 3);
  }
}
