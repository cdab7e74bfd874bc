package dev.peft4j.fourierft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.io.Safetensors;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.model.Mlp;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.Refusals;
import dev.peft4j.testing.ToyModels;
import dev.peft4j.train.Batch;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * FourierFT: the update against the inverse DFT written out directly, the frequencies against torch's, Hugging Face
 * PEFT's files both ways, and bad input. (Training, merging, gradients against finite differences: the contract
 * suite.)
 */
class FourierFtTest {

  private static final String SCOPE = "peft/default/fourierft/";

  static Stream<Arguments> randomConfigs() {
    long master = 20261130L;
    Random random = new Random(master);
    return Stream.generate(() -> {
      long seed = random.nextLong();
      Random r = new Random(seed);
      return Arguments.of(seed, 1 + r.nextInt(20), 0.5 + 200 * r.nextDouble());
    }).limit(6);
  }

  /** ΔW[u, v] = s/(out·in) · Σ_k c_k cos(2π(p_k u/out + q_k v/in)), for every target, with a random spectrum. */
  @ParameterizedTest(name = "seed={0} n={1} scaling={2}")
  @MethodSource("randomConfigs")
  void eachLayerAddsTheRealInverseDftOfItsSpectrum(long seed, int n, double scaling) {
    Random random = new Random(seed);
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    List<LinearModule> before = Stream.of("layers.0.fc", "layers.1.fc", "head")
        .map(GraphRewriter.of(sd)::linearModule).toList();
    Peft.fourierFt(n).scaling(scaling).randomLocSeed(seed).target("fc", "head").apply(sd);
    Batch batch = Graphs.batches(sd, seed, 1, 5).get(0);
    for (LinearModule m : before) {
      sd.getArrForVarName(SCOPE + m.name() + "/fourierft_spectrum").assign(Mlp.uniform(random, 1, DataType.DOUBLE,
          n));
    }
    for (LinearModule m : before) {   // the module's output name now holds the adapted output
      long in = m.inFeatures();
      long out = m.outFeatures();
      long[][] pq = FourierFt.indices(out, in, n, seed);
      INDArray c = sd.getArrForVarName(SCOPE + m.name() + "/fourierft_spectrum");
      INDArray deltaW = Nd4j.zeros(DataType.DOUBLE, out, in);                             // HF's [out, in]
      for (int u = 0; u < out; u++) {
        for (int v = 0; v < in; v++) {
          double sum = 0;
          for (int k = 0; k < n; k++) {
            sum += c.getDouble(k) * Math.cos(2 * Math.PI * ((double) pq[0][k] * u / out + (double) pq[1][k] * v / in));
          }
          deltaW.putScalar(u, v, scaling / (out * in) * sum);
        }
      }
      Map<String, INDArray> values = sd.output(batch.inputs(), m.input(), m.output());
      INDArray x = values.get(m.input());                                                 // [batch, in]
      INDArray expected = x.mmul(sd.getArrForVarName(m.weight())).addRowVector(sd.getArrForVarName(m.bias()))
          .add(x.mmul(deltaW.transpose()));
      double error = Graphs.relativeError(values.get(m.output()), expected);
      assertTrue(error < 1e-10, "seed " + seed + " " + m.name() + ": " + error);
    }
  }

  /** Hugging Face picks the frequencies with torch's randperm; peft4j picks the very same ones. */
  @Test
  void frequenciesAreTorchsBitForBit() throws IOException {
    Map<String, INDArray> golden = golden("fourierft-tiny-llama");
    int checked = 0;
    for (String key : golden.keySet()) {
      if (key.startsWith("indices.")) {
        INDArray expected = golden.get(key);                                             // [2, 40]
        long out = key.endsWith("v_proj") ? 32 : 64;
        long[][] ours = FourierFt.indices(out, 64, 40, 123);
        assertArrayEquals(expected.getRow(0).toLongVector(), ours[0], key + " rows");
        assertArrayEquals(expected.getRow(1).toLongVector(), ours[1], key + " columns");
        checked++;
      }
    }
    assertEquals(4, checked);
  }

  @Test
  void anAdapterSavedByHuggingFacePeftReproducesItsLogits() throws IOException {
    Path dir = Fixtures.dir("fourierft-tiny-llama");
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    PeftModel model = Peft.load(sd, dir);
    Map<String, INDArray> golden = golden("fourierft-tiny-llama");
    INDArray logits = sd.output(Map.of(Llama.INPUT_IDS, golden.get("input_ids"), Llama.ATTENTION_MASK,
        golden.get("attention_mask")), Llama.LOGITS).get(Llama.LOGITS);
    double max = Graphs.maxDiffOnRealTokens(logits, golden.get("logits"), golden.get("attention_mask"));
    System.out.println("fourierft-tiny-llama: max |Δlogits| vs Hugging Face PEFT = " + max);
    assertTrue(max <= 1e-4, "max |Δlogits| " + max);
    assertEquals(2L * 2 * 40, model.trainableParameters().count(), "n = 40 × (q, v) × 2 layers");
    assertEquals(FourierFtConfig.builder(40).scaling(150).randomLocSeed(123).target("q_proj", "v_proj").build(),
        model.adapter(PeftModel.DEFAULT_ADAPTER).config());
  }

