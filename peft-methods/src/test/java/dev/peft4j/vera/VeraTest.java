package dev.peft4j.vera;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import dev.peft4j.train.RandomOps;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * VeRA: the arithmetic against a direct computation, the projections against torch's, Hugging Face PEFT's files both
 * ways, and bad input. (Identity at init, training, merging, gradients against finite differences: the contract suite.)
 */
class VeraTest {

  private static final String SCOPE = "peft/default/vera/";

  static Stream<Arguments> randomConfigs() {
    long master = 20261130L;
    Random random = new Random(master);
    return Stream.generate(() -> {
      long seed = random.nextLong();
      Random r = new Random(seed);
      return Arguments.of(seed, 1 + r.nextInt(6));
    }).limit(6);
  }

  /** Every targeted layer: y' = y + b ⊙ ((d ⊙ (x·A[:, :in]ᵀ))·B[:out, :]ᵀ), with the shared A, B sliced per layer. */
  @ParameterizedTest(name = "seed={0} r={1}")
  @MethodSource("randomConfigs")
  void eachLayerAddsItsScaledSlicesOfTheSharedProjections(long seed, int r) {
    Random random = new Random(seed);
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    List<String> modules = List.of("layers.0.fc", "layers.1.fc", "head");
    List<LinearModule> before = modules.stream().map(GraphRewriter.of(sd)::linearModule).toList();
    Peft.vera(r).target("fc", "head").projectionSeed(seed).apply(sd);
    Batch batch = Graphs.batches(sd, seed, 1, 5).get(0);
    INDArray a = sd.getArrForVarName(SCOPE + "buffer/vera_A").transpose();              // [r, max_in]
    INDArray b = sd.getArrForVarName(SCOPE + "buffer/vera_B").transpose();              // [max_out, r]
    assertEquals(List.of((long) r, (long) ToyModels.MLP_HIDDEN), List.of(a.shape()[0], a.shape()[1]));
    assertEquals(List.of((long) ToyModels.MLP_HIDDEN, (long) r), List.of(b.shape()[0], b.shape()[1]));
    for (LinearModule m : before) {
      sd.getArrForVarName(SCOPE + m.name() + "/vera_lambda_d").assign(Mlp.uniform(random, 1, DataType.DOUBLE, r));
      sd.getArrForVarName(SCOPE + m.name() + "/vera_lambda_b")
          .assign(Mlp.uniform(random, 1, DataType.DOUBLE, m.outFeatures()));
    }
    for (LinearModule m : before) {   // the module's output name now holds the adapted output
      Map<String, INDArray> values = sd.output(batch.inputs(), m.input(), m.output());
      INDArray x = values.get(m.input());                                                 // [n, in]
      INDArray y = x.mmul(sd.getArrForVarName(m.weight())).addRowVector(sd.getArrForVarName(m.bias()));
      INDArray aM = a.get(NDArrayIndex.all(), NDArrayIndex.interval(0, m.inFeatures())); // [r, in]
      INDArray bM = b.get(NDArrayIndex.interval(0, m.outFeatures()), NDArrayIndex.all()); // [out, r]
      INDArray d = sd.getArrForVarName(SCOPE + m.name() + "/vera_lambda_d");
      INDArray lambdaB = sd.getArrForVarName(SCOPE + m.name() + "/vera_lambda_b");
      INDArray expected = y.add(x.mmul(aM.transpose()).mulRowVector(d).mmul(bM.transpose()).mulRowVector(lambdaB));
      double error = Graphs.relativeError(values.get(m.output()), expected);
      assertTrue(error < 1e-12, "seed " + seed + " " + m.name() + ": " + error);
    }
  }

