package dev.peft4j.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import dev.peft4j.train.Batch;
import dev.peft4j.train.GradientFunction;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** A graph whose linear weights are packed constants, dequantised in the graph. */
class QuantizedBaseTest {

  static Stream<Arguments> storages() {
    return Stream.of(Arguments.of("nf4 double-quant", Quantization.nf4()),
        Arguments.of("nf4", Quantization.nf4().doubleQuant(false)),
        Arguments.of("nf4 block 128", Quantization.nf4().blockSize(128)),
        Arguments.of("int8", Quantization.int8()));
  }

  private static Set<String> names(SameDiff sd) {
    return Set.copyOf(sd.getVariables().keySet());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("storages")
  void forwardUsesExactlyTheDequantisedWeights(String name, Quantization q) {
    for (boolean attention : new boolean[] {false, true}) {
      SameDiff sd = attention ? ToyModels.attention(DataType.FLOAT) : ToyModels.mlp(DataType.FLOAT);
      SameDiff reference = attention ? ToyModels.attention(DataType.FLOAT) : ToyModels.mlp(DataType.FLOAT);
      Batch batch = Graphs.batches(sd, 3, 1, 6).get(0);
      INDArray before = Graphs.logits(sd, batch);
      List<String> modules = QuantizedBase.quantize(sd, q);
      GraphRewriter.of(sd).requireConsistentLinks();
      Map<String, QuantizedTensor> packed = QuantizedBase.packedWeights(sd);
      assertEquals(modules, List.copyOf(packed.keySet()));
      for (String m : modules) { // the reference: float weights set to the codec's own dequantisation
        reference.getArrForVarName(m + ".weight").assign(packed.get(m).toArray(DataType.FLOAT).transpose());
        assertNull(sd.getVariable(m + ".weight"), "the float weight of " + m + " is gone");
        assertEquals(q, packed.get(m).quantization());
      }
      INDArray after = Graphs.logits(sd, batch);
      assertEquals(Graphs.logits(reference, batch), after, name + ": the graph computes the codec's values");
      assertTrue(Graphs.relativeError(after, before) < 0.2, "quantisation error is small: "
          + Graphs.relativeError(after, before));
      for (LinearModule m : GraphRewriter.of(sd).linearModules()) { // still found as linear layers, same shapes
        assertEquals(modules.contains(m.name()), QuantizedBase.isQuantized(m), m.name());
        assertEquals(reference.getArrForVarName(m.name() + ".weight").shape()[0], m.inFeatures());
        assertEquals(reference.getArrForVarName(m.name() + ".weight").shape()[1], m.outFeatures());
      }
    }
  }

  @Test
  void everyLinearButTheHeadIsQuantised() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    List<String> modules = QuantizedBase.quantize(sd, Quantization.nf4());
    assertEquals(12, modules.size());
    assertFalse(modules.contains("lm_head"));
    assertTrue(modules.contains("layers.1.mlp.down_proj"));
    assertEquals(VariableType.VARIABLE, sd.getVariable("lm_head.weight").getVariableType());
    assertEquals(VariableType.VARIABLE, sd.getVariable("layers.0.norm.weight").getVariableType());
    for (String m : modules) {
      assertEquals(VariableType.CONSTANT, sd.getVariable(m + ".weight_nf4").getVariableType());
      assertEquals(DataType.UINT8, sd.getArrForVarName(m + ".weight_nf4").dataType());
    }
    long expected = 0;
    for (QuantizedTensor t : QuantizedBase.packedWeights(sd).values()) {
      expected += t.residentBytes();
    }
    assertEquals(expected, QuantizedBase.residentBytes(sd));
    // q,k,v,o: 64 values = 1 block (32 bytes, 1 code, 1 scale, offset); up, down: 96 values = 2 blocks (64 bytes)
    assertEquals(2 * (4 * (32 + 1 + 4 + 4) + 2 * (64 + 2 + 4 + 4)), expected);
  }