  @Test
  void startsRandomAsHuggingFaceOrAtZero() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    Batch batch = Graphs.batches(sd, 1, 1, 4).get(0);
    INDArray base = Graphs.logits(sd, batch);
    Peft.fourierFt(5).target("head").seed(9).apply(sd);
    INDArray spectrum = sd.getArrForVarName(SCOPE + "head/fourierft_spectrum");
    assertTrue(spectrum.amaxNumber().doubleValue() > 0.1, "N(0, 1) draws: " + spectrum);
    assertNotEquals(base, Graphs.logits(sd, batch), "a random spectrum moves the output");

    SameDiff again = ToyModels.mlp(DataType.FLOAT);
    Peft.fourierFt(5).target("head").seed(9).apply(again);
    assertEquals(spectrum, again.getArrForVarName(SCOPE + "head/fourierft_spectrum"), "same seed, same spectrum");

    SameDiff zero = ToyModels.mlp(DataType.FLOAT);
    Peft.fourierFt(5).target("head").zeroInit().apply(zero);
    assertEquals(base, Graphs.logits(zero, batch), "zeroInit starts at the base output");
    assertEquals(VariableType.CONSTANT,
        zero.getVariable(SCOPE + "buffer/3x8/basis_in").getVariableType(), "the bases are frozen buffers");
  }

  /**
   * peft4j's file on tiny-llama, with the logits it gives, for {@code python scripts/fixtures_vera.py --check DIR}
   * (Hugging Face PEFT must load it and give the same logits). Written under target/fourierft-check.
   */
  @Test
  void writesAFileHuggingFaceLoads() throws IOException {
    Path dir = Paths.get("target", "fourierft-check");
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    PeftModel model = Peft.fourierFt(30).scaling(100).randomLocSeed(2024).target("k_proj", "o_proj", "up_proj")
        .seed(3).apply(sd);
    Map<String, INDArray> golden = golden("fourierft-tiny-llama");
    INDArray logits = sd.output(Map.of(Llama.INPUT_IDS, golden.get("input_ids"), Llama.ATTENTION_MASK,
        golden.get("attention_mask")), Llama.LOGITS).get(Llama.LOGITS);
    model.save(dir);
    Safetensors.write(dir.resolve("golden.safetensors"), Map.of("input_ids", golden.get("input_ids"),
        "attention_mask", golden.get("attention_mask"), "logits", logits), Map.of("format", "pt"));
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(AdapterFiles.WEIGHTS))) {
      assertEquals(6, f.names().size(), "one spectrum per adapted layer (2 layers × 3 modules)");
      assertEquals(List.of(30L), List.of(f.read("base_model.model.model.layers.1.mlp.up_proj.fourierft_spectrum")
          .shape()[0]));
    }
    JsonObject config = JsonParser.parseString(Files.readString(dir.resolve(AdapterFiles.CONFIG))).getAsJsonObject();
    assertEquals("FOURIERFT", config.get("peft_type").getAsString());
    assertEquals(2024, config.get("random_loc_seed").getAsLong());
    assertEquals(30, config.get("n_frequency").getAsInt());
  }

  private static Map<String, INDArray> golden(String fixture) throws IOException {
    Map<String, INDArray> out = new HashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(Fixtures.dir(fixture).resolve("golden.safetensors"))) {
      for (String n : f.names()) {
        out.put(n, f.read(n));
      }
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------------ bad input

  private static void rejects(Consumer<SameDiff> action, String... fragments) {
    Refusals.assertRefusedUnchanged(ToyModels::attention, IllegalArgumentException.class, action, fragments);
  }

  @Test
  void badInputIsRefusedByNameAndLeavesTheGraphAsItWas() {
    // lm_head is D × CLASSES = 8 × 3 = 24 cells; q_proj has 64
    rejects(sd -> Peft.fourierFt(25).target("q_proj", "lm_head").apply(sd), "n_frequency 25 exceeds",
        "8·3 = 24", "'lm_head'");
    rejects(sd -> Peft.fourierFt(0).target("q_proj").apply(sd), "n_frequency must be > 0, got 0");
    rejects(sd -> Peft.fourierFt(-2).target("q_proj").apply(sd), "-2");
    rejects(sd -> Peft.fourierFt(4).scaling(0).target("q_proj").apply(sd), "scaling", "0.0");
    rejects(sd -> Peft.fourierFt(4).target("query", "v_proj").apply(sd), "[query] not found",
        "layers.0.self_attn.q_proj", "lm_head");
    rejects(sd -> Peft.fourierFt(4).target("norm").apply(sd), "not linear layers", "layers.0.norm");
  }

  @Test
  void hfConfigsPeft4jCannotHonourAreRefusedByField() {
    for (String[] c : new String[][] {{"alpha", "0.1"}, {"ifft2_norm", "\"ortho\""}, {"fan_in_fan_out", "true"},
        {"n_frequency_pattern", "{\"q_proj\": 10}"}, {"bias", "\"all\""}}) {
      JsonObject json = JsonParser.parseString("{\"peft_type\": \"FOURIERFT\", \"n_frequency\": 4, "
          + "\"target_modules\": [\"q_proj\"], \"" + c[0] + "\": " + c[1] + "}").getAsJsonObject();
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> FourierFtConfig.fromHf(json, new TreeSet<>()));
      assertTrue(e.getMessage().contains(c[0]), e.getMessage());
    }
  }
}
