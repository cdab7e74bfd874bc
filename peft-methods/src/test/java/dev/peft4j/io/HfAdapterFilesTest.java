package dev.peft4j.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Adapter files compatible with Hugging Face PEFT: adapters saved by PEFT 0.21 (scripts/make_adapter_fixtures.py)
 * load and reproduce PEFT's logits; broken files are refused and leave the model as it was.
 */
class HfAdapterFilesTest {

  static Path base;
  static Map<String, INDArray> inputs;

  @BeforeAll
  static void fixtures() throws IOException {
    base = Fixtures.dir("tiny-llama");
    inputs = new HashMap<>();
    try (SafetensorsFile g = SafetensorsFile.open(Fixtures.dir("lora-tiny-llama").resolve("golden.safetensors"))) {
      inputs.put(Llama.INPUT_IDS, g.read("input_ids"));
      inputs.put(Llama.ATTENTION_MASK, g.read("attention_mask"));
    }
  }

  static SameDiff llama() throws IOException {
    return HfModels.load(base).sameDiff();
  }

  static INDArray logits(SameDiff sd) {
    return sd.output(inputs, Llama.LOGITS).get(Llama.LOGITS);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"lora-tiny-llama", "lora-tiny-llama-rs", "ia3-tiny-llama"})
  void adaptersSavedByHuggingFacePeftReproduceItsLogits(String fixture) throws IOException {
    Path dir = Fixtures.dir(fixture);
    SameDiff sd = llama();
    PeftModel model = Peft.load(sd, dir);
    INDArray golden;
    try (SafetensorsFile g = SafetensorsFile.open(dir.resolve("golden.safetensors"))) {
      golden = g.read("logits");
    }
    double max = Graphs.maxDiffOnRealTokens(logits(sd), golden, inputs.get(Llama.ATTENTION_MASK));
    assertTrue(max <= 1e-4, fixture + ": max |Δlogits| " + max);
    assertTrue(model.trainableParameters().count() > 0);
  }

  @Test
  void aBertAdapterSavedByHuggingFacePeftReproducesItsHiddenStates() throws IOException {
    Path dir = Fixtures.dir("lora-tiny-bert");
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-bert")).sameDiff();
    Peft.load(sd, dir);
    Map<String, INDArray> g = new HashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("golden.safetensors"))) {
      for (String n : f.names()) {
        g.put(n, f.read(n));
      }
    }
    INDArray ours = sd.output(Map.of(dev.peft4j.model.Bert.INPUT_IDS, g.get("input_ids"),
        dev.peft4j.model.Bert.ATTENTION_MASK, g.get("attention_mask"), dev.peft4j.model.Bert.TOKEN_TYPE_IDS,
        g.get("token_type_ids")), dev.peft4j.model.Bert.LAST_HIDDEN_STATE).get(dev.peft4j.model.Bert.LAST_HIDDEN_STATE);
    double max = Graphs.maxDiffOnRealTokens(ours, g.get("last_hidden_state"), g.get("attention_mask"));
    assertTrue(max <= 1e-4, "max |Δhidden| " + max);
  }

  @Test
  void peft4jWritesHuggingFaceKeysShapesAndConfig(@TempDir Path dir) throws IOException {
    SameDiff sd = llama();
    PeftModel model = Peft.lora(4).alpha(8).target("q_proj", "v_proj").apply(sd);
    model.addAdapter("second", Peft.lora(2).target("k_proj").build());
    model.save(dir);
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(AdapterFiles.WEIGHTS))) {
      assertEquals(Map.of("format", "pt"), f.metadata());
      assertEquals(Set.of(
          "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
          "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
          "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight",
          "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight",
          "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight",
          "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight",
          "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight",
          "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"), Set.copyOf(f.names()));
      assertEquals("[4, 64]", java.util.Arrays.toString(
          f.info("base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight").shape()), "lora_A is [r, in]");
      assertEquals("[32, 4]", java.util.Arrays.toString(
          f.info("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight").shape()), "lora_B is [out, r]");
    }
    String config = Files.readString(dir.resolve(AdapterFiles.CONFIG));
    assertTrue(config.contains("\"peft_type\": \"LORA\"") && config.contains("\"lora_alpha\": 8.0")
        && config.contains("\"inference_mode\": true"), config);
    assertTrue(Files.isRegularFile(dir.resolve("second").resolve(AdapterFiles.WEIGHTS)),
        "a non-default adapter goes in its own subdirectory, as Hugging Face PEFT does");
    // and what peft4j wrote loads back into peft4j
    SameDiff again = llama();
    Peft.load(again, dir);
    assertEquals(4L * (64 + 64) * 2 + 4L * (64 + 32) * 2, Peft.load(llama(), dir).trainableParameters().count());
  }

  // ------------------------------------------------------------------------------------------------- bad input

  /** The model's variable types, arrays and output, to prove a refused load changed nothing. */
  private record Snapshot(Map<String, VariableType> types, Map<String, INDArray> parameters, INDArray output) {
    static Snapshot of(SameDiff sd) {
      return new Snapshot(Graphs.types(sd), Graphs.parameters(sd), logits(sd));
    }
  }

  private static Path copyOf(Path source, Path target) throws IOException {
    Files.createDirectories(target);
    for (String f : new String[] {AdapterFiles.CONFIG, AdapterFiles.WEIGHTS}) {
      Files.copy(source.resolve(f), target.resolve(f));
    }
    return target;
  }

  private static void refused(Path dir, Class<? extends Exception> type, String... fragments) throws IOException {
    SameDiff sd = llama();
    Snapshot before = Snapshot.of(sd);
    Exception e = assertThrows(type, () -> Peft.load(sd, dir));
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), "'" + e.getMessage() + "' should mention '" + f + "'");
    }
    assertEquals(before, Snapshot.of(sd), "the model is unchanged after a refused load");
    assertEquals(java.util.List.of(), GraphRewriter.of(sd).checkLinks());
  }

  @Test
  void truncatedWeightsAreRefused(@TempDir Path tmp) throws IOException {
    Path dir = copyOf(Fixtures.dir("lora-tiny-llama"), tmp.resolve("a"));
    byte[] bytes = Files.readAllBytes(dir.resolve(AdapterFiles.WEIGHTS));
    Files.write(dir.resolve(AdapterFiles.WEIGHTS), java.util.Arrays.copyOf(bytes, bytes.length / 2));
    refused(dir, IOException.class, AdapterFiles.WEIGHTS);
  }

  @Test
  void unknownPeftTypeIsRefused(@TempDir Path tmp) throws IOException {
    Path dir = copyOf(Fixtures.dir("lora-tiny-llama"), tmp.resolve("a"));
    Path config = dir.resolve(AdapterFiles.CONFIG);
    Files.writeString(config, Files.readString(config).replace("\"LORA\"", "\"BOFT\""));
    refused(dir, IOException.class, "peft_type 'BOFT' is not supported", "LORA");
  }

  @Test
  void anAdapterForAnotherShapeNamesTheModuleAndBothShapes(@TempDir Path tmp) throws IOException {
    Path dir = copyOf(Fixtures.dir("lora-tiny-llama"), tmp.resolve("a"));
    Path config = dir.resolve(AdapterFiles.CONFIG);
    Files.writeString(config, Files.readString(config).replace("\"r\": 4", "\"r\": 6"));
    refused(dir, IllegalArgumentException.class, "model.layers.0.self_attn.q_proj", "[4, 64]", "[6, 64]");
  }

  @Test
  void anAdapterForModulesThatDoNotExistListsThoseThatDo(@TempDir Path tmp) throws IOException {
    Path dir = copyOf(Fixtures.dir("lora-tiny-llama"), tmp.resolve("a"));
    Path config = dir.resolve(AdapterFiles.CONFIG);
    Files.writeString(config, Files.readString(config).replace("\"q_proj\"", "\"query\""));
    refused(dir, IllegalArgumentException.class, "[query] not found", "model.layers.1.mlp.down_proj");
  }

  @Test
  void unsupportedFeaturesAreNamed(@TempDir Path tmp) throws IOException {
    Path dir = copyOf(Fixtures.dir("lora-tiny-llama"), tmp.resolve("a"));
    Path config = dir.resolve(AdapterFiles.CONFIG);
    String json = Files.readString(config);
    // fan_in_fan_out says the base stores [in, out] (GPT-2's Conv1D); tiny-llama's q_proj is an nn.Linear
    Files.writeString(config, json.replace("\"fan_in_fan_out\": false", "\"fan_in_fan_out\": true"));
    refused(dir, IllegalArgumentException.class, "fan_in_fan_out=true", "model.layers.0.self_attn.q_proj",
        "[in, out] = [64, 64]", "nn.Linear");
    // use_dora is DoRA now (dev.peft4j.dora): a LoRA file marked so lacks the magnitudes, and says which
    Files.writeString(config, json.replace("\"use_dora\": false", "\"use_dora\": true"));
    refused(dir, IllegalArgumentException.class, "missing tensors", "lora_magnitude_vector");
  }

  @Test
  void unknownFieldsFromNewerVersionsAreIgnored(@TempDir Path tmp) throws IOException {
    Path dir = copyOf(Fixtures.dir("lora-tiny-llama"), tmp.resolve("a"));
    Path config = dir.resolve(AdapterFiles.CONFIG);
    Files.writeString(config, Files.readString(config).replace("\"bias\": \"none\"",
        "\"bias\": \"none\", \"some_future_option\": {\"x\": 1}"));
    assertEquals(4L * (64 + 64) * 2 + 4L * (64 + 32) * 2, Peft.load(llama(), dir).trainableParameters().count());
  }
}
