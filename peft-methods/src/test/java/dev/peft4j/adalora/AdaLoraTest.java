package dev.peft4j.adalora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
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
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import dev.peft4j.train.Batch;
import dev.peft4j.train.GradientFunction;
import dev.peft4j.train.LearningRateSchedule;
import dev.peft4j.train.Trainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * AdaLoRA's arithmetic, its orthogonality term and gradients, HF's budget schedule, the masking, and files both ways
 * with Hugging Face PEFT 0.21 (scripts/fixtures_adalora.py).
 */
class AdaLoraTest {

  private static final String P = "peft/default/adalora/";

  private static AdaLora adapter(PeftModel model) {
    return (AdaLora) model.adapter(PeftModel.DEFAULT_ADAPTER);
  }

  private static void randomize(SameDiff sd, String variable, Random random, double scale) {
    INDArray a = sd.getArrForVarName(variable);
    for (long i = 0; i < a.length(); i++) {
      a.putScalar(i, scale * random.nextGaussian());
    }
  }

  /** ‖G − I‖_F. */
  private static double distanceFromIdentity(INDArray g) {
    return g.sub(Nd4j.eye(g.rows()).castTo(g.dataType())).norm2Number().doubleValue();
  }

  @Test
  void branchEqualsTheFormulaComputedByHand() {
    long seed = 31;
    System.out.println("seed " + seed);
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    LinearModule m = GraphRewriter.of(sd).linearModule("layers.1.fc");
    Batch batch = Graphs.batches(sd, seed, 1, 5).get(0);
    PeftModel model = Peft.adaLora(4, 2).alpha(6).totalStep(10).target("fc").apply(sd);
    Random random = new Random(seed);
    for (String v : model.trainableParameters().names()) {
      randomize(sd, v, random, 0.5);
    }
    String scope = P + m.name() + "/";
    INDArray a = sd.getArrForVarName(scope + "lora_A");  // [in, r]
    INDArray e = sd.getArrForVarName(scope + "lora_E");  // [1, r]
    INDArray b = sd.getArrForVarName(scope + "lora_B");  // [r, out]
    assertEquals(List.of(8L, 4L, 1L, 4L, 4L, 8L), List.of(a.size(0), a.size(1), e.size(0), e.size(1), b.size(0),
        b.size(1)));
    INDArray x = sd.output(batch.inputs(), m.input()).get(m.input());
    INDArray expected = x.mmul(sd.getArrForVarName(m.weight())).addRowVector(sd.getArrForVarName(m.bias()));
    double s = 6 / (4 + 1e-5);
    for (int i = 0; i < x.rows(); i++) {      // written out as a sum over triplets: Σ_k s · (x·A_k) · E_k · B_k
      for (int o = 0; o < 8; o++) {
        double delta = 0;
        for (int k = 0; k < 4; k++) {
          double xa = 0;
          for (int j = 0; j < 8; j++) {
            xa += x.getDouble(i, j) * a.getDouble(j, k);
          }
          delta += s * xa * e.getDouble(0, k) * b.getDouble(k, o);
        }
        expected.putScalar(i, o, expected.getDouble(i, o) + delta);
      }
    }
    INDArray actual = sd.output(batch.inputs(), m.output()).get(m.output());
    assertTrue(Graphs.relativeError(actual, expected) < 1e-12, "relative error " + Graphs.relativeError(actual,
        expected));
  }

  @Test
  void lossAddsHuggingFacesOrthogonalityTerm() {
    SameDiff sd = ToyModels.attention(DataType.DOUBLE);
    Batch batch = Graphs.batches(sd, 3, 1, 5).get(0);
    double baseLoss = sd.output(batch.inputs(), "loss").get("loss").getDouble(0);
    PeftModel model = Peft.adaLora(3, 1).orthRegWeight(0.7).totalStep(10).target("q_proj", "v_proj", "down_proj")
        .apply(sd);
    // E = 0 at init: the branch adds nothing, so the loss differs by the regulariser alone
    double sum = 0;
    List<String> modules = adapter(model).adaptedModules();
    for (String m : modules) {
      INDArray a = sd.getArrForVarName(P + m + "/lora_A");
      INDArray b = sd.getArrForVarName(P + m + "/lora_B");
      sum += distanceFromIdentity(a.transpose().mmul(a)) + distanceFromIdentity(b.mmul(b.transpose()));
    }
    double expected = 0.7 * sum / (2 * modules.size());
    assertEquals(6, modules.size());
    double adapted = sd.output(batch.inputs(), "loss").get("loss").getDouble(0);
    assertEquals(expected, adapted - baseLoss, 1e-12);
    try (var scope = model.disableAdapters()) {
      assertEquals(baseLoss, sd.output(batch.inputs(), "loss").get("loss").getDouble(0), 0.0,
          "disabled: the regulariser is out of the loss too");
    }
  }

