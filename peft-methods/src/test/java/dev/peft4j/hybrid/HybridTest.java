package dev.peft4j.hybrid;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Mlp;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.Refusals;
import dev.peft4j.testing.ToyModels;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * Hybrid adapters: the composed arithmetic, one trainable set and one file, switching beside other adapters, and
 * every refusal (with the graph untouched). The life-cycle properties are the contract suite's hybrid rows.
 */
class HybridTest {

  private static AdapterConfig loraQv() {
    return Peft.lora(4).alpha(8).target("q_proj", "v_proj").build();
  }

  private static AdapterConfig pfeiffer() {
    return Peft.bottleneck(4).afterFfnOnly().build();
  }

  private static void train(PeftModel model, List<Batch> data) {
    Trainer.builder(model).steps(8).learningRate(2e-2).progress(null).build().fit(data);
  }

  @Test
  void outputIsLoraThenBottleneckComputedByHand() {
    Random random = new Random(41);
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    Batch batch = Graphs.batches(sd, 42, 1, 5).get(0);
    Peft.hybrid(Peft.lora(2).alpha(6).target("layers.0.fc").build(),
        Peft.bottleneck(3).afterFfnOnly().ffnOutput("head").build()).apply(sd);
    String lora = "peft/default/part0/lora/layers.0.fc/";
    String adapter = "peft/default/part1/bottleneck/head/";
    for (String v : List.of(lora + "lora_B", adapter + "adapter_down_bias", adapter + "adapter_up",
        adapter + "adapter_up_bias")) {
      INDArray a = sd.getArrForVarName(v);
      a.assign(Mlp.uniform(random, 1, DataType.DOUBLE, a.shape()));
    }
    INDArray x = batch.inputs().get(Mlp.INPUT);                                                  // [n, in]
    INDArray h1 = Transforms.tanh(x.mmul(p(sd, "layers.0.fc.weight")).addRowVector(p(sd, "layers.0.fc.bias"))
        .add(x.mmul(p(sd, lora + "lora_A")).mmul(p(sd, lora + "lora_B")).mul(6.0 / 2)));      // [n, hidden]
    INDArray h2 = Transforms.tanh(h1.mmul(p(sd, "layers.1.fc.weight")).addRowVector(p(sd, "layers.1.fc.bias")));
    INDArray y = h2.mmul(p(sd, "head.weight")).addRowVector(p(sd, "head.bias"));              // [n, classes]
    INDArray a = Transforms.relu(y.mmul(p(sd, adapter + "adapter_down"))
        .addRowVector(p(sd, adapter + "adapter_down_bias")));                                   // [n, 3]
    INDArray expected = y.add(a.mmul(p(sd, adapter + "adapter_up")).addRowVector(p(sd, adapter + "adapter_up_bias")));
    assertTrue(Graphs.relativeError(Graphs.logits(sd, batch), expected) < 1e-12,
        "both parts act at once: " + Graphs.relativeError(Graphs.logits(sd, batch), expected));
  }

  private static INDArray p(SameDiff sd, String name) {
    return sd.getArrForVarName(name);
  }

