package dev.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.MergeableAdapter;
import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.methods.Peft;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Several adapters on one model, sharing modules, one active at a time, as in Hugging Face PEFT. */
class MultiAdapterTest {

  private static void train(PeftModel model, List<Batch> data) {
    Trainer.builder(model).steps(8).learningRate(2e-2).progress(null).build().fit(data);
  }

  @Test
  void adaptersOnTheSameModulesSwitchWithoutLosingWeights() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    Batch batch = Graphs.batches(sd, 1, 1, 5).get(0);
    List<Batch> data = Graphs.batches(sd, 2, 2, 8);
    INDArray base = Graphs.logits(sd, batch);

    PeftModel model = Peft.lora(4).target("q_proj", "v_proj").apply(sd);
    train(model, data);
    INDArray first = Graphs.logits(sd, batch);
    assertNotEquals(base, first);

    model.addAdapter("second", Peft.lora(2).target("q_proj", "o_proj").modulesToSave("lm_head").build());
    GraphRewriter.of(sd).requireConsistentLinks();
    assertEquals(List.of("default"), model.activeAdapters(), "a later adapter is added inactive, as in HF PEFT");
    assertEquals(first, Graphs.logits(sd, batch), "adding an adapter does not change the active one's output");

    model.setAdapter("second");
    GraphRewriter.of(sd).requireConsistentLinks();
    assertEquals(List.of("second"), model.activeAdapters());
    assertEquals(base, Graphs.logits(sd, batch), "the new adapter starts as the identity");
    Map<String, INDArray> before = Graphs.parameters(sd);
    Set<String> secondParameters = Set.copyOf(model.trainableParameters().names());
    train(model, data);
    INDArray second = Graphs.logits(sd, batch);
    Graphs.parameters(sd).forEach((name, value) -> {
      if (secondParameters.contains(name)) {
        assertNotEquals(before.get(name), value, name);
      } else {
        assertEquals(before.get(name), value, name + " is not the active adapter's and must not train");
      }
    });

    model.setAdapter("default");
    assertEquals(first, Graphs.logits(sd, batch), "switching back restores the first adapter exactly");
    model.setAdapter("second");
    assertEquals(second, Graphs.logits(sd, batch));

