package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.testing.Fixtures;
import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.ndarray.INDArray;

/** {@link Gradients} against ND4J's own {@code calculateGradientsAndOutputs}, bit for bit, over several steps. */
class GradientsTest {

  @Test
  void sameLossAndGradientsAsNd4jStepAfterStepWhileBuffersAreReused() throws IOException {
    assertTrue(Gradients.internalsFound(), "ND4J's batchOutputHelper, sessions and freedArrays were not found");
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    // ND4J M2.1 cannot differentiate a trainable gather: the embedding table stays frozen, everything else trains
    sd.convertToConstants(sd.variables().stream().filter(v -> v.getVariableType() == VariableType.VARIABLE
        && v.name().contains("embed_tokens")).toList());
    sd.setLossVariables(Llama.LOSS);
    List<String> params = sd.variables().stream().filter(v -> v.getVariableType() == VariableType.VARIABLE)
        .map(SDVariable::name).toList();
    assertTrue(params.size() > 10, "trainable parameters: " + params);
    Map<String, INDArray> inputs = inputs();

    Map<String, INDArray> firstReturned = null;
    Map<String, INDArray> keptFromFirstStep = null;
    for (int step = 0; step < 3; step++) {
      OutAndGrad expected = sd.calculateGradientsAndOutputs(inputs, List.of(Llama.LOSS), params);
      OutAndGrad actual = Gradients.of(sd, inputs, List.of(Llama.LOSS), params);
      OutAndGrad again = Gradients.of(sd, inputs, List.of(Llama.LOSS), params); // now from reused buffers
      assertEquals(expected.getOutputs().get(Llama.LOSS).getDouble(0), actual.getOutputs().get(Llama.LOSS)
          .getDouble(0), 0.0, "loss, step " + step);
      assertEquals(params.size(), actual.getGradients().size());
      for (String p : params) {
        float[] want = expected.getGradients().get(p).dup().data().asFloat();
        assertArrayEquals(want, actual.getGradients().get(p).dup().data().asFloat(), p + ", step " + step);
        assertArrayEquals(want, again.getGradients().get(p).dup().data().asFloat(), p + " (reused), step " + step);
      }
      if (step == 0) {
        keptFromFirstStep = copies(actual.getGradients());
        firstReturned = actual.getGradients();
      }
      // a plain SGD step, so that the next step's arrays differ
      for (String p : params) {
        sd.getArrForVarName(p).subi(expected.getGradients().get(p).mul(1e-2));
      }
    }
    for (String p : params) {
      assertArrayEquals(keptFromFirstStep.get(p).data().asFloat(), firstReturned.get(p).dup().data().asFloat(),
          p + ": a returned gradient was overwritten by a later step");
    }
  }

  @Test
  void askingForNothingIsRefused() throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Gradients.of(sd, inputs(), List.of(), List.of()));
    assertTrue(e.getMessage().contains("neither outputs nor gradients"), e.getMessage());
    IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
        () -> Gradients.of(sd, inputs(), List.of(), List.of("no.such.weight")));
    assertTrue(unknown.getMessage().contains("no.such.weight"), unknown.getMessage());
  }

  private static Map<String, INDArray> copies(Map<String, INDArray> arrays) {
    Map<String, INDArray> out = new HashMap<>();
    arrays.forEach((k, v) -> out.put(k, v.dup()));
    return out;
  }

  private static Map<String, INDArray> inputs() throws IOException {
    try (SafetensorsFile f = SafetensorsFile.open(Fixtures.dir("tiny-llama").resolve("golden.safetensors"))) {
      return Map.of(Llama.INPUT_IDS, f.read("input_ids"), Llama.ATTENTION_MASK, f.read("attention_mask"),
          Llama.LABELS, f.read("loss_labels"));
    }
  }
}
