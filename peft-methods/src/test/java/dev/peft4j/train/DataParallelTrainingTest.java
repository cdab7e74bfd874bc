package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfModels;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.autodiff.samediff.SameDiff;

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

  private static SameDiff bert() throws IOException {
    return Heads.sequenceClassification(HfModels.load(Fixtures.dir("tiny-bert")).sameDiff(), 32, 2,
        Heads.Pooling.MEAN, 3);
  }
}