  @Test
  void oneTrainableSetOneStateDictOneFile(@TempDir Path dir) throws IOException {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.hybrid(loraQv(), pfeiffer()).apply(sd);
    Hybrid hybrid = assertInstanceOf(Hybrid.class, model.adapter("default"));
    List<Adapter> parts = hybrid.parts();
    assertEquals(List.of("default/part0", "default/part1"), parts.stream().map(Adapter::name).toList());
    Set<String> union = new HashSet<>(parts.get(0).trainableParameters().names());
    union.addAll(parts.get(1).trainableParameters().names());
    assertEquals(union, Set.copyOf(model.trainableParameters().names()), "one set: every part's parameters");
    assertTrue(union.stream().allMatch(n -> n.startsWith("peft/default/part0/lora/")
        || n.startsWith("peft/default/part1/bottleneck/")), union.toString());
    train(model, Graphs.batches(sd, 3, 2, 8));

    Map<String, INDArray> expected = new LinkedHashMap<>(parts.get(0).stateDict());
    expected.putAll(parts.get(1).stateDict());
    assertEquals(expected, hybrid.stateDict(), "the union of the parts' state dicts");
    model.save(dir);
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(AdapterFiles.WEIGHTS))) {
      assertEquals(expected.keySet().stream().map(k -> AdapterFiles.PREFIX + k).collect(java.util.stream.Collectors
          .toSet()), Set.copyOf(f.names()));
    }
    JsonObject config = JsonParser.parseString(Files.readString(dir.resolve(AdapterFiles.CONFIG))).getAsJsonObject();
    assertEquals("HYBRID", config.get("peft_type").getAsString());
    JsonArray saved = config.getAsJsonArray("parts");
    assertEquals("LORA", saved.get(0).getAsJsonObject().get("peft_type").getAsString());
    assertEquals(4, saved.get(0).getAsJsonObject().get("r").getAsInt());
    assertEquals("BOTTLENECK", saved.get(1).getAsJsonObject().get("peft_type").getAsString());
    assertEquals("pfeiffer", saved.get(1).getAsJsonObject().get("placement").getAsString());
  }

  @Test
  void disablingTheHybridDisablesEveryPart() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.hybrid(loraQv(), pfeiffer()).apply(sd);
    Hybrid hybrid = (Hybrid) model.adapter("default");
    try (var base = model.disableAdapters()) {
      assertTrue(hybrid.parts().stream().noneMatch(Adapter::isEnabled));
      assertTrue(model.trainableParameters().isEmpty());
    }
    assertTrue(hybrid.parts().stream().allMatch(Adapter::isEnabled));
    model.unload();
    assertThrows(IllegalStateException.class, () -> hybrid.parts().get(0).enable(), "parts are unloaded with it");
  }

  @Test
  void anyAdapterCanBeAPartEvenOneWithoutModules() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    Batch batch = Graphs.batches(sd, 1, 1, 5).get(0);
    INDArray base = Graphs.logits(sd, batch);
    PeftModel model = Peft.hybrid(pfeiffer(), new LogitBias.Config()).apply(sd);
    assertEquals(base, Graphs.logits(sd, batch), "identity at init");
    assertEquals(ToyModels.BLOCKS * (2L * ToyModels.D * 4 + 4 + ToyModels.D) + ToyModels.CLASSES,
        model.trainableParameters().count());
    Map<String, INDArray> before = Graphs.parameters(sd);
    train(model, Graphs.batches(sd, 2, 2, 8));
    String bias = "peft/default/part1/logit_bias/v";
    assertNotEquals(before.get(bias), sd.getArrForVarName(bias), "the non-module part trains with the others");
    assertTrue(model.adapter("default").stateDict().containsKey("logit_bias"));
    SameDiff unloaded = model.unload();
    assertEquals(base, Graphs.logits(unloaded, batch));
    assertTrue(unloaded.getVariables().keySet().stream().noneMatch(n -> n.startsWith("peft/")));
  }

  @Test
  void aHybridBesideAnotherAdapterSwitchesAndServesMixedBatches() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT); // rows independent, as mixed batches need
    Batch batch = Graphs.batches(sd, 1, 1, 4).get(0);
    List<Batch> data = Graphs.batches(sd, 2, 2, 8);
    INDArray base = Graphs.logits(sd, batch);
    PeftModel model = Peft.lora(2).target("fc", "head").apply(sd);
    train(model, data);
    INDArray lora = Graphs.logits(sd, batch);

    model.addAdapter("mixed", Peft.hybrid(Peft.lora(4).target("layers.0.fc").build(),
        Peft.bottleneck(4).afterFfnOnly().ffnOutput("layers.1.fc").build()).build()); // shares both fc layers
    GraphRewriter.of(sd).requireConsistentLinks();
    assertEquals(List.of("default"), model.activeAdapters());
    assertEquals(lora, Graphs.logits(sd, batch));
    model.setAdapter("mixed");
    assertEquals(base, Graphs.logits(sd, batch), "the hybrid starts as the identity");
    Set<String> mixedParameters = Set.copyOf(model.trainableParameters().names());
    Map<String, INDArray> before = Graphs.parameters(sd);
    train(model, data);
    Graphs.parameters(sd).forEach((name, value) -> {
      if (mixedParameters.contains(name)) {
        assertNotEquals(before.get(name), value, name);
      } else {
        assertEquals(before.get(name), value, name + " is not the hybrid's and must not train");
      }
    });
    INDArray mixed = Graphs.logits(sd, batch);
    Map<String, INDArray> rows = model.outputMixed(batch.inputs(), java.util.Arrays.asList("mixed", null, "default",
        "mixed"), Mlp.LOGITS);
    INDArray out = rows.get(Mlp.LOGITS);
    assertEquals(mixed.getRow(0), out.getRow(0));
    assertEquals(base.getRow(1), out.getRow(1));
    assertEquals(lora.getRow(2), out.getRow(2));
    model.setAdapter("default");
    assertEquals(lora, Graphs.logits(sd, batch));
    model.deleteAdapter("mixed");
    GraphRewriter.of(sd).requireConsistentLinks();
    assertTrue(sd.getVariables().keySet().stream().noneMatch(n -> n.startsWith("peft/mixed/")));
    assertEquals(lora, Graphs.logits(sd, batch));
  }

  // ------------------------------------------------------------------------------------------------ refusals

  /** Runs {@code action} on a fresh attention graph, expects {@code type} with {@code fragments}; nothing moved. */
  private static void rejects(Class<? extends RuntimeException> type, Consumer<SameDiff> action, String... fragments) {
    Refusals.assertRefusedUnchanged(ToyModels::attention, type, action, fragments);
  }

  @Test
  void partsThatAdaptTheSameModuleAreRefusedNamingThePartAndTheModule() {
    rejects(IllegalArgumentException.class, sd -> Peft.hybrid(Peft.lora(2).target("o_proj").build(),
        Peft.bottleneck(2).build()).apply(sd), "part 1 (BOTTLENECK) of hybrid adapter 'default' does not fit",
        "module 'layers.0.self_attn.o_proj' already carries an adapter branch");
    rejects(IllegalArgumentException.class, sd -> Peft.hybrid(Peft.bottleneck(2).build(),
        Peft.lora(2).target("down_proj").build()).apply(sd), "part 1 (LORA) of hybrid adapter 'default' does not fit",
        "layers.0.mlp.down_proj", "carries an enabled adapter");
  }

  @Test
  void aPartThatDoesNotFitIsFoundBeforeAnyPartIsApplied() {
    rejects(IllegalArgumentException.class, sd -> Peft.hybrid(pfeiffer(), Peft.lora(2).target("query").build())
        .apply(sd), "part 1 (LORA)", "[query] not found", "layers.0.self_attn.q_proj");
    rejects(IllegalArgumentException.class, sd -> Peft.hybrid(loraQv(), Peft.bottleneck(2).ffnOutput("fc2").build())
        .apply(sd), "part 1 (BOTTLENECK)", "[fc2] not found", "layers.1.mlp.down_proj");
  }

  @Test
  void modulesToSaveThatAPartAdaptsAreRefused() {
    rejects(IllegalArgumentException.class, sd -> Peft.hybrid(Peft.lora(2).target("lm_head").build(), pfeiffer())
        .modulesToSave("lm_head").apply(sd), "module 'lm_head' is both adapted by part 0 (LORA)", "modules_to_save");
  }

  @Test
  void malformedHybridsAreRefused() {
    assertTrue(assertThrows(IllegalArgumentException.class, () -> Peft.hybrid(loraQv()).build()).getMessage()
        .contains("at least 2 parts, got 1"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> Peft.hybrid(loraQv(), null).build()).getMessage()
        .contains("part 1 is null"));
    HybridConfig inner = Peft.hybrid(loraQv(), pfeiffer()).build();
    assertTrue(assertThrows(IllegalArgumentException.class, () -> Peft.hybrid(inner, pfeiffer()).build())
        .getMessage().contains("part 0 is itself a hybrid"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> Peft.hybrid(loraQv(),
        Peft.bottleneck(2).modulesToSave("lm_head").build()).build()).getMessage()
        .contains("part 1 (BOTTLENECK) has modules_to_save [lm_head]; give them to the hybrid"));
    assertThrows(IllegalStateException.class, () -> Peft.hybrid(loraQv(), pfeiffer()).modulesToSave("a")
        .modulesToSave("b"));
  }

  @Test
  void aHybridWithAPartThatCannotMergeIsNotMergedAndSaysWhichPart() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.hybrid(loraQv(), pfeiffer()).apply(sd);
    assertFalse(((HybridConfig) model.adapter("default").config()).isMergeable());
    Batch batch = Graphs.batches(sd, 1, 1, 3).get(0);
    train(model, Graphs.batches(sd, 2, 1, 8));
    INDArray adapted = Graphs.logits(sd, batch);
    Map<String, INDArray> parameters = Graphs.parameters(sd);
    IllegalStateException e = assertThrows(IllegalStateException.class, model::mergeAndUnload);
    assertTrue(e.getMessage().contains("adapter 'default' cannot be merged"), e.getMessage());
    assertTrue(e.getMessage().contains("LoraConfig{r=4") && e.getMessage().contains("(mergeable)"), e.getMessage());
    assertTrue(e.getMessage().contains("BottleneckConfig{size=4") && e.getMessage().contains("(not mergeable)"),
        e.getMessage());
    assertEquals(parameters, Graphs.parameters(sd), "nothing was changed");
    assertEquals(adapted, Graphs.logits(sd, batch));
  }

  @Test
  void partsThatChangeTheSameWeightRunButDoNotMerge() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    // IA³ rescales down_proj's input; LoRA's branch beside down_proj then reads the rescaled input
    PeftModel model = Peft.hybrid(Peft.ia3().target("down_proj").feedforward("down_proj").build(),
        Peft.lora(2).target("down_proj").build()).apply(sd);
    MergeableHybrid hybrid = assertInstanceOf(MergeableHybrid.class, model.adapter("default"));
    train(model, Graphs.batches(sd, 2, 2, 8));
    Batch batch = Graphs.batches(sd, 1, 1, 3).get(0);
    INDArray adapted = Graphs.logits(sd, batch);
    Map<String, INDArray> parameters = Graphs.parameters(sd);
    IllegalStateException e = assertThrows(IllegalStateException.class, hybrid::merge);
    assertTrue(e.getMessage().contains("parts 0 (IA3) and 1 (LORA) of hybrid adapter 'default' both change "
        + "'layers.0.mlp.down_proj.weight'"), e.getMessage());
    assertFalse(hybrid.isMerged());
    assertTrue(hybrid.parts().stream().allMatch(p -> p.isEnabled() && !((dev.peft4j.MergeableAdapter) p).isMerged()));
    assertEquals(parameters, Graphs.parameters(sd), "nothing was merged");
    assertEquals(adapted, Graphs.logits(sd, batch));
  }

  @Test
  void safeMergeRefusesANonFinitePartAndMergesNoPart() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.hybrid(loraQv(), Peft.ia3().target("k_proj").build()).apply(sd);
    MergeableHybrid hybrid = (MergeableHybrid) model.adapter("default");
    sd.getArrForVarName("peft/default/part0/lora/layers.0.self_attn.q_proj/lora_B").assign(0.1);
    sd.getArrForVarName("peft/default/part1/ia3/layers.1.self_attn.k_proj/ia3_l").putScalar(0, Float.NaN);
    Map<String, INDArray> parameters = Graphs.parameters(sd);
    IllegalStateException e = assertThrows(IllegalStateException.class, hybrid::safeMerge);
    assertTrue(e.getMessage().contains("part 1 (IA3)") && e.getMessage().contains("layers.1.self_attn.k_proj.weight"),
        e.getMessage());
    assertEquals(parameters.toString(), Graphs.parameters(sd).toString(), "no weight was touched, part 0's neither");
    assertFalse(hybrid.isMerged());
  }

  @Test
  void aPartOfAnUnknownTypeIsRefusedWhenLoading(@TempDir Path dir) throws IOException {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    Peft.hybrid(loraQv(), pfeiffer()).apply(sd).save(dir);
    Path config = dir.resolve(AdapterFiles.CONFIG);
    Files.writeString(config, Files.readString(config).replace("\"BOTTLENECK\"", "\"BOFT\""));
    Files.delete(dir.resolve(AdapterFiles.MANIFEST)); // edited by hand: the save's manifest would refuse it
    SameDiff fresh = ToyModels.attention(DataType.FLOAT);
    Map<String, VariableType> types = Graphs.types(fresh);
    IOException e = assertThrows(IOException.class, () -> Peft.load(fresh, dir));
    assertTrue(e.getMessage().contains("parts[1]: peft_type 'BOFT' is not supported"), e.getMessage());
    assertEquals(types, Graphs.types(fresh), "the model is untouched");
  }
}
