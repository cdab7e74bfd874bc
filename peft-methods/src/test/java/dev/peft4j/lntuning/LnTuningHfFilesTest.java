package dev.peft4j.lntuning;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
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
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * LN tuning files both ways with Hugging Face PEFT 0.21: its saved adapter (scripts/fixtures_ln_tuning.py) reproduces
 * its logits here, and ours is written in its layout (checked in PEFT with {@code fixtures_ln_tuning.py --check}).
 */
class LnTuningHfFilesTest {

  private static Map<String, INDArray> golden(Path dir, String... names) throws IOException {
    Map<String, INDArray> out = new LinkedHashMap<>();
    try (SafetensorsFile g = SafetensorsFile.open(dir.resolve("golden.safetensors"))) {
      for (String n : names) {
        out.put(n, g.read(n));
      }
    }
    return out;
  }

  @Test
  void anAdapterSavedByHuggingFacePeftReproducesItsLogits() throws IOException {
    Path dir = Fixtures.dir("ln-tuning-tiny-llama");
    Map<String, INDArray> g = golden(dir, "input_ids", "attention_mask", "logits");
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    PeftModel model = Peft.load(sd, dir);
    Map<String, INDArray> inputs = Map.of(Llama.INPUT_IDS, g.get("input_ids"), Llama.ATTENTION_MASK,
        g.get("attention_mask"));
    double max = Graphs.maxDiffOnRealTokens(sd.output(inputs, Llama.LOGITS).get(Llama.LOGITS), g.get("logits"),
        g.get("attention_mask"));
    assertTrue(max <= 1e-4, "max |Δlogits| " + max);
    assertEquals(5L * 64, model.trainableParameters().count());
    assertEquals(LnTuningConfig.PEFT_TYPE, model.adapter(PeftModel.DEFAULT_ADAPTER).config().peftType());
  }

  /**
   * Writes a peft4j LN-tuning adapter (γ moved off its values, seed 23) with its logits; the directory is
   * {@code -Dpeft4j.lnTuningExport=DIR} when given, for {@code python scripts/fixtures_ln_tuning.py --check DIR}.
   */
  @Test
  void ourAdapterIsWrittenInHuggingFacesLayout(@TempDir Path temp) throws IOException {
    String export = System.getProperty("peft4j.lnTuningExport");
    Path dir = export == null ? temp : Files.createDirectories(Path.of(export));
    Map<String, INDArray> g = golden(Fixtures.dir("tiny-llama"), "input_ids", "attention_mask");
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    PeftModel model = Peft.lnTuning().target("input_layernorm", "post_attention_layernorm", "norm").apply(sd);
    Random random = new Random(23);
    for (String p : model.trainableParameters().names()) {
      INDArray a = sd.getArrForVarName(p);
      for (long i = 0; i < a.length(); i++) {
        a.putScalar(i, a.getDouble(i) + 0.3 * random.nextGaussian());
      }
    }
    Map<String, INDArray> inputs = Map.of(Llama.INPUT_IDS, g.get("input_ids"), Llama.ATTENTION_MASK,
        g.get("attention_mask"));
    INDArray logits = sd.output(inputs, Llama.LOGITS).get(Llama.LOGITS);
    model.save(dir);
    Map<String, INDArray> goldenOut = new LinkedHashMap<>(inputs);
    goldenOut.put("logits", logits);
    Safetensors.write(dir.resolve("golden.safetensors"), goldenOut, Map.of("format", "pt"));
    String config = Files.readString(dir.resolve("adapter_config.json"));
    assertTrue(config.contains("\"peft_type\": \"LN_TUNING\""), config);
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("adapter_model.safetensors"))) {
      assertEquals(java.util.Set.of("base_model.model.model.layers.0.input_layernorm.ln_tuning_layers.weight",
          "base_model.model.model.layers.0.post_attention_layernorm.ln_tuning_layers.weight",
          "base_model.model.model.layers.1.input_layernorm.ln_tuning_layers.weight",
          "base_model.model.model.layers.1.post_attention_layernorm.ln_tuning_layers.weight",
          "base_model.model.model.norm.ln_tuning_layers.weight"), java.util.Set.copyOf(f.names()));
    }
  }
}
