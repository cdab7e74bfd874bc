package dev.peft4j.selective;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.HfModels;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import dev.peft4j.train.Batch;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Every bad input to the selective methods is a clear exception naming the problem; the graph is as it was. */
class SelectiveBadInputTest {

  /** The graph's variables, types, ops and arrays, for comparing before and after a refused call. */
  private record Snapshot(Map<String, VariableType> types, Set<String> ops, Map<String, INDArray> parameters) {
    static Snapshot of(SameDiff sd) {
      return new Snapshot(Graphs.types(sd), Set.copyOf(sd.getOps().keySet()), Graphs.parameters(sd));
    }
  }

  private static <E extends RuntimeException> E rejects(SameDiff sd, Class<E> type, Consumer<SameDiff> action,
      String... fragments) {
    Snapshot before = Snapshot.of(sd);
    E e = assertThrows(type, () -> action.accept(sd));
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), "message '" + e.getMessage() + "' should mention '" + f + "'");
    }
    assertEquals(before, Snapshot.of(sd), "variables, types, ops and arrays unchanged");
    assertEquals(List.of(), GraphRewriter.of(sd).checkLinks());
    return e;
  }

  private static void rejectsOnToy(Function<DataType, SameDiff> model, Consumer<SameDiff> action,
      String... fragments) {
    SameDiff sd = model.apply(DataType.FLOAT);
    Batch batch = Graphs.batches(sd, 1, 1, 3).get(0);
    INDArray output = Graphs.logits(sd, batch);
    rejects(sd, IllegalArgumentException.class, action, fragments);
    assertEquals(output, Graphs.logits(sd, batch), "output unchanged");
  }

  @Test
  void bitFitOnAModelWithoutBiasesSaysSo() throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    assertTrue(sd.hasVariable("zero_bias_64"), "bias-free layers add the shared zero constant");
    rejects(sd, IllegalArgumentException.class, s -> Peft.bitFit().apply(s),
        "this model's linear layers have no biases (e.g. the Llama/Qwen family)", "model.layers.0.self_attn.q_proj",
        "Peft.lnTuning()");
    rejects(sd, IllegalArgumentException.class, s -> Peft.bitFit().target("q_proj").apply(s), "have no biases");
  }

  @Test
  void bitFitTargetsWithoutABiasAreNamed() {
    rejectsOnToy(ToyModels::attention, sd -> Peft.bitFit().target("q_proj", "o_proj").apply(sd),
        "BitFit target modules [layers.0.self_attn.q_proj, layers.1.self_attn.q_proj] have no bias",
        "layers.0.self_attn.o_proj", "lm_head");
    rejectsOnToy(ToyModels::attention, sd -> Peft.bitFit().target("out_proj").apply(sd),
        "target modules [out_proj] not found", "layers.0.mlp.up_proj");
    rejectsOnToy(ToyModels::mlp, sd -> Peft.bitFit().target("head").modulesToSave("head").apply(sd),
        "none of the targeted linear layers [head] has a bias outside modules_to_save [head]");
  }

  @Test
  void onQwen2OnlyTheQkvBiasesTrainNeverTheSharedZeroBias() throws IOException {
    HfModels.Loaded loaded = HfModels.load(Fixtures.dir("tiny-qwen2"));
    SameDiff sd = loaded.sameDiff();
    List<String> zeroBiases = sd.variables().stream().map(v -> v.name()).filter(n -> n.startsWith("zero_bias_"))
        .toList();
    assertTrue(!zeroBiases.isEmpty(), "o_proj, the MLP and lm_head read shared zero constants");
    PeftModel model = Peft.bitFit().apply(sd);
    List<String> selected = ((SelectiveAdapter<?>) model.adapter(PeftModel.DEFAULT_ADAPTER)).selectedParameters();
    assertEquals(List.of("model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.k_proj.bias",
        "model.layers.0.self_attn.v_proj.bias", "model.layers.1.self_attn.q_proj.bias",
        "model.layers.1.self_attn.k_proj.bias", "model.layers.1.self_attn.v_proj.bias"), selected);
    assertEquals(2L * (64 + 32 + 32), model.trainableParameters().count(), "q: 64, k and v: 2 KV heads × 16");
    assertEquals(dev.peft4j.methods.ParameterBudget.of(dev.peft4j.methods.ParameterBudget.Shape.of(
        (dev.peft4j.model.LlamaConfig) loaded.config())).bitFit(), model.trainableParameters().count());
    for (String z : zeroBiases) {
      assertEquals(VariableType.CONSTANT, sd.getVariable(z).getVariableType(), z);
      assertTrue(model.trainableParameters().names().stream().noneMatch(n -> n.contains(z)), z);
    }
  }

  @Test
  void lnTuningOnAModelWithoutNormLayersSaysSo() {
    rejectsOnToy(ToyModels::mlp, sd -> Peft.lnTuning().apply(sd),
        "LN tuning trains norm layers (LayerNorm γ and β, RMSNorm γ), but this model has no norm layer",
        "layers.0.fc", "head");
  }

  @Test
  void lnTuningTargetsThatAreNotNormLayersAreNamed() {
    rejectsOnToy(ToyModels::attention, sd -> Peft.lnTuning().target("o_proj").apply(sd),
        "LN tuning target modules [layers.0.self_attn.o_proj, layers.1.self_attn.o_proj] are not norm layers",
        "norm layers that exist: [layers.0.norm, layers.1.norm]");
    rejectsOnToy(ToyModels::attention, sd -> Peft.lnTuning().target("LayerNorm").apply(sd),
        "LN tuning target modules [LayerNorm] not found", "[layers.0.norm, layers.1.norm]");
    rejectsOnToy(ToyModels::attention, sd -> Peft.lnTuning().target("norm").exclude("norm").apply(sd),
        "no norm layer left to train");
  }

  @Test
  void linearProbeHeadsThatDoNotExistAreNamed() {
    rejectsOnToy(ToyModels::mlp, sd -> Peft.linearProbe().head("classifier").apply(sd),
        "head modules [classifier] not found", "layers.0.fc", "head");
    assertThrows(IllegalArgumentException.class, () -> Peft.linearProbe().head());
    assertThrows(IllegalStateException.class, () -> Peft.linearProbe().head("a").head("b"));
  }

  @Test
  void fullFineTuningExcludesThatDoNotExistAreNamed() {
    rejectsOnToy(ToyModels::mlp, sd -> Peft.fullFineTuning().exclude("encoder").apply(sd),
        "excluded modules [encoder] not found", "layers.1.fc");
    rejectsOnToy(ToyModels::mlp, sd -> Peft.fullFineTuning().exclude("fc", "head").apply(sd),
        "nothing left to train");
  }

  @Test
  void fullFineTuningLeavesTheEmbeddingTableFrozenAndSaysWhich() throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    PeftModel model = Peft.fullFineTuning().apply(sd);
    FullFineTuning adapter = (FullFineTuning) model.adapter(PeftModel.DEFAULT_ADAPTER);
    assertEquals(List.of("model.embed_tokens.weight"), adapter.excludedEmbeddings());
    assertTrue(model.trainableParameters().names().stream().noneMatch(n -> n.contains("embed_tokens")));
    assertTrue(adapter.selectedParameters().contains("lm_head.weight"));
    assertEquals(VariableType.CONSTANT, sd.getVariable("model.embed_tokens.weight").getVariableType());
  }

  private static void load(SameDiff sd, Path dir) {
    try {
      Peft.load(sd, dir);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  @Test
  void aSavedFileThatDoesNotFitIsRefusedBeforeTheModelIsTouched(@TempDir Path dir) throws IOException {
    Peft.lnTuning().apply(ToyModels.attention(DataType.FLOAT)).save(dir);
    rejects(ToyModels.mlp(DataType.FLOAT), IllegalArgumentException.class, sd -> load(sd, dir), "has no norm layer");
    // a config that selects one norm layer, with the tensors of two
    Path config = dir.resolve("adapter_config.json");
    String json = Files.readString(config);
    assertTrue(json.contains("\"target_modules\": null"), json);
    Files.writeString(config, json.replace("\"target_modules\": null", "\"target_modules\": [\"layers.0.norm\"]"));
    Files.delete(dir.resolve(AdapterFiles.MANIFEST)); // edited by hand: the save's manifest would refuse it
    rejects(ToyModels.attention(DataType.FLOAT), IllegalArgumentException.class, sd -> load(sd, dir),
        "does not fit this model", "unexpected tensors [layers.1.norm.ln_tuning_layers.weight]");
  }
}
