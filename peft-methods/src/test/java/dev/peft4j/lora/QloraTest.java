package dev.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfModels;
import dev.peft4j.quant.Quantization;
import dev.peft4j.quant.QuantizedBase;
import dev.peft4j.quant.QuantizedTensor;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import dev.peft4j.train.GradientFunction;
import dev.peft4j.train.LearningRateSchedule;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/** QLoRA on the tiny BERT (linear layers as xw_plus_b, as on the real models): {@code Peft.qlora} from a float base. */
class QloraTest {

  private static final int HIDDEN = 32;
  private static final int LINEAR_PER_LAYER = 6; // q, k, v, attention.output.dense, intermediate.dense, output.dense

  private static SameDiff classifier() throws IOException {
    SameDiff encoder = HfModels.load(Fixtures.dir("tiny-bert")).sameDiff();
    return Heads.sequenceClassification(encoder, HIDDEN, 2, Heads.Pooling.MEAN, 3);
  }

  private static Batch batch(long seed) {
    System.out.println("batch seed " + seed);
    return Graphs.tinyBertBatch(seed);
  }

  private static INDArray logits(SameDiff sd, Batch batch) {
    return sd.output(batch.inputs(), Heads.LOGITS).get(Heads.LOGITS);
  }

  @Test
  void qloraQuantisesTheBaseTrainsOnlyTheAdapterAndUnloadKeepsThePackedBase(@TempDir Path dir) throws IOException {
    SameDiff sd = classifier();
    SameDiff quantisedBase = classifier();
    List<String> quantised = QuantizedBase.quantize(quantisedBase, Quantization.nf4());
    assertEquals(2 * LINEAR_PER_LAYER, quantised.size(), "every linear layer but the head: "
        + quantised);
    assertFalse(quantised.contains(Heads.CLASSIFIER));
    Batch batch = batch(1);
    INDArray dequantisedBaseOutput = logits(quantisedBase, batch);

    PeftModel model = Peft.qlora(4).alpha(8).target("query", "value").apply(sd);
    GraphRewriter g = GraphRewriter.of(sd);
    g.requireConsistentLinks();
    assertEquals(Set.copyOf(quantised), QuantizedBase.packedWeights(sd).keySet());
    assertEquals(dequantisedBaseOutput, logits(sd, batch), "identity at init relative to the dequantised base");
    assertEquals(2 * 2 * 4L * (HIDDEN + HIDDEN), model.trainableParameters().count());
    Map<String, QuantizedTensor> packedBefore = QuantizedBase.packedWeights(sd);

    // the frozen base gets no gradient: in a training step no op computes dW of a dequantised weight (xw_plus_b's
    // gradient has one matmul per input, and SameDiff runs only those a trainable variable's gradient needs)
    Set<String> computed = new java.util.HashSet<>();
    GradientFunction.prepare(sd);
    org.nd4j.autodiff.listeners.BaseListener recorder = new org.nd4j.autodiff.listeners.BaseListener() {
      @Override
      public boolean isActive(org.nd4j.autodiff.listeners.Operation operation) {
        return true;
      }

      @Override
      public void preOpExecution(SameDiff s, org.nd4j.autodiff.listeners.At at,
          org.nd4j.autodiff.samediff.internal.SameDiffOp op, org.nd4j.linalg.api.ops.OpContext context) {
        computed.addAll(op.getOutputsOfOp());
      }
    };
    sd.getFunction("grad").addListeners(recorder);
    sd.addListeners(recorder);
    sd.calculateGradientsAndOutputs(batch.inputs(), List.of(Heads.LOSS), model.trainableParameters().names());
    sd.getFunction("grad").setListeners();
    sd.setListeners();
    assertTrue(computed.stream().anyMatch(v -> v.endsWith("lora_A-grad")), "the recorder saw the backward pass");
    assertTrue(computed.stream().filter(v -> v.endsWith("-grad")).noneMatch(v -> v.contains(".weight_")),
        "no gradient of a packed constant or a dequantised weight was computed: " + computed.stream()
            .filter(v -> v.endsWith("-grad") && v.contains(".weight_")).toList());

    Map<String, INDArray> before = Graphs.parameters(sd);
    TrainingHistory h = Trainer.builder(model).steps(25).learningRate(2e-2)
        .schedule(LearningRateSchedule.CONSTANT).progress(null).build().fit(List.of(batch));
    assertTrue(h.meanLossOfLast(3) < h.meanLossOfFirst(3) * 0.9, h.meanLossOfFirst(3) + " → " + h.meanLossOfLast(3));
    Set<String> trainable = Set.copyOf(model.trainableParameters().names());
    Graphs.parameters(sd).forEach((name, value) -> {
      if (trainable.contains(name)) {
        assertNotEquals(before.get(name), value, name);
      } else {
        assertEquals(before.get(name), value, name + " is frozen");
      }
    });
    assertPackedEqual(packedBefore, QuantizedBase.packedWeights(sd));

    INDArray adapted = logits(sd, batch);
    Lora lora = (Lora) model.adapter(PeftModel.DEFAULT_ADAPTER);
    lora.merge(); // dequantise, add s·A·B, keep float
    g.requireConsistentLinks();
    assertTrue(Graphs.relativeError(logits(sd, batch), adapted) < 1e-5);
    assertEquals(2 * 2, g.linearModules().stream().filter(m -> !QuantizedBase.isQuantized(m)
        && !m.name().equals(Heads.CLASSIFIER)).count(), "the merged q, v are float now");
    lora.unmerge();
    assertPackedEqual(packedBefore, QuantizedBase.packedWeights(sd));
    assertTrue(Graphs.relativeError(logits(sd, batch), adapted) < 1e-5);

    model.save(dir); // an ordinary LoRA adapter: quantisation is a property of the base, as in Hugging Face
    JsonObject config = JsonParser.parseString(Files.readString(dir.resolve(AdapterFiles.CONFIG))).getAsJsonObject();
    assertEquals("LORA", config.get("peft_type").getAsString());
    assertTrue(config.keySet().stream().noneMatch(k -> k.contains("quant")), config.keySet().toString());
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(AdapterFiles.WEIGHTS))) {
      assertEquals(8, f.names().size());
      assertTrue(f.names().stream().allMatch(n -> n.contains(".lora_A.") || n.contains(".lora_B.")), f.names()
          .toString());
    }
    PeftModel loaded = Peft.load(quantisedBase, dir);
    assertEquals(adapted, logits(quantisedBase, batch), "loaded onto a base quantised the same way");
    assertEquals(model.trainableParameters().count(), loaded.trainableParameters().count());

    SameDiff unloaded = model.unload();
    g.requireConsistentLinks();
    assertPackedEqual(packedBefore, QuantizedBase.packedWeights(unloaded));
    assertEquals(dequantisedBaseOutput, logits(unloaded, batch), "unload restores the packed base exactly");
    assertTrue(unloaded.getVariables().keySet().stream().noneMatch(n -> n.startsWith("peft/")));
  }

  @Test
  void mergeAndUnloadLeavesTheMergedLayersInFloatAndTheOthersPacked() throws IOException {
    SameDiff sd = classifier();
    Batch batch = batch(2);
    PeftModel model = Peft.qlora(2).target("query").apply(sd);
    Trainer.builder(model).steps(5).learningRate(2e-2).progress(null).build().fit(List.of(batch));
    INDArray adapted = logits(sd, batch);
    SameDiff merged = model.mergeAndUnload();
    GraphRewriter.of(merged).requireConsistentLinks();
    assertTrue(Graphs.relativeError(logits(merged, batch), adapted) < 1e-5);
    for (LinearModule m : GraphRewriter.of(merged).linearModules()) {
      boolean query = m.name().endsWith(".query");
      assertEquals(!query && !m.name().equals(Heads.CLASSIFIER), QuantizedBase.isQuantized(m), m.name());
    }
    assertTrue(merged.getVariables().keySet().stream().noneMatch(n -> n.startsWith("peft/")));
  }

  @Test
  void aBadTargetLeavesTheFloatBaseUntouched() throws IOException {
    SameDiff sd = classifier();
    Set<String> vars = Set.copyOf(sd.getVariables().keySet());
    Set<String> ops = Set.copyOf(sd.getOps().keySet());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Peft.qlora(4).target("q_proj").apply(sd));
    assertTrue(e.getMessage().contains("target modules [q_proj] not found"), e.getMessage());
    assertEquals(vars, Set.copyOf(sd.getVariables().keySet()));
    assertEquals(ops, Set.copyOf(sd.getOps().keySet()));
  }

  @Test
  void aBaseStoredInAnotherQuantisationIsRefusedAndLeftAsItIs() throws IOException {
    SameDiff sd = classifier();
    QuantizedBase.quantize(sd, Quantization.int8());
    Set<String> vars = Set.copyOf(sd.getVariables().keySet());
    Set<String> ops = Set.copyOf(sd.getOps().keySet());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Peft.qlora(4).target("query").apply(sd));
    assertTrue(e.getMessage().contains("is stored as INT8(block 64), not as NF4(block 64, double quantisation)"),
        e.getMessage());
    assertEquals(vars, Set.copyOf(sd.getVariables().keySet()));
    assertEquals(ops, Set.copyOf(sd.getOps().keySet()));
  }

  @Test
  void quantizeBaseCanBeSetOnce() {
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> Peft.qlora(4).quantizeBase(Quantization.int8()));
    assertTrue(e.getMessage().contains("quantizeBase was already set to NF4(block 64, double quantisation)"),
        e.getMessage());
    assertEquals(Peft.lora(4).target("q").build().toHfConfig(),
        Peft.qlora(4).target("q").build().toHfConfig(), "the saved config does not carry the base's storage");
    assertNotEquals(Peft.lora(4).target("q").build(), Peft.qlora(4).target("q").build());
  }

  private static void assertPackedEqual(Map<String, QuantizedTensor> expected, Map<String, QuantizedTensor> actual) {
    assertEquals(expected.keySet(), actual.keySet());
    expected.forEach((m, t) -> {
      assertArrayEquals(t.data(), actual.get(m).data(), m);
      assertArrayEquals(t.absmaxCodes(), actual.get(m).absmaxCodes(), m);
      assertArrayEquals(t.absmaxScales(), actual.get(m).absmaxScales(), m);
      assertEquals(t.absmaxOffset(), actual.get(m).absmaxOffset(), m);
    });
  }
}
