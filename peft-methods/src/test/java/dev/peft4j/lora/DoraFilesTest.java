package dev.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.io.Safetensors;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * DoRA adapter files both ways: the adapter Hugging Face PEFT 0.21 saved (scripts/fixtures_dora.py) reproduces its
 * logits; peft4j's DoRA adapter has PEFT's keys, shapes and config, and loads back identically. The adapter this test
 * writes to {@code target/dora-for-hf/} is the one {@code scripts/fixtures_dora.py --check} loads into PEFT.
 */
class DoraFilesTest {

  static Path base;
  static Map<String, INDArray> inputs;

  @BeforeAll
  static void fixtures() throws IOException {
    base = Fixtures.dir("tiny-llama");
    inputs = new HashMap<>();
    try (SafetensorsFile g = SafetensorsFile.open(Fixtures.dir("dora-tiny-llama").resolve("golden.safetensors"))) {
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

  @Test
  void anAdapterSavedByHuggingFacePeftReproducesItsLogits() throws IOException {
    Path dir = Fixtures.dir("dora-tiny-llama");
    SameDiff sd = llama();
    INDArray baseLogits = logits(sd);
    PeftModel model = Peft.load(sd, dir);
    assertInstanceOf(Dora.class, model.adapter(PeftModel.DEFAULT_ADAPTER));
    INDArray golden;
    try (SafetensorsFile g = SafetensorsFile.open(dir.resolve("golden.safetensors"))) {
      golden = g.read("logits");
    }
    INDArray mask = inputs.get(Llama.ATTENTION_MASK);
    double max = Graphs.maxDiffOnRealTokens(logits(sd), golden, mask);
    System.out.println("dora-tiny-llama: max |Δlogits| vs PEFT " + max);
    assertTrue(max <= 1e-4, "max |Δlogits| " + max);
    assertTrue(Graphs.maxDiffOnRealTokens(baseLogits, golden, mask) > 0.1, "the adapter moves the logits");
    // q_proj [64, 64], v_proj [64, 32], down_proj [128, 64], r = 4, two layers: LoRA's count plus out per module
    long expected = 2 * (4L * (64 + 64) + 64 + 4L * (64 + 32) + 32 + 4L * (128 + 64) + 64);
    assertEquals(expected, model.trainableParameters().count());

    ((Dora) model.adapter(PeftModel.DEFAULT_ADAPTER)).merge();
    assertTrue(Graphs.maxDiffOnRealTokens(logits(sd), golden, mask) <= 1e-4, "merged, still PEFT's logits");
  }

  @Test
  void peft4jWritesHuggingFaceKeysShapesAndConfigAndLoadsThemBack(@TempDir Path tmp) throws IOException {
    SameDiff sd = llama();
    PeftModel model = Peft.dora(4).alpha(8).target("q_proj", "v_proj", "down_proj").apply(sd);
    Random random = new Random(31);
    System.out.println("seed 31");
    for (String name : model.trainableParameters().names()) { // B off zero, m off the norm: every part matters
      INDArray p = sd.getArrForVarName(name);
      for (long i = 0; i < p.length(); i++) {
        double g = random.nextGaussian();
        p.putScalar(i, name.endsWith("lora_B") ? 0.3 * g : name.endsWith("lora_magnitude_vector")
            ? p.getDouble(i) * (1 + 0.2 * g) : p.getDouble(i));
      }
    }
    INDArray adapted = logits(sd);
    Path dir = tmp.resolve("dora");
    model.save(dir);

    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(AdapterFiles.WEIGHTS))) {
      assertEquals(18, f.names().size());
      String prefix = "base_model.model.model.layers.0.";
      assertArrayEquals(new long[] {4, 64}, f.info(prefix + "self_attn.v_proj.lora_A.weight").shape());
      assertArrayEquals(new long[] {32, 4}, f.info(prefix + "self_attn.v_proj.lora_B.weight").shape());
      assertArrayEquals(new long[] {32}, f.info(prefix + "self_attn.v_proj.lora_magnitude_vector").shape());
      assertArrayEquals(new long[] {64}, f.info(prefix + "mlp.down_proj.lora_magnitude_vector").shape());
      // the same keys as the adapter PEFT itself saved
      try (SafetensorsFile hf = SafetensorsFile.open(
          Fixtures.dir("dora-tiny-llama").resolve(AdapterFiles.WEIGHTS))) {
        assertEquals(Set.copyOf(hf.names()), Set.copyOf(f.names()));
      }
    }
    JsonObject config = JsonParser.parseString(Files.readString(dir.resolve(AdapterFiles.CONFIG))).getAsJsonObject();
    assertEquals("LORA", config.get("peft_type").getAsString());
    assertTrue(config.get("use_dora").getAsBoolean());

    SameDiff again = llama();
    PeftModel loaded = Peft.load(again, dir);
    assertInstanceOf(Dora.class, loaded.adapter(PeftModel.DEFAULT_ADAPTER));
    assertEquals(adapted, logits(again), "saved then loaded: identical logits");
    assertEquals(model.adapter(PeftModel.DEFAULT_ADAPTER).config(), loaded.adapter(PeftModel.DEFAULT_ADAPTER).config());

    // for the reverse check by hand: python scripts/fixtures_dora.py --check peft-methods/target/dora-for-hf
    Path export = Path.of("target", "dora-for-hf");
    model.save(export);
    Map<String, INDArray> golden = new LinkedHashMap<>();
    golden.put("input_ids", inputs.get(Llama.INPUT_IDS));
    golden.put("attention_mask", inputs.get(Llama.ATTENTION_MASK));
    golden.put("logits", adapted.castTo(DataType.FLOAT));
    Safetensors.write(export.resolve("golden.safetensors"), golden, Map.of("format", "pt"));
  }

  @Test
  void anAdapterWithoutItsMagnitudesIsRefusedAndTheModelIsUntouched(@TempDir Path tmp) throws IOException {
    Path dir = tmp.resolve("a");
    Files.createDirectories(dir);
    Path source = Fixtures.dir("dora-tiny-llama");
    Files.copy(source.resolve(AdapterFiles.CONFIG), dir.resolve(AdapterFiles.CONFIG));
    Map<String, INDArray> tensors = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(source.resolve(AdapterFiles.WEIGHTS))) {
      for (String n : f.names()) {
        if (!n.endsWith("lora_magnitude_vector")) { // a plain LoRA's tensors under a DoRA config
          tensors.put(n, f.read(n));
        }
      }
    }
    Safetensors.write(dir.resolve(AdapterFiles.WEIGHTS), tensors, Map.of("format", "pt"));
    SameDiff sd = llama();
    Map<String, VariableType> types = Graphs.types(sd);
    Map<String, INDArray> parameters = Graphs.parameters(sd);
    Set<String> ops = Set.copyOf(sd.getOps().keySet());
    INDArray output = logits(sd);
    Exception e = assertThrows(Exception.class, () -> Peft.load(sd, dir));
    assertTrue(e.getMessage().contains("lora_magnitude_vector"), e.getMessage());
    assertEquals(types, Graphs.types(sd));
    assertEquals(parameters, Graphs.parameters(sd));
    assertEquals(ops, Set.copyOf(sd.getOps().keySet()));
    assertEquals(output, logits(sd));
    assertEquals(java.util.List.of(), GraphRewriter.of(sd).checkLinks());
  }
}