  @Test
  void noGradientIsComputedForTheDequantisedWeights() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    List<String> modules = QuantizedBase.quantize(sd, Quantization.nf4());
    GraphRewriter g = GraphRewriter.of(sd);
    List<String> frozen = g.trainableVariables().stream().filter(v -> !v.startsWith("lm_head")).toList();
    g.freeze(frozen);
    Batch batch = Graphs.batches(sd, 4, 1, 6).get(0);
    GradientFunction.prepare(sd);
    Map<String, INDArray> grads = sd.calculateGradients(batch.inputs(), List.of("lm_head.weight"));
    assertTrue(grads.get("lm_head.weight").norm2Number().doubleValue() > 0);
    SameDiff gradFn = sd.getFunction("grad");
    for (String m : modules) {
      SDVariable grad = sd.getVariable(m + GraphRewriter.DEQUANTIZED_WEIGHT).getGradient();
      assertNull(grad, m + ": a gradient variable exists for the dequantised weight");
    }
    List<String> gradients = gradFn.getVariables().keySet().stream().filter(v -> v.endsWith("-grad")).toList();
    assertTrue(gradients.contains("lm_head.weight-grad"), gradients.toString());
    for (String v : gradients) {
      assertFalse(v.contains("quant/") || v.contains(".weight_"), "a gradient of the dequantisation: " + v);
    }
  }

  @Test
  void quantisingAQuantisedWeightIsRefusedAndTheGraphUntouched() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    QuantizedBase.quantize(sd, Quantization.nf4());
    Set<String> vars = names(sd);
    Set<String> ops = Set.copyOf(sd.getOps().keySet());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> QuantizedBase.quantize(sd, Quantization.int8()));
    assertTrue(e.getMessage().contains("'layers.0.fc' is quantised already (NF4(block 64, double quantisation))"),
        e.getMessage());
    assertEquals(vars, names(sd));
    assertEquals(ops, Set.copyOf(sd.getOps().keySet()));
  }

  @Test
  void unknownModulesAreRefusedNamingTheLinearLayers() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    Set<String> vars = names(sd);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> QuantizedBase.quantize(sd, Quantization.nf4(), List.of("layers.0.fc", "nope")));
    assertTrue(e.getMessage().contains("'nope' is not a linear layer; linear layers: [layers.0.fc, layers.1.fc, "
        + "head]"), e.getMessage());
    assertEquals(vars, names(sd));
  }

  @Test
  void loadingAQuantisedLayerOfAnotherShapeIsRefusedNamingBothShapes() {
    SameDiff source = ToyModels.mlp(DataType.FLOAT);
    QuantizedBase.quantize(source, Quantization.nf4());
    QuantizedTensor fc0 = QuantizedBase.packedWeights(source).get("layers.0.fc");     // [8, 6]
    SameDiff target = ToyModels.mlp(DataType.FLOAT);
    Set<String> vars = names(target);
    Set<String> ops = Set.copyOf(target.getOps().keySet());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> QuantizedBase.load(target, "layers.1.fc", fc0));
    assertTrue(e.getMessage().contains("a quantised tensor of shape [8, 6] does not fit module 'layers.1.fc', whose "
        + "weight is [8, 8]"), e.getMessage());
    assertEquals(vars, names(target));
    assertEquals(ops, Set.copyOf(target.getOps().keySet()));

    QuantizedBase.load(target, "layers.0.fc", fc0); // the right shape loads, and computes what the source computes
    QuantizedBase.quantize(target, Quantization.nf4(), List.of("layers.1.fc"));
    Batch batch = Graphs.batches(source, 5, 1, 4).get(0);
    assertEquals(Graphs.logits(source, batch), Graphs.logits(target, batch));
  }

  @Test
  void replacedByFloatAndRestoredExactly() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    QuantizedBase.quantize(sd, Quantization.nf4());
    Batch batch = Graphs.batches(sd, 6, 1, 6).get(0);
    INDArray quantised = Graphs.logits(sd, batch);
    Set<String> vars = names(sd);
    Set<String> ops = Set.copyOf(sd.getOps().keySet());
    GraphRewriter g = GraphRewriter.of(sd);
    LinearModule q = g.linearModule("layers.0.self_attn.q_proj");
    QuantizedTensor before = QuantizedBase.packedWeights(sd).get(q.name());
    INDArray w = QuantizedBase.weight(sd, q);
    QuantizedBase.Unpacked u = QuantizedBase.replaceWithFloat(sd, q, w);
    g.requireConsistentLinks();
    assertEquals(VariableType.CONSTANT, sd.getVariable("layers.0.self_attn.q_proj.weight").getVariableType());
    assertFalse(sd.hasVariable("layers.0.self_attn.q_proj.weight_nf4"));
    assertEquals(quantised, Graphs.logits(sd, batch), "same values as float");
    QuantizedBase.restore(sd, u);
    g.requireConsistentLinks();
    assertEquals(vars, names(sd));
    assertEquals(ops, Set.copyOf(sd.getOps().keySet()));
    QuantizedTensor after = QuantizedBase.packedWeights(sd).get(q.name());
    assertTrue(java.util.Arrays.equals(before.data(), after.data()));
    assertTrue(java.util.Arrays.equals(before.absmaxCodes(), after.absmaxCodes()));
    assertEquals(quantised, Graphs.logits(sd, batch));
  }
}