  @Test
  void gradientsOfAEAndBIncludingTheOrthogonalityTermMatchFiniteDifferences() {
    long seed = 5;
    System.out.println("seed " + seed);
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    PeftModel model = Peft.adaLora(3, 2).orthRegWeight(2.0).alpha(4).totalStep(10).target("fc").apply(sd);
    List<String> params = model.trainableParameters().names();
    Random random = new Random(seed);
    for (String p : params) {
      randomize(sd, p, random, 0.4);
    }
    Batch batch = Graphs.batches(sd, seed, 1, 4).get(0);
    GradientFunction.prepare(sd);
    Map<String, INDArray> grads = sd.calculateGradients(batch.inputs(), params);
    int checked = Graphs.assertCentralDifferences(sd, batch.inputs(), "loss", grads, params, 1e-6, 1e-6);
    assertEquals(3 * (6 + 8 + 1) + 3 * (8 + 8 + 1), checked, "every entry of A, E and B of both layers");
  }

  @Test
  void budgetScheduleEqualsHuggingFaces() throws IOException {
    JsonArray schedules = JsonParser.parseString(Files.readString(Fixtures.dir("adalora-tiny-llama")
        .resolve("budgets.json"))).getAsJsonArray();
    for (JsonElement element : schedules) {
      JsonObject s = element.getAsJsonObject();
      SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
      PeftModel model = Peft.adaLora(s.get("init_r").getAsInt(), s.get("target_r").getAsInt())
          .totalStep(s.get("total_step").getAsInt()).tinit(s.get("tinit").getAsInt())
          .tfinal(s.get("tfinal").getAsInt()).deltaT(s.get("deltaT").getAsInt()).target("q_proj", "v_proj").apply(sd);
      JsonArray schedule = s.getAsJsonArray("schedule");
      for (int step = 0; step < schedule.size(); step++) {
        assertEquals(schedule.get(step).getAsJsonArray().get(0).getAsInt(), adapter(model).budgetAt(step),
            "budget at step " + step + " of " + s.get("total_step"));
      }
    }
  }

  /**
   * HF's RankAllocator driven by recorded gradients (scripts/fixtures_adalora.py): after every step the same singular
   * values are zeroed and the same rank pattern is recorded.
   */
  @Test
  void rankAllocationEqualsHuggingFacesStepByStep() throws IOException {
    Path fixture = Fixtures.dir("adalora-tiny-llama");
    JsonArray trace = JsonParser.parseString(Files.readString(fixture.resolve("allocator.json"))).getAsJsonArray();
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    PeftModel model = Peft.adaLora(6, 2).alpha(16).totalStep(12).tinit(2).tfinal(3).deltaT(2)
        .target("q_proj", "v_proj").apply(sd);
    AdaLora adapter = adapter(model);
    try (SafetensorsFile f = SafetensorsFile.open(fixture.resolve("allocator.safetensors"))) {
      Map<String, INDArray> start = new HashMap<>();
      for (String key : adapter.stateDict().keySet()) {
        start.put(key, f.read("start." + key));
      }
      adapter.loadStateDict(start);
      for (int step = 1; step <= 12; step++) {
        Map<String, INDArray> gradients = new HashMap<>();
        for (String m : adapter.adaptedModules()) {
          for (String p : List.of("lora_A", "lora_E", "lora_B")) {
            String key = (step < 9 ? "grad" + step : "start") + "." + m + "." + p; // no gradient is read after T
            gradients.put(P + m + "/" + p, f.read(key).transpose().dup('c'));
          }
        }
        adapter.afterStep(step, gradients);
        for (String m : adapter.adaptedModules()) {
          INDArray hf = f.read("E" + step + "." + m + ".lora_E").transpose();
          assertEquals(hf, sd.getArrForVarName(P + m + "/lora_E"), "singular values of " + m + " after step " + step);
        }
        JsonElement expected = trace.get(step - 1);
        Map<String, List<Boolean>> hfPattern = new LinkedHashMap<>();
        if (!expected.isJsonNull()) {
          expected.getAsJsonObject().entrySet().forEach(e -> hfPattern.put(e.getKey(),
              e.getValue().getAsJsonArray().asList().stream().map(JsonElement::getAsBoolean).toList()));
        }
        assertEquals(hfPattern, adapter.config().rankPattern(), "rank pattern after step " + step);
      }
    }
  }

