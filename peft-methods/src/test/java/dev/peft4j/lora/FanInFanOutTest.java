package dev.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.ia3.Ia3Config;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.io.Safetensors;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Gpt2;
import dev.peft4j.model.HfModels;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Hugging Face PEFT's {@code fan_in_fan_out} on GPT-2's {@code Conv1D} layers (weights stored {@code [in, out]}):
 * an adapter saved by PEFT 0.21 ({@code lora-tiny-gpt2}, scripts/make_adapter_fixtures.py) reproduces its logits and
 * merges to the same; peft4j's adapters on Conv1D targets say {@code fan_in_fan_out: true}; the flag on
 * {@code nn.Linear} targets is refused, naming both shapes.
 */
class FanInFanOutTest {

  private static Map<String, INDArray> golden(String fixture) throws IOException {
    Map<String, INDArray> out = new HashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(Fixtures.dir(fixture).resolve("golden.safetensors"))) {
      for (String n : f.names()) {
        out.put(n, f.read(n));
      }
    }
    return out;
  }

  private static INDArray logits(SameDiff sd, Map<String, INDArray> g) {
    return sd.output(Map.of(Gpt2.INPUT_IDS, g.get("input_ids"), Gpt2.ATTENTION_MASK, g.get("attention_mask")),
        Gpt2.LOGITS).get(Gpt2.LOGITS);
  }

  @Test
  void gpt2LoraSavedByHuggingFaceReproducesItsLogitsAndMergesToTheSame() throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-gpt2")).sameDiff();
    PeftModel model = Peft.load(sd, Fixtures.dir("lora-tiny-gpt2"));
    Lora lora = (Lora) model.adapter(PeftModel.DEFAULT_ADAPTER);
    assertTrue(lora.config().fanInFanOut());
    Map<String, INDArray> g = golden("lora-tiny-gpt2");
    INDArray unmerged = logits(sd, g);
    double diff = Graphs.maxDiffOnRealTokens(unmerged, g.get("logits"), g.get("attention_mask"));
    assertTrue(diff <= 1e-4, "logits differ from PEFT's by " + diff);

    lora.merge(); // W [in, out] += s·(B·A)ᵀ, as PEFT's merge on a Conv1D weight
    INDArray merged = logits(sd, g);
    double mergedDiff = merged.sub(unmerged).amaxNumber().doubleValue();
    assertTrue(mergedDiff <= 1e-5, "merged differs from unmerged by " + mergedDiff);
    double hfMerged = Graphs.maxDiffOnRealTokens(merged, g.get("merged_logits"), g.get("attention_mask"));
    assertTrue(hfMerged <= 1e-4, "merged differs from PEFT's merge_and_unload by " + hfMerged);
  }

  /**
   * peft4j's GPT-2 adapter, targeted at {@code c_attn} without the flag (as Hugging Face, applying sets it), with the
   * logits it gives, for {@code python scripts/make_adapter_fixtures.py --check DIR --base tiny-gpt2}. Written under
   * target/gpt2-lora-check.
   */
  @Test
  void peft4jGpt2AdapterSaysFanInFanOutAndWritesAFileHuggingFaceLoads() throws IOException {
    Path dir = Paths.get("target", "gpt2-lora-check");
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-gpt2")).sameDiff();
    PeftModel model = Peft.lora(4).alpha(8).target("c_attn").apply(sd);
    LoraConfig applied = (LoraConfig) model.adapter(PeftModel.DEFAULT_ADAPTER).config();
    assertTrue(applied.fanInFanOut(), "applying to Conv1D targets sets fan_in_fan_out, as Hugging Face does");
    Random random = new Random(3);
    for (String p : model.trainableParameters().names()) {
      INDArray a = sd.getArrForVarName(p);
      a.assign(Nd4j.rand(random.nextLong(), a.shape()).subi(0.5).muli(0.6).castTo(a.dataType()));
    }
    Map<String, INDArray> g = golden("tiny-gpt2");
    INDArray logits = logits(sd, g);
    assertTrue(logits.sub(g.get("logits")).amaxNumber().doubleValue() > 0.1, "the adapter moves the logits");
    model.save(dir);
    Safetensors.write(dir.resolve("golden.safetensors"), Map.of("input_ids", g.get("input_ids"), "attention_mask",
        g.get("attention_mask"), "logits", logits), Map.of("format", "pt"));
    JsonObject config = JsonParser.parseString(Files.readString(dir.resolve(AdapterFiles.CONFIG))).getAsJsonObject();
    assertTrue(config.get("fan_in_fan_out").getAsBoolean());
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(AdapterFiles.WEIGHTS))) {
      assertEquals("[4, 32]", java.util.Arrays.toString(
          f.info("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight").shape()), "lora_A [r, in]");
      assertEquals("[96, 4]", java.util.Arrays.toString(
          f.info("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight").shape()), "lora_B [out, r]");
    }
    // and it loads back into peft4j with the same logits
    SameDiff again = HfModels.load(Fixtures.dir("tiny-gpt2")).sameDiff();
    Peft.load(again, dir);
    assertTrue(logits(again, g).equalsWithEps(logits, 1e-6));
  }

  @Test
  void ia3OnConv1dTargetsSaysFanInFanOut(@TempDir Path dir) throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-gpt2")).sameDiff();
    PeftModel model = Peft.ia3().target("c_attn", "c_fc").apply(sd);
    assertTrue(((Ia3Config) model.adapter(PeftModel.DEFAULT_ADAPTER).config()).fanInFanOut());
    model.save(dir);
    assertTrue(JsonParser.parseString(Files.readString(dir.resolve(AdapterFiles.CONFIG))).getAsJsonObject()
        .get("fan_in_fan_out").getAsBoolean());
  }

  @Test
  void fanInFanOutOnLinearTargetsIsRefusedNamingBothShapes() throws IOException {
    SameDiff bert = HfModels.load(Fixtures.dir("tiny-bert")).sameDiff();
    Map<String, INDArray> before = Graphs.parameters(bert);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Peft.lora(4).fanInFanOut().target("intermediate.dense").apply(bert));
    for (String fragment : List.of("fan_in_fan_out=true", "encoder.layer.0.intermediate.dense",
        "[in, out] = [32, 64]", "[out, in] = [64, 32]", "nn.Linear")) {
      assertTrue(e.getMessage().contains(fragment), "'" + e.getMessage() + "' should mention '" + fragment + "'");
    }
    assertEquals(before, Graphs.parameters(bert), "the model is unchanged");
    assertFalse(bert.variableMap().keySet().stream().anyMatch(n -> n.startsWith("peft/")));
    assertEquals(List.of(), GraphRewriter.of(bert).checkLinks());
    assertThrows(IllegalArgumentException.class,
        () -> Peft.ia3().fanInFanOut().target("query").apply(HfModels.load(Fixtures.dir("tiny-bert")).sameDiff()));
  }
}