    IllegalStateException e = assertThrows(IllegalStateException.class, () -> model.deleteAdapter("second"));
    assertTrue(e.getMessage().contains("'second' is active"), e.getMessage());
    model.deleteAdapter("default");
    GraphRewriter.of(sd).requireConsistentLinks();
    assertEquals(second, Graphs.logits(sd, batch), "deleting the inactive adapter leaves the active one alone");
    model.unload();
    assertEquals(base, Graphs.logits(sd, batch), "unloading the last adapter gives the base back exactly");
    assertTrue(sd.getVariables().keySet().stream().noneMatch(n -> n.startsWith("peft/")));
  }

  @Test
  void switchingAwayFromAMergedAdapterIsRefused() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.lora(4).target("q_proj").apply(sd);
    model.addAdapter("other", Peft.lora(2).target("q_proj").build());
    ((Lora) model.adapter("default")).merge();
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> model.setAdapter("other"));
    assertTrue(e.getMessage().contains("'default' is merged"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> model.setAdapter("missing"));
  }

  @Test
  void mixedBatchRowsEachGetTheirAdapterOrTheBase() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);            // rows independent, as sequences of a real model are
    List<Batch> data = Graphs.batches(sd, 2, 2, 8);
    PeftModel model = Peft.lora(4).target("fc", "head").apply(sd);
    train(model, data);
    model.addAdapter("second", Peft.lora(2).target("head").build());
    model.setAdapter("second");
    train(model, data);
    model.setAdapter("default");

    Batch batch = Graphs.batches(sd, 3, 1, 5).get(0);
    List<String> perRow = java.util.Arrays.asList("second", null, "default", "second", null);
    INDArray mixed = model.outputMixed(batch.inputs(), perRow, dev.peft4j.model.Mlp.LOGITS)
        .get(dev.peft4j.model.Mlp.LOGITS);
    assertEquals(List.of("default"), model.activeAdapters(), "the active adapter is restored");
    for (int r = 0; r < perRow.size(); r++) {
      Map<String, INDArray> one = new java.util.HashMap<>();
      final int row = r;
      batch.inputs().forEach((k, v) -> one.put(k, v.getRow(row).reshape(1, v.size(1))));
      INDArray alone;
      if (perRow.get(r) == null) {
        try (var base = model.disableAdapters()) {
          alone = Graphs.logits(sd, new Batch(one, 1));
        }
      } else {
        model.setAdapter(perRow.get(r));
        alone = Graphs.logits(sd, new Batch(one, 1));
      }
      assertTrue(Graphs.relativeError(mixed.getRow(r).reshape(1, -1), alone) < 1e-6, "row " + r);
    }
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> model.outputMixed(batch.inputs(), List.of("default"), dev.peft4j.model.Mlp.LOGITS));
    assertTrue(e.getMessage().contains("1 adapter names for 5 rows"), e.getMessage());
  }

  /** Random values for every tensor of the adapter (LoRA's B starts at zero), so that it changes the output. */
  private static Map<String, INDArray> randomise(PeftModel model, String adapter, long seed) {
    org.nd4j.linalg.factory.Nd4j.getRandom().setSeed(seed);
    Map<String, INDArray> tensors = new java.util.LinkedHashMap<>();
    model.adapter(adapter).stateDict().forEach((k, v) ->
        tensors.put(k, v.add(org.nd4j.linalg.factory.Nd4j.randn(v.dataType(), v.shape()).muli(0.3))));
    model.adapter(adapter).loadStateDict(tensors);
    return tensors;
  }

  @Test
  void adapterNamesComeInTheOrderAdded() {
    PeftModel model = Peft.lora(2).target("head").apply(ToyModels.mlp(DataType.FLOAT));
    for (String name : List.of("zeta", "alpha", "mid")) {
      model.addAdapter(name, Peft.lora(2).target("head").build());
    }
    assertEquals(List.of("default", "zeta", "alpha", "mid"), List.copyOf(model.adapterNames()));
    model.deleteAdapter("alpha");
    assertEquals(List.of("default", "zeta", "mid"), List.copyOf(model.adapterNames()));
  }

  @Test
  void severalActiveAdaptersOnDifferentModulesEqualOneAdapterHoldingBoth() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    Batch batch = Graphs.batches(sd, 4, 1, 5).get(0);
    PeftModel model = Peft.lora(2).target("fc").apply(sd);
    Map<String, INDArray> fc = randomise(model, "default", 1);
    model.addAdapter("head", Peft.lora(2).target("head").build());
    Map<String, INDArray> head = randomise(model, "head", 2);
    model.setAdapter(List.of("head", "default"));
    assertEquals(List.of("default", "head"), model.activeAdapters(), "in the order added");
    GraphRewriter.of(sd).requireConsistentLinks();
    INDArray both = Graphs.logits(sd, batch);
    assertEquals(model.adapter("default").trainableParameters().count() + model.adapter("head").trainableParameters()
        .count(), model.trainableParameters().count(), "both adapters train");

    SameDiff reference = ToyModels.mlp(DataType.FLOAT);
    Map<String, INDArray> union = new java.util.HashMap<>(fc);
    union.putAll(head);
    PeftModel.wrap(reference).addAdapter("default", Peft.lora(2).target("fc", "head").build(), union);
    assertTrue(Graphs.relativeError(both, Graphs.logits(reference, batch)) < 1e-6,
        "two active adapters on fc and head = one adapter on both, as in HF PEFT");

    model.setAdapter("head");
    assertEquals(List.of("head"), model.activeAdapters());
    model.setAdapter(List.of("default", "head"));
    assertEquals(both, Graphs.logits(sd, batch), "switching back and forth is exact");
    model.unload();
    GraphRewriter.of(sd).requireConsistentLinks();
    assertTrue(sd.getVariables().keySet().stream().noneMatch(n -> n.startsWith("peft/")));
  }

  @Test
  void severalActiveAdaptersOnTheSameModuleAreRefusedAndNothingChanges() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    Batch batch = Graphs.batches(sd, 4, 1, 5).get(0);
    PeftModel model = Peft.lora(2).target("fc", "head").apply(sd);
    randomise(model, "default", 1);
    model.addAdapter("b", Peft.ia3().target("head").build());
    model.addAdapter("c", Peft.lora(2).target("head").build());
    INDArray before = Graphs.logits(sd, batch);

    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> model.setAdapter(List.of("default", "b")));
    assertTrue(e.getMessage().contains("adapters 'default' and 'b' adapt the same module"), e.getMessage());
    e = assertThrows(IllegalStateException.class, () -> model.setAdapter(List.of("b", "c")));
    assertTrue(e.getMessage().contains("adapters 'b' and 'c' adapt the same module"), e.getMessage());
    IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> model.setAdapter(List.of()));
    assertTrue(bad.getMessage().contains("name at least one adapter"), bad.getMessage());
    bad = assertThrows(IllegalArgumentException.class, () -> model.setAdapter(List.of("b", "b")));
    assertTrue(bad.getMessage().contains("an adapter is named twice in [b, b]"), bad.getMessage());
    bad = assertThrows(IllegalArgumentException.class, () -> model.setAdapter(List.of("b", "missing")));
    assertTrue(bad.getMessage().contains("no adapter named 'missing'"), bad.getMessage());

    assertEquals(List.of("default"), model.activeAdapters(), "the active adapters are as before");
    assertEquals(before, Graphs.logits(sd, batch));
    GraphRewriter.of(sd).requireConsistentLinks();
  }

  @Test
  void modelMergeKeepsTheOutputAndUnmergeRestoresTheBaseWeights() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    Batch batch = Graphs.batches(sd, 4, 1, 5).get(0);
    Map<String, INDArray> base = Graphs.parameters(sd);
    PeftModel model = Peft.lora(4).target("fc").apply(sd);
    randomise(model, "default", 1);
    model.addAdapter("scale", Peft.ia3().target("head").build());
    randomise(model, "scale", 2);
    model.addAdapter("idle", Peft.lora(2).target("head").build());
    randomise(model, "idle", 3);
    model.setAdapter(List.of("default", "scale"));
    INDArray unmerged = Graphs.logits(sd, batch);

    model.merge();
    assertTrue(((MergeableAdapter) model.adapter("default")).isMerged());
    assertTrue(((MergeableAdapter) model.adapter("scale")).isMerged());
    assertTrue(!((MergeableAdapter) model.adapter("idle")).isMerged(), "an inactive adapter is not merged");
    assertEquals(List.of("default", "scale"), model.activeAdapters());
    assertTrue(model.trainableParameters().isEmpty(), "merged adapters do not train");
    assertTrue(Graphs.relativeError(Graphs.logits(sd, batch), unmerged) < 1e-5);
    assertNotEquals(base.get("layers.0.fc.weight"), sd.getArrForVarName("layers.0.fc.weight"));
    assertNotEquals(base.get("head.weight"), sd.getArrForVarName("head.weight"));
    model.merge(); // merged adapters are skipped
    assertTrue(Graphs.relativeError(Graphs.logits(sd, batch), unmerged) < 1e-5);

    model.unmerge();
    assertTrue(!((MergeableAdapter) model.adapter("default")).isMerged());
    assertTrue(!((MergeableAdapter) model.adapter("scale")).isMerged());
    for (String w : List.of("layers.0.fc.weight", "layers.1.fc.weight", "head.weight")) {
      assertTrue(Graphs.relativeError(sd.getArrForVarName(w), base.get(w)) < 1e-6, w);
    }
    assertTrue(Graphs.relativeError(Graphs.logits(sd, batch), unmerged) < 1e-6);
    model.unmerge(); // nothing merged: nothing to do
    GraphRewriter.of(sd).requireConsistentLinks();
  }

  @Test
  void modelMergeRefusesAnActiveAdapterThatCannotMergeAndMergesNothing() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    Batch batch = Graphs.batches(sd, 4, 1, 5).get(0);
    PeftModel model = Peft.lora(2).target("head").apply(sd);
    randomise(model, "default", 1);
    model.addAdapter("adapter", Peft.bottleneck(3).afterFfnOnly().ffnOutput("layers.0.fc").build());
    model.setAdapter(List.of("default", "adapter"));
    INDArray before = Graphs.logits(sd, batch);
    IllegalStateException e = assertThrows(IllegalStateException.class, model::merge);
    assertTrue(e.getMessage().contains("adapter 'adapter' cannot be merged into the base weights (Bottleneck is not "
        + "mergeable); nothing was merged"), e.getMessage());
    assertTrue(!((MergeableAdapter) model.adapter("default")).isMerged());
    assertEquals(before, Graphs.logits(sd, batch));
  }
}
