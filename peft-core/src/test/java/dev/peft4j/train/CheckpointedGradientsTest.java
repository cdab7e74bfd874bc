package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Hooks;
import dev.peft4j.model.Llama;
import dev.peft4j.testing.Fixtures;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.ndarray.INDArray;

/** {@link CheckpointedGradients} against the uncheckpointed pass of {@link Gradients}. */
class CheckpointedGradientsTest {

  @Test
  void sameLossAndGradientsAsOnePassStepAfterStep() throws IOException {
    SameDiff sd = trainableLlama();
    List<String> params = trainable(sd);
    List<String> layers = Hooks.layerStates(sd, Hooks.LAYER_OUTPUT);
    assertEquals(1, layers.size(), "tiny-llama has two layers: one cut " + layers);
    CheckpointedGradients checkpointed = CheckpointedGradients.of(sd, layers);
    Map<String, INDArray> inputs = inputs();
    for (int step = 0; step < 3; step++) {
      OutAndGrad expected = Gradients.of(sd, inputs, List.of(Llama.LOSS), params);
      OutAndGrad actual = checkpointed.compute(inputs, Llama.LOSS, params);
      SameGradients.assertSame(expected, actual, Llama.LOSS, params, 1e-6, 1e-5, ", step " + step);
      // a plain SGD step on the original: the segments must see the new weights
      for (String p : params) {
        sd.getArrForVarName(p).subi(expected.getGradients().get(p).mul(1e-1));
      }
    }
  }

  @Test
  void followsAWeightArrayReplacedInTheOriginal() throws IOException {
    SameDiff sd = trainableLlama();
    List<String> params = trainable(sd);
    CheckpointedGradients checkpointed = CheckpointedGradients.of(sd, Hooks.layerStates(sd, Hooks.LAYER_OUTPUT));
    Map<String, INDArray> inputs = inputs();
    checkpointed.compute(inputs, Llama.LOSS, params);
    String w = "model.layers.1.mlp.down_proj.weight";
    sd.setArrayForVariable(w, sd.getArrForVarName(w).mul(3));
    double want = Gradients.of(sd, inputs, List.of(Llama.LOSS), params).getOutputs().get(Llama.LOSS).getDouble(0);
    double got = checkpointed.compute(inputs, Llama.LOSS, params).getOutputs().get(Llama.LOSS).getDouble(0);
    assertEquals(want, got, 1e-6);
  }

  @Test
  void badCheckpointsAreRefusedWithWhatExists() throws IOException {
    SameDiff sd = trainableLlama();
    IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
        () -> CheckpointedGradients.of(sd, List.of("model.layers.7.layer_output")));
    assertTrue(unknown.getMessage().contains("model.layers.7.layer_output")
        && unknown.getMessage().contains("model.layers.0.layer_output"), unknown.getMessage());
    IllegalArgumentException weight = assertThrows(IllegalArgumentException.class,
        () -> CheckpointedGradients.of(sd, List.of("model.layers.0.mlp.up_proj.weight")));
    assertTrue(weight.getMessage().contains("not an op output"), weight.getMessage());
    IllegalArgumentException order = assertThrows(IllegalArgumentException.class,
        () -> CheckpointedGradients.of(sd, List.of("model.layers.0.layer_output", Hooks.INPUTS_EMBEDS)));
    assertTrue(order.getMessage().contains("graph order"), order.getMessage());
    assertThrows(IllegalArgumentException.class, () -> CheckpointedGradients.of(sd, List.of()));
  }

  @Test
  void atLayersCutsAfterEveryRoundedSquareRootOfTheLayerCount() {
    assertEquals(List.of("l.1.layer_output", "l.3.layer_output"), CheckpointedGradients.atLayers(chain(6))
        .checkpoints(), "6 layers: k = 2, three segments of two layers");
    assertEquals(List.of("l.2.layer_output", "l.5.layer_output", "l.8.layer_output"),
        CheckpointedGradients.atLayers(chain(12)).checkpoints(), "12 layers: k = 3");
    assertEquals(List.of("l.0.layer_output"), CheckpointedGradients.atLayers(chain(2)).checkpoints(), "k = 1");
    IllegalStateException none = assertThrows(IllegalStateException.class,
        () -> CheckpointedGradients.atLayers(chain(1)));
    assertTrue(none.getMessage().contains("layer_output"), none.getMessage());
  }

  /** x → L "layers" (x·2), the first L − 1 outputs named as Bert and Llama name them. */
  private static SameDiff chain(int layers) {
    SameDiff sd = SameDiff.create();
    SDVariable x = sd.placeHolder("x", org.nd4j.linalg.api.buffer.DataType.FLOAT, -1, 4);
    for (int i = 0; i < layers; i++) {
      x = x.mul(2.0);
      if (i < layers - 1) {
        x = x.rename("l." + i + "." + Hooks.LAYER_OUTPUT);
      }
    }
    return sd;
  }

  static SameDiff trainableLlama() throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    // ND4J M2.1 cannot differentiate a trainable gather: the embedding table stays frozen, everything else trains
    sd.convertToConstants(sd.variables().stream().filter(v -> v.getVariableType() == VariableType.VARIABLE
        && v.name().contains("embed_tokens")).toList());
    sd.setLossVariables(Llama.LOSS);
    return sd;
  }

  static List<String> trainable(SameDiff sd) {
    return sd.variables().stream().filter(v -> v.getVariableType() == VariableType.VARIABLE)
        .map(SDVariable::name).toList();
  }

  static Map<String, INDArray> inputs() throws IOException {
    try (SafetensorsFile f = SafetensorsFile.open(Fixtures.dir("tiny-llama").resolve("golden.safetensors"))) {
      return Map.of(Llama.INPUT_IDS, f.read("input_ids"), Llama.ATTENTION_MASK, f.read("attention_mask"),
          Llama.LABELS, f.read("loss_labels"));
    }
  }
}
