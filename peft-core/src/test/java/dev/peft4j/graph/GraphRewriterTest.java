package dev.peft4j.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.model.Mlp;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import dev.peft4j.train.Batch;
import dev.peft4j.train.GradientFunction;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

class GraphRewriterTest {

  @Test
  void findsLinearModulesWithShapesAndBiases() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    GraphRewriter g = GraphRewriter.of(sd);
    List<LinearModule> linear = g.linearModules();
    assertEquals(List.of("layers.0.self_attn.q_proj", "layers.0.self_attn.k_proj", "layers.0.self_attn.v_proj",
        "layers.0.self_attn.o_proj", "layers.0.mlp.up_proj", "layers.0.mlp.down_proj", "layers.1.self_attn.q_proj",
        "layers.1.self_attn.k_proj", "layers.1.self_attn.v_proj", "layers.1.self_attn.o_proj", "layers.1.mlp.up_proj",
        "layers.1.mlp.down_proj", "lm_head"), linear.stream().map(LinearModule::name).toList());
    LinearModule up = g.linearModule("layers.0.mlp.up_proj");
    assertEquals(ToyModels.D, up.inFeatures());
    assertEquals(ToyModels.FFN, up.outFeatures());
    assertEquals("layers.0.mlp.up_proj.bias", up.bias());
    assertNull(g.linearModule("layers.0.self_attn.q_proj").bias());
    assertEquals(Set.of("lm_head"), g.outputHeads());
    assertTrue(g.moduleNames().contains("layers.0.norm"), "non-linear modules are modules too");
    assertFalse(linear.stream().anyMatch(m -> m.name().endsWith("norm")));
  }

  @Test
  void theModuleOutputOfABiasedLinearIsTheBiasAdd() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    LinearModule head = GraphRewriter.of(sd).linearModule("head");
    assertEquals(Mlp.LOGITS, head.output());
    assertEquals(Set.of("head"), GraphRewriter.of(sd).outputHeads());
  }

  @Test
  void spliceMakesTheOutputNameDenoteTheBranchAndUnspliceRestoresExactly() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    GraphRewriter g = GraphRewriter.of(sd);
    Batch batch = Graphs.batches(sd, 1, 1, 4).get(0);
    INDArray base = Graphs.logits(sd, batch);
    double baseLoss = sd.output(batch.inputs(), Mlp.LOSS).get(Mlp.LOSS).getDouble(0);
    String[] branch = new String[1];
    GraphRewriter.Created created = g.capture(() -> branch[0] = sd.getVariable(Mlp.LOGITS).add("plus_one", 1.0).name());
    GraphRewriter.Splice splice = g.splice(Mlp.LOGITS, branch[0], created.ops());
    assertEquals(List.of(), g.checkLinks());
    assertEquals(base.add(1.0), Graphs.logits(sd, batch), "the name 'logits' now denotes the branch's result");
    assertEquals(base, sd.output(batch.inputs(), "plus_one").get("plus_one"), "the base value under the branch name");
    double lossAfter = sd.output(batch.inputs(), Mlp.LOSS).get(Mlp.LOSS).getDouble(0);
    assertEquals(baseLoss, lossAfter, 1e-6, "softmax is shift invariant, so the loss reads the spliced value");

    g.unsplice(splice);
    assertEquals(List.of(), g.checkLinks());
    assertEquals(base, Graphs.logits(sd, batch));
    g.resplice(splice);
    assertEquals(base.add(1.0), Graphs.logits(sd, batch));
    g.unsplice(splice);
    g.remove(created);
    assertEquals(List.of(), g.checkLinks());
    assertFalse(sd.hasVariable("plus_one"));
    assertEquals(base, Graphs.logits(sd, batch));
  }

  @Test
  void spliceKeepsGradientsWorking() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    GraphRewriter g = GraphRewriter.of(sd);
    Batch batch = Graphs.batches(sd, 1, 1, 4).get(0);
    String[] names = new String[2];
    GraphRewriter.Created created = g.capture(() -> {
      SDVariable scale = sd.var("scale", sd.getArrForVarName("head.bias").ulike().assign(2));
      names[0] = sd.getVariable(Mlp.LOGITS).mul("scaled", scale).name();
      names[1] = scale.name();
    });
    g.splice(Mlp.LOGITS, names[0], created.ops());
    GradientFunction.prepare(sd);
    Map<String, INDArray> grads = sd.calculateGradients(batch.inputs(), names[1], "head.weight");
    assertTrue(grads.get(names[1]).norm2Number().doubleValue() > 0);
    assertTrue(grads.get("head.weight").norm2Number().doubleValue() > 0);
  }

  @Test
  void removeRefusesWhileSomethingOutsideStillReadsAVariable() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    GraphRewriter g = GraphRewriter.of(sd);
    GraphRewriter.Created created = g.capture(() -> sd.var("extra", sd.getArrForVarName("head.bias").dup()));
    sd.getVariable(Mlp.LOGITS).add("reader", sd.getVariable("extra"));
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> g.remove(created));
    assertTrue(e.getMessage().contains("still reads it"), e.getMessage());
  }

  @Test
  void captureRemovesWhatAFailedBuildAdded() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    GraphRewriter g = GraphRewriter.of(sd);
    Set<String> vars = Set.copyOf(sd.getVariables().keySet());
    Set<String> ops = Set.copyOf(sd.getOps().keySet());
    assertThrows(IllegalStateException.class, () -> g.capture(() -> {
      sd.getVariable(Mlp.LOGITS).mul("half_built", 2.0);
      throw new IllegalStateException("boom");
    }));
    assertEquals(vars, Set.copyOf(sd.getVariables().keySet()));
    assertEquals(ops, Set.copyOf(sd.getOps().keySet()));
    assertEquals(List.of(), g.checkLinks());
  }

  @Test
  void theLinkCheckerFindsEachKindOfBrokenLink() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    GraphRewriter g = GraphRewriter.of(sd);
    assertEquals(List.of(), g.checkLinks());
    String matmul = g.linearModule("head").matmulOp();
    String input = g.inputsOf(matmul).get(0);

    // one side only: the op stops reading the variable, the variable still lists the op
    sd.getOps().get(matmul).getInputsToOp().set(0, Mlp.INPUT);
    List<String> problems = g.checkLinks();
    assertTrue(problems.stream().anyMatch(p -> p.contains("lists reader '" + matmul + "', which does not read it")),
        problems.toString());
    assertTrue(problems.stream().anyMatch(p -> p.contains("reads '" + Mlp.INPUT + "', which does not list it")),
        problems.toString());
    sd.getOps().get(matmul).getInputsToOp().set(0, input);
    assertEquals(List.of(), g.checkLinks());

    sd.getVariables().get(Mlp.LOGITS).setOutputOfOp("nonexistent");
    assertTrue(g.checkLinks().stream().anyMatch(p -> p.contains("names producer 'nonexistent'")));
    assertThrows(IllegalStateException.class, g::requireConsistentLinks);
  }

  @Test
  void setInputUpdatesBothSides() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    GraphRewriter g = GraphRewriter.of(sd);
    String matmul = g.linearModule("layers.0.fc").matmulOp();
    SDVariable other = sd.placeHolder("other", DataType.FLOAT, -1, ToyModels.MLP_IN);
    g.setInput(matmul, 0, other.name());
    assertEquals(List.of(), g.checkLinks());
    assertEquals(List.of(matmul), g.consumersOf("other"));
    assertFalse(g.consumersOf(Mlp.INPUT).contains(matmul));
  }

  @Test
  void freezeAndUnfreezeChangeTheVariableType() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    GraphRewriter g = GraphRewriter.of(sd);
    g.freeze(List.of("head.weight"));
    assertEquals(VariableType.CONSTANT, sd.getVariable("head.weight").getVariableType());
    assertFalse(g.trainableVariables().contains("head.weight"));
    g.unfreeze(List.of("head.weight"));
    assertEquals(VariableType.VARIABLE, sd.getVariable("head.weight").getVariableType());
  }
}
