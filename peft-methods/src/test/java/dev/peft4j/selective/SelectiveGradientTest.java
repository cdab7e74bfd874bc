package dev.peft4j.selective;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.train.GradientFunction;
import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Gradients of the newly trainable parameters against central finite differences on the real architectures: the
 * bias of a fused {@code xw_plus_b} linear (BitFit), LayerNorm's γ and β and RMSNorm's γ (LN tuning). The fixtures
 * are float graphs, so the step is 1e-2 and the tolerance 1% (the toy graphs of the contract suite are checked in
 * double to 1e-6). Perturbations are seeded (seed 31).
 */
class SelectiveGradientTest {

  private static void matchesFiniteDifferences(SameDiff sd, AdapterConfig config, Map<String, INDArray> inputs,
      String loss) {
    PeftModel model = config.apply(sd);
    List<String> params = model.trainableParameters().names();
    Random random = new Random(31);
    for (String p : params) { // off the pre-trained values, so that no gradient is special
      INDArray a = sd.getArrForVarName(p);
      for (long i = 0; i < a.length(); i++) {
        a.putScalar(i, a.getDouble(i) + 0.2 * (random.nextDouble() - 0.5));
      }
    }
    GradientFunction.prepare(sd);
    Map<String, INDArray> grads = sd.calculateGradients(inputs, params);
    double eps = 1e-2;
    int checked = 0;
    for (String p : params) {
      INDArray a = sd.getArrForVarName(p);
      for (long i = 0; i < a.length(); i += Math.max(1, a.length() / 3)) {
        double original = a.getDouble(i);
        a.putScalar(i, original + eps);
        double plus = sd.output(inputs, loss).get(loss).getDouble(0);
        a.putScalar(i, original - eps);
        double minus = sd.output(inputs, loss).get(loss).getDouble(0);
        a.putScalar(i, original);
        double numeric = (plus - minus) / (2 * eps);
        double analytic = grads.get(p).getDouble(i);
        assertTrue(Math.abs(numeric - analytic) <= 2e-4 + 1e-2 * Math.abs(numeric),
            p + "[" + i + "]: analytic " + analytic + " vs numeric " + numeric);
        checked++;
      }
    }
    assertTrue(checked >= params.size(), "every parameter checked at least once");
  }

  private static Map<String, INDArray> bertInputs() {
    Map<String, INDArray> inputs = new HashMap<>();
    inputs.put(Bert.INPUT_IDS, Nd4j.createFromArray(new long[][] {{2, 17, 33, 41, 5, 3}, {2, 60, 12, 7, 3, 0}}));
    inputs.put(Bert.ATTENTION_MASK, Nd4j.createFromArray(new long[][] {{1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 0}}));
    inputs.put(Bert.TOKEN_TYPE_IDS, Nd4j.zeros(DataType.INT64, 2, 6));
    inputs.put(Heads.LABELS, Nd4j.createFromArray(1L, 0L));
    return inputs;
  }

  private static SameDiff bert() throws IOException {
    return Heads.sequenceClassification(HfModels.load(Fixtures.dir("tiny-bert")).sameDiff(), 32, 2,
        Heads.Pooling.MEAN, 5);
  }

  @Test
  void bitFitBiasesOfFusedLinearsOnTinyBert() throws IOException {
    matchesFiniteDifferences(bert(), Peft.bitFit().target("query", "intermediate.dense", "classifier").build(),
        bertInputs(), Heads.LOSS);
  }

  @Test
  void layerNormGammaAndBetaOnTinyBert() throws IOException {
    matchesFiniteDifferences(bert(), Peft.lnTuning().build(), bertInputs(), Heads.LOSS);
  }

  @Test
  void rmsNormGammaOnTinyLlama() throws IOException {
    Map<String, INDArray> inputs = new HashMap<>();
    try (SafetensorsFile g = SafetensorsFile.open(Fixtures.dir("tiny-llama").resolve("golden.safetensors"))) {
      inputs.put(Llama.INPUT_IDS, g.read("input_ids"));
      inputs.put(Llama.ATTENTION_MASK, g.read("attention_mask"));
      inputs.put(Llama.LABELS, g.read("loss_labels"));
    }
    matchesFiniteDifferences(HfModels.load(Fixtures.dir("tiny-llama")).sameDiff(), Peft.lnTuning().build(), inputs,
        Llama.LOSS);
  }
}
