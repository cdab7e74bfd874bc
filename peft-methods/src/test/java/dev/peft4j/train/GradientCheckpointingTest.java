package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import java.io.IOException;
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
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Training with gradient checkpointing gives the losses and weights of training without it (up to float rounding),
 * for methods that rewrite different parts of the layers: LoRA with dropout (random ops in both passes), prefix tuning
 * (keys and values lengthened in every layer), prompt tuning (the input sequence lengthened before the first cut),
 * DoRA, QLoRA (the NF4 base dequantised again in the recomputation), IA³ and bottleneck adapters.
 */
class GradientCheckpointingTest {

  static Stream<Arguments> methods() {
    return Stream.of(
        Arguments.of("lora dropout, llama", "tiny-llama",
            (Supplier<AdapterConfig>) () -> Peft.lora(4).alpha(8).dropout(0.2).target("q_proj", "v_proj").build()),
        Arguments.of("prefix tuning, llama", "tiny-llama",
            (Supplier<AdapterConfig>) () -> Peft.prefixTuning(4).seed(3).build()),
        Arguments.of("prompt tuning, llama", "tiny-llama",
            (Supplier<AdapterConfig>) () -> Peft.promptTuning(3).seed(3).build()),
        Arguments.of("lora dropout, bert", "tiny-bert",
            (Supplier<AdapterConfig>) () -> Peft.lora(4).alpha(8).dropout(0.2).target("query", "value").build()),
        Arguments.of("dora, llama", "tiny-llama",
            (Supplier<AdapterConfig>) () -> Peft.dora(4).alpha(8).target("q_proj", "v_proj").build()),
        Arguments.of("qlora (nf4 base), bert", "tiny-bert",
            (Supplier<AdapterConfig>) () -> Peft.qlora(4).alpha(8).target("query", "value").build()),
        Arguments.of("ia3, bert", "tiny-bert", (Supplier<AdapterConfig>) () -> Peft.ia3().target("key", "value", "output.dense").feedforward("output.dense").build()),
        Arguments.of("bottleneck, bert", "tiny-bert", (Supplier<AdapterConfig>) () -> Peft.bottleneck(8).build()));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("methods")
  void sameLossesAndWeightsAsWithout(String name, String fixture, Supplier<AdapterConfig> config) throws IOException {
    long seed = 20261201L;
    System.out.println(name + ": batch seed " + seed);
    Batch batch = fixture.equals("tiny-llama") ? llamaBatch() : Graphs.tinyBertBatch(seed);
    PeftModel[] models = new PeftModel[2];
    TrainingHistory[] runs = new TrainingHistory[2];
    for (int run = 0; run < 2; run++) {
      SameDiff sd = fixture.equals("tiny-llama") ? HfModels.load(Fixtures.dir(fixture)).sameDiff()
          : Heads.sequenceClassification(HfModels.load(Fixtures.dir(fixture)).sameDiff(), 32, 2, Heads.Pooling.MEAN, 3);
      models[run] = config.get().apply(sd);
      runs[run] = Trainer.builder(models[run]).steps(4).learningRate(1e-2).seed(5).progress(null)
          .gradientCheckpointing(run == 1).dataParallel(1) // both runs one pass per micro-batch: bit for bit
          .build().fit(List.of(batch));
    }
    SameRuns.assertSame(name, runs, models, 1e-5);
  }

  @Test
  void evaluationsBetweenStepsDoNotDisturbIt() throws IOException {
    // each evaluation switches the model to inference mode and back, which rewires the LoRA dropout
    double[][] losses = new double[2][];
    for (int run = 0; run < 2; run++) {
      PeftModel model = Peft.lora(4).alpha(8).dropout(0.2).target("q_proj", "v_proj")
          .apply(HfModels.load(Fixtures.dir("tiny-llama")).sameDiff());
      TrainingHistory h = Trainer.builder(model).steps(5).learningRate(1e-2).seed(5).progress(null)
          .evaluateEvery(2, (step, m) -> Map.of("step", (double) step))
          .gradientCheckpointing(run == 1).dataParallel(1) // both runs one pass per micro-batch: bit for bit
          .build().fit(List.of(llamaBatch()));
      losses[run] = h.steps().stream().mapToDouble(TrainingHistory.Step::loss).toArray();
      assertEquals(3, h.evaluations().size());
    }
    assertArrayEquals(losses[0], losses[1], 1e-6 * Math.abs(losses[0][0]));
    assertTrue(losses[0][4] < losses[0][0], "it trained: " + java.util.Arrays.toString(losses[0]));
  }

  @Test
  void aGraphWithoutLayerOutputsIsRefused() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    PeftModel model = Peft.lora(4).target("fc").apply(sd);
    Trainer trainer = Trainer.builder(model).steps(1).progress(null).gradientCheckpointing(true).build();
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> trainer.fit(Graphs.batches(sd, 1, 1, 4)));
    assertTrue(e.getMessage().contains("layer_output"), e.getMessage());
    assertThrows(IllegalStateException.class,
        () -> Trainer.builder(model).gradientCheckpointing(true).gradientCheckpointing(false));
  }

  private static Batch llamaBatch() throws IOException {
    Map<String, INDArray> inputs = new HashMap<>();
    try (SafetensorsFile g = SafetensorsFile.open(Fixtures.dir("tiny-llama").resolve("golden.safetensors"))) {
      inputs.put(Llama.INPUT_IDS, g.read("input_ids"));
      inputs.put(Llama.ATTENTION_MASK, g.read("attention_mask"));
      inputs.put(Llama.LABELS, g.read("loss_labels"));
    }
    return new Batch(inputs, inputs.get(Llama.ATTENTION_MASK).sumNumber().longValue());
  }
}