  @Test
  void maskingFollowsTheBudgetAndKeepsTheTargetAfterTheFinalAllocation() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    int tinit = 4;
    int last = 30 - 8;
    PeftModel model = Peft.adaLora(4, 2).totalStep(30).tinit(tinit).tfinal(8).deltaT(3)
        .target("q_proj", "v_proj").apply(sd);
    AdaLora adapter = adapter(model);
    List<String> es = adapter.adaptedModules().stream().map(m -> P + m + "/lora_E").toList();
    List<Map<String, List<Boolean>>> patterns = new ArrayList<>();
    Trainer.builder(model).steps(30).learningRate(2e-2).schedule(LearningRateSchedule.CONSTANT).progress(null)
        .onStep((step, gradients) -> {
          long nonzero = es.stream().mapToLong(e -> sd.getArrForVarName(e).neq(0).castTo(DataType.INT).sumNumber()
              .longValue()).sum();
          int kept = adapter.ranks().values().stream().mapToInt(Integer::intValue).sum();
          boolean masks = step > tinit && (step % 3 == 0 || step >= last);
          if (step <= tinit) {
            assertEquals(16, kept, "no allocation before tinit, step " + step);
            assertEquals(Map.of(), adapter.config().rankPattern());
          } else if (masks) {
            assertEquals(adapter.budgetAt(step), kept, "kept triplets = budget at step " + step);
            assertEquals(kept, nonzero, "nonzero singular values = kept triplets at step " + step);
          }
          if (step >= last) {
            assertEquals(8, nonzero, "target budget 2 × 4 modules after the final allocation, step " + step);
            patterns.add(adapter.config().rankPattern());
          }
        }).build().fit(Graphs.batches(sd, 21, 3, 8));
    assertEquals(30 - last + 1, patterns.size());
    patterns.forEach(p -> assertEquals(patterns.get(0), p, "the pattern is fixed after total_step - tfinal"));
    assertEquals(8, patterns.get(0).values().stream().mapToLong(v -> v.stream().filter(x -> x).count()).sum());
    patterns.get(0).values().forEach(v -> assertEquals(4, v.size()));
  }

  @Test
  void anAllocatedAdapterSavesPrunedTensorsAndTheRankPatternAndLoadsBack(@TempDir Path dir) throws IOException {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.adaLora(4, 2).totalStep(12).tinit(2).tfinal(3).deltaT(2).target("q_proj", "v_proj")
        .apply(sd);
    Trainer.builder(model).steps(12).learningRate(2e-2).progress(null).build()
        .fit(Graphs.batches(sd, 22, 3, 8));
    AdaLora adapter = adapter(model);
    Map<String, Integer> ranks = adapter.ranks();
    assertEquals(8, ranks.values().stream().mapToInt(Integer::intValue).sum());
    Batch batch = Graphs.batches(sd, 23, 1, 6).get(0);
    INDArray trained = Graphs.logits(sd, batch);
    model.save(dir);

    JsonObject json = JsonParser.parseString(Files.readString(dir.resolve(AdapterFiles.CONFIG))).getAsJsonObject();
    assertEquals("ADALORA", json.get("peft_type").getAsString());
    JsonObject pattern = json.getAsJsonObject("rank_pattern");
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(AdapterFiles.WEIGHTS))) {
      for (String m : adapter.adaptedModules()) {
        long kept = pattern.getAsJsonArray(m + ".lora_E").asList().stream().filter(JsonElement::getAsBoolean).count();
        assertEquals(ranks.get(m).longValue(), kept, m);
        String key = AdapterFiles.PREFIX + m;
        assertEquals(List.of(kept, 8L), longs(f.info(key + ".lora_A").shape()), m + " lora_A [kept, in]");
        assertEquals(List.of(kept, 1L), longs(f.info(key + ".lora_E").shape()), m + " lora_E [kept, 1]");
        assertEquals(List.of(8L, kept), longs(f.info(key + ".lora_B").shape()), m + " lora_B [out, kept]");
      }
      assertEquals(12, f.names().size());
    }

    SameDiff fresh = ToyModels.attention(DataType.FLOAT);
    PeftModel loaded = Peft.load(fresh, dir);
    GraphRewriter.of(fresh).requireConsistentLinks();
    assertTrue(Graphs.relativeError(Graphs.logits(fresh, batch), trained) < 1e-6,
        "pruned then loaded: " + Graphs.relativeError(Graphs.logits(fresh, batch), trained));
    assertEquals(ranks, adapter(loaded).ranks());
    assertEquals(ranks.values().stream().mapToLong(r -> r * (8L + 8 + 1)).sum(), loaded.trainableParameters().count());
    assertEquals(adapter.config().toHfConfig(), loaded.adapter(PeftModel.DEFAULT_ADAPTER).config().toHfConfig());
    Path again = dir.resolve("again");
    loaded.save(again);
    assertEquals(Files.readString(dir.resolve(AdapterFiles.CONFIG)),
        Files.readString(again.resolve(AdapterFiles.CONFIG)), "saved again: the same config");
  }

  private static List<Long> longs(long[] shape) {
    return java.util.Arrays.stream(shape).boxed().toList();
  }

  private static Map<String, INDArray> llamaInputs(Path golden) throws IOException {
    Map<String, INDArray> inputs = new HashMap<>();
    try (SafetensorsFile g = SafetensorsFile.open(golden)) {
      inputs.put(Llama.INPUT_IDS, g.read("input_ids"));
      inputs.put(Llama.ATTENTION_MASK, g.read("attention_mask"));
    }
    return inputs;
  }

  @Test
  void anAdapterTrainedAndPrunedByHuggingFacePeftReproducesItsLogits(@TempDir Path dir) throws IOException {
    Path fixture = Fixtures.dir("adalora-tiny-llama");
    Map<String, INDArray> inputs = llamaInputs(fixture.resolve("golden.safetensors"));
    INDArray golden;
    try (SafetensorsFile g = SafetensorsFile.open(fixture.resolve("golden.safetensors"))) {
      golden = g.read("logits");
    }
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    PeftModel model = Peft.load(sd, fixture);
    INDArray logits = sd.output(inputs, Llama.LOGITS).get(Llama.LOGITS);
    double max = Graphs.maxDiffOnRealTokens(logits, golden, inputs.get(Llama.ATTENTION_MASK));
    System.out.println("HF PEFT's AdaLoRA in peft4j: max |Δlogits| " + max);
    assertTrue(max <= 1e-4, "max |Δlogits| " + max);
    Map<String, Integer> ranks = adapter(model).ranks();
    assertEquals(Map.of("model.layers.0.self_attn.q_proj", 2, "model.layers.0.self_attn.v_proj", 5,
        "model.layers.1.self_attn.q_proj", 0, "model.layers.1.self_attn.v_proj", 1), ranks,
        "the ranks of HF's rank_pattern (regenerate this test's numbers with the fixture)");
    assertEquals(2L * (64 + 64 + 1) + 5L * (64 + 32 + 1) + 1L * (64 + 32 + 1), model.trainableParameters().count());

    model.save(dir); // peft4j writes back exactly the tensors HF wrote
    Map<String, INDArray> hf = AdapterFiles.read(fixture).tensors();
    Map<String, INDArray> ours = AdapterFiles.read(dir).tensors();
    assertEquals(hf.keySet(), ours.keySet());
    hf.forEach((k, v) -> assertEquals(v, ours.get(k), k));
  }

  @Test
  void aPrunedAdapterWithARankZeroModuleMergesAndUnmergesExactly() throws IOException {
    Path fixture = Fixtures.dir("adalora-tiny-llama");
    Map<String, INDArray> inputs = llamaInputs(fixture.resolve("golden.safetensors"));
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    Map<String, INDArray> weights = new HashMap<>();
    for (String m : List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
        "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj")) {
      weights.put(m, sd.getArrForVarName(m + ".weight").dup());
    }
    PeftModel model = Peft.load(sd, fixture);
    INDArray unmerged = sd.output(inputs, Llama.LOGITS).get(Llama.LOGITS);
    AdaLora adapter = adapter(model);
    adapter.merge();
    GraphRewriter.of(sd).requireConsistentLinks();
    INDArray merged = sd.output(inputs, Llama.LOGITS).get(Llama.LOGITS);
    assertTrue(Graphs.relativeError(merged, unmerged) <= 1e-5, "merged vs unmerged " + Graphs.relativeError(merged,
        unmerged));
    assertEquals(weights.get("model.layers.1.self_attn.q_proj"),
        sd.getArrForVarName("model.layers.1.self_attn.q_proj.weight"), "a rank-0 module's weight is not touched");
    adapter.unmerge();
    weights.forEach((m, w) -> assertEquals(w, sd.getArrForVarName(m + ".weight"), m + " restored"));
    weights.forEach((m, w) -> assertEquals(0.0, w.sub(sd.getArrForVarName(m + ".weight")).amaxNumber().doubleValue(),
        0.0, m + " restored bit for bit"));
    assertEquals(unmerged, sd.output(inputs, Llama.LOGITS).get(Llama.LOGITS));
    SameDiff result = model.mergeAndUnload();
    assertTrue(Graphs.relativeError(result.output(inputs, Llama.LOGITS).get(Llama.LOGITS), unmerged) <= 1e-5);
    result.getVariables().keySet().forEach(n -> assertTrue(!n.startsWith("peft/"), "left over " + n));
  }

  /**
   * Trains AdaLoRA on tiny-llama in peft4j through the whole schedule and saves it with peft4j's logits as
   * {@code golden.safetensors}; {@code python scripts/fixtures_adalora.py --check DIR} loads it in HF PEFT. Run with
   * {@code -Dpeft4j.adaloraCheckDir=DIR} to keep the directory.
   */
  @Test
  void aPeft4jTrainedAdapterIsWrittenInHuggingFacesLayout(@TempDir Path temp) throws IOException {
    String keep = System.getProperty("peft4j.adaloraCheckDir");
    Path dir = keep == null ? temp : Path.of(keep);
    Path fixture = Fixtures.dir("adalora-tiny-llama");
    Map<String, INDArray> inputs = llamaInputs(fixture.resolve("golden.safetensors"));
    Map<String, INDArray> train = new HashMap<>(inputs);
    try (SafetensorsFile g = SafetensorsFile.open(Fixtures.dir("tiny-llama").resolve("golden.safetensors"))) {
      train.put(Llama.LABELS, g.read("loss_labels"));
    }
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    PeftModel model = Peft.adaLora(6, 2).alpha(16).totalStep(12).tinit(2).tfinal(3).deltaT(2)
        .target("q_proj", "v_proj").apply(sd);
    Trainer.builder(model).steps(12).learningRate(2e-2).progress(null).build()
        .fit(List.of(new Batch(train, 1)));
    INDArray logits = sd.output(inputs, Llama.LOGITS).get(Llama.LOGITS);
    model.save(dir);
    Map<String, INDArray> renamed = new LinkedHashMap<>();
    renamed.put("input_ids", inputs.get(Llama.INPUT_IDS));
    renamed.put("attention_mask", inputs.get(Llama.ATTENTION_MASK));
    renamed.put("logits", logits);
    Safetensors.write(dir.resolve("golden.safetensors"), renamed, Map.of("format", "pt"));

    JsonObject pattern = JsonParser.parseString(Files.readString(dir.resolve(AdapterFiles.CONFIG))).getAsJsonObject()
        .getAsJsonObject("rank_pattern");
    assertEquals(8, pattern.entrySet().stream().mapToLong(e -> e.getValue().getAsJsonArray().asList().stream()
        .filter(JsonElement::getAsBoolean).count()).sum(), "target_r 2 × 4 modules");
    SameDiff fresh = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    Peft.load(fresh, dir);
    INDArray reloaded = fresh.output(inputs, Llama.LOGITS).get(Llama.LOGITS);
    double max = Graphs.maxDiffOnRealTokens(reloaded, logits, inputs.get(Llama.ATTENTION_MASK));
    assertTrue(max <= 1e-5, "saved then loaded in peft4j: max |Δlogits| " + max);
  }
}