  @Test
  void dropoutIsOffForInferenceAndFreshPerStepWhileTraining() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    PeftModel model = Peft.vera(4).dropout(0.5).target("head").apply(sd);
    sd.getArrForVarName(SCOPE + "head/vera_lambda_b").assign(1);
    Batch batch = Graphs.batches(sd, 1, 1, 64).get(0);
    INDArray inference = Graphs.logits(sd, batch);
    assertEquals(inference, Graphs.logits(sd, batch), "inference mode is deterministic");
    model.train();
    long[] seed = {1};
    try (var seeding = RandomOps.seed(sd, () -> seed[0])) {
      INDArray first = Graphs.logits(sd, batch);
      assertEquals(first, Graphs.logits(sd, batch), "same seed, same mask");
      seed[0] = 2;
      assertNotEquals(first, Graphs.logits(sd, batch), "a new seed draws a new mask");
      assertNotEquals(inference, first, "dropout acts while training");
    }
    model.eval();
    assertEquals(inference, Graphs.logits(sd, batch), "back in inference mode: no dropout");
  }

  @Test
  void initialisesDAtDInitialAndBAtZero() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    Peft.vera(4).target("q_proj", "down_proj").dInitial(0.25).apply(sd);
    for (String module : List.of("layers.0.self_attn.q_proj", "layers.1.mlp.down_proj")) {
      INDArray d = sd.getArrForVarName(SCOPE + module + "/vera_lambda_d");
      INDArray b = sd.getArrForVarName(SCOPE + module + "/vera_lambda_b");
      assertEquals(Nd4j.valueArrayOf(new long[] {4}, 0.25f), d);
      assertEquals(Nd4j.zeros(DataType.FLOAT, ToyModels.D), b);
      assertEquals(VariableType.CONSTANT, sd.getVariable(SCOPE + "buffer/vera_A").getVariableType());
    }
    // one pair for all: A [max_in = FFN, r] and B [r, max_out = D]
    assertEquals(List.of((long) ToyModels.FFN, 4L), List.of(sd.getArrForVarName(SCOPE + "buffer/vera_A").shape()[0],
        sd.getArrForVarName(SCOPE + "buffer/vera_A").shape()[1]));
  }

  /** Hugging Face draws A then B from torch.Generator().manual_seed(key); peft4j draws the very same floats. */
  @Test
  void projectionsFromASeedAreTorchsBitForBit() throws IOException {
    Map<String, INDArray> golden = golden("vera-tiny-llama");
    INDArray[] ab = Vera.projections(17, 8, 128, 64);
    assertEquals(golden.get("vera_A_from_seed"), ab[0]);
    assertEquals(golden.get("vera_B_from_seed"), ab[1]);
    INDArray[] other = Vera.projections(18, 8, 128, 64);
    assertNotEquals(ab[0], other[0]);
  }

  @Test
  void anAdapterSavedByHuggingFacePeftReproducesItsLogits() throws IOException {
    Path dir = Fixtures.dir("vera-tiny-llama");
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    PeftModel model = Peft.load(sd, dir);
    Map<String, INDArray> golden = golden("vera-tiny-llama");
    INDArray logits = sd.output(Map.of(Llama.INPUT_IDS, golden.get("input_ids"), Llama.ATTENTION_MASK,
        golden.get("attention_mask")), Llama.LOGITS).get(Llama.LOGITS);
    double max = Graphs.maxDiffOnRealTokens(logits, golden.get("logits"), golden.get("attention_mask"));
    System.out.println("vera-tiny-llama: max |Δlogits| vs Hugging Face PEFT = " + max);
    assertTrue(max <= 1e-4, "max |Δlogits| " + max);
    // 2 layers × (q 64 + v 32 + down 64 outputs + 3 × r 8)
    assertEquals(2L * (64 + 32 + 64 + 3 * 8), model.trainableParameters().count());
    assertEquals(VeraConfig.builder(8).target("down_proj", "q_proj", "v_proj").projectionSeed(17).build(),
        model.adapter(PeftModel.DEFAULT_ADAPTER).config());
  }

  /** A file saved with save_projection = false holds only the vectors: the projections come from the seed. */
  @Test
  void aFileWithoutProjectionsDrawsThemFromTheSeed(@TempDir Path dir) throws IOException {
    Path fixture = Fixtures.dir("vera-tiny-llama");
    JsonObject config = JsonParser.parseString(Files.readString(fixture.resolve(AdapterFiles.CONFIG)))
        .getAsJsonObject();
    config.addProperty("save_projection", false);
    Files.writeString(dir.resolve(AdapterFiles.CONFIG), config.toString());
    Map<String, INDArray> tensors = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(fixture.resolve(AdapterFiles.WEIGHTS))) {
      for (String n : f.names()) {
        if (!n.startsWith("base_model.vera_")) {
          tensors.put(n, f.read(n));
        }
      }
    }
    Safetensors.write(dir.resolve(AdapterFiles.WEIGHTS), tensors, Map.of("format", "pt"));
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    PeftModel model = Peft.load(sd, dir);
    Map<String, INDArray> golden = golden("vera-tiny-llama");
    INDArray logits = sd.output(Map.of(Llama.INPUT_IDS, golden.get("input_ids"), Llama.ATTENTION_MASK,
        golden.get("attention_mask")), Llama.LOGITS).get(Llama.LOGITS);
    double max = Graphs.maxDiffOnRealTokens(logits, golden.get("logits"), golden.get("attention_mask"));
    assertTrue(max <= 1e-4, "max |Δlogits| " + max);
    assertFalse(model.adapter(PeftModel.DEFAULT_ADAPTER).stateDict().containsKey(Vera.KEY_A));
  }

  /**
   * peft4j's file on tiny-llama, with the logits it gives, for {@code python scripts/fixtures_vera.py --check DIR}
   * (Hugging Face PEFT must load it and give the same logits). Written under target/vera-check.
   */
  @Test
  void writesAFileHuggingFaceLoads() throws IOException {
    Path dir = Paths.get("target", "vera-check");
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    PeftModel model = Peft.vera(4).target("k_proj", "o_proj", "up_proj").projectionSeed(5).apply(sd);
    Random random = new Random(99);
    for (String p : model.trainableParameters().names()) {
      INDArray a = sd.getArrForVarName(p);
      a.assign(Mlp.uniform(random, 0.5, a.dataType(), a.shape()).addi(0.1));
    }
    Map<String, INDArray> golden = golden("vera-tiny-llama");
    INDArray logits = sd.output(Map.of(Llama.INPUT_IDS, golden.get("input_ids"), Llama.ATTENTION_MASK,
        golden.get("attention_mask")), Llama.LOGITS).get(Llama.LOGITS);
    model.save(dir);
    Safetensors.write(dir.resolve("golden.safetensors"), Map.of("input_ids", golden.get("input_ids"),
        "attention_mask", golden.get("attention_mask"), "logits", logits), Map.of("format", "pt"));
    Map<String, INDArray> saved = new HashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(AdapterFiles.WEIGHTS))) {
      for (String n : f.names()) {
        saved.put(n, f.read(n));
      }
    }
    // k_proj 64 → 32, o_proj 64 → 64, up_proj 64 → 128: A [r, max_in = 64], B [max_out = 128, r], torch's values
    INDArray[] expected = Vera.projections(5, 4, 64, 128);
    assertTrue(expected[0].equals(saved.get("base_model.vera_A")), "vera_A: [r, max_in], torch's values");
    assertTrue(expected[1].equals(saved.get("base_model.vera_B")), "vera_B: [max_out, r], torch's values");
    assertEquals(List.of(32L), List.of(saved.get("base_model.model.model.layers.0.self_attn.k_proj.vera_lambda_b")
        .shape()[0]));
    assertEquals(2 + 2 * 3 * 2, saved.size(), "A, B and two vectors per adapted layer (2 layers × 3 modules)");
    JsonObject config = JsonParser.parseString(Files.readString(dir.resolve(AdapterFiles.CONFIG))).getAsJsonObject();
    assertEquals("VERA", config.get("peft_type").getAsString());
    assertEquals(5, config.get("projection_prng_key").getAsLong());
    assertTrue(config.get("save_projection").getAsBoolean());
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
    rejects(sd -> Peft.vera(0).target("q_proj").apply(sd), "r must be > 0, got 0");
    rejects(sd -> Peft.vera(-3).target("q_proj").apply(sd), "-3");
    rejects(sd -> Peft.vera(4).target("q_proj").dInitial(Double.NaN).apply(sd), "d_initial", "NaN");
    rejects(sd -> Peft.vera(4).target("query", "v_proj").apply(sd), "[query] not found",
        "layers.0.self_attn.q_proj", "lm_head");
    rejects(sd -> Peft.vera(4).target("norm").apply(sd), "not linear layers", "layers.0.norm");
    rejects(sd -> Peft.vera(4).apply(sd), "no target modules");
    rejects(sd -> Peft.vera(4).target("q_proj").dropout(1.0).apply(sd), "dropout must be in [0, 1), got 1.0");
  }

  @Test
  void hfConfigsPeft4jCannotHonourAreRefusedByField() {
    for (String[] c : new String[][] {{"fan_in_fan_out", "true"}, {"bias", "\"all\""}}) {
      JsonObject json = JsonParser.parseString("{\"peft_type\": \"VERA\", \"r\": 4, \"target_modules\": [\"q_proj\"], \""
          + c[0] + "\": " + c[1] + "}").getAsJsonObject();
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> VeraConfig.fromHf(json, new java.util.TreeSet<>()));
      assertTrue(e.getMessage().contains(c[0]), e.getMessage());
    }
  }
}
