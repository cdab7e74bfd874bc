package dev.peft4j.bottleneck;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.PeftModel;
import dev.peft4j.bottleneck.BottleneckConfig.NonLinearity;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.model.Mlp;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import dev.peft4j.train.Batch;
import dev.peft4j.train.RandomOps;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.apache.commons.math3.special.Erf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Bottleneck adapters: the arithmetic against a direct computation, where they go in each architecture, dropout, and
 * the saved layout. (Identity at init, training, counts, gradients, save/load: the contract suite.)
 */
class BottleneckTest {

  private static final String SCOPE = "peft/default/bottleneck/head/";

  /** Randomized over seed, width and nonlinearity; each case prints its seed in its name. */
  static Stream<Arguments> randomConfigs() {
    Random random = new Random(20261123L);
    return Stream.generate(() -> {
      long seed = random.nextLong();
      Random r = new Random(seed);
      return Arguments.of(seed, 1 + r.nextInt(6), NonLinearity.values()[r.nextInt(NonLinearity.values().length)]);
    }).limit(8);
  }

  @ParameterizedTest(name = "seed={0} b={1} {2}")
  @MethodSource("randomConfigs")
  void outputIsBasePlusUpOfActivatedDown(long seed, int b, NonLinearity f) {
    Random random = new Random(seed);
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    Batch batch = Graphs.batches(sd, seed, 1, 5).get(0);
    Peft.bottleneck(b).afterFfnOnly().ffnOutput("head").nonLinearity(f).seed(seed).apply(sd);
    int h = ToyModels.CLASSES;
    double[][] down = fill(sd, SCOPE + "adapter_down", random, h, b);     // [H, b]
    double[][] downBias = fill(sd, SCOPE + "adapter_down_bias", random, 1, b);
    double[][] up = fill(sd, SCOPE + "adapter_up", random, b, h);         // [b, H]
    double[][] upBias = fill(sd, SCOPE + "adapter_up_bias", random, 1, h);

    String hidden = GraphRewriter.of(sd).linearModule("head").input();
    Map<String, INDArray> out = sd.output(batch.inputs(), hidden, Mlp.LOGITS);
    double[][] x = out.get(hidden).toDoubleMatrix();                                 // [n, hidden]
    double[][] w = sd.getArrForVarName("head.weight").toDoubleMatrix();              // [hidden, H]
    double[] bias = sd.getArrForVarName("head.bias").toDoubleVector();               // [H]
    double[][] logits = out.get(Mlp.LOGITS).toDoubleMatrix();
    for (int row = 0; row < x.length; row++) {
      double[] y = new double[h];
      for (int j = 0; j < h; j++) {
        y[j] = bias[j];
        for (int k = 0; k < w.length; k++) {
          y[j] += x[row][k] * w[k][j];
        }
      }
      double[] a = new double[b];
      for (int i = 0; i < b; i++) {
        double z = downBias[0][i];
        for (int j = 0; j < h; j++) {
          z += y[j] * down[j][i];
        }
        a[i] = activate(f, z);
      }
      for (int j = 0; j < h; j++) {
        double expected = y[j] + upBias[0][j];
        for (int i = 0; i < b; i++) {
          expected += a[i] * up[i][j];
        }
        assertEquals(expected, logits[row][j], 1e-12 * Math.max(1, Math.abs(expected)),
            "seed " + seed + ", row " + row + ", column " + j);
      }
    }
  }

  /** Fills the variable with uniform values in ±1 and returns them as {@code [rows, columns]}. */
  private static double[][] fill(SameDiff sd, String variable, Random random, int rows, int columns) {
    INDArray values = Mlp.uniform(random, 1, DataType.DOUBLE, rows, columns);
    INDArray array = sd.getArrForVarName(variable);
    array.assign(values.reshape(array.shape()));
    return values.toDoubleMatrix();
  }

  private static double activate(NonLinearity f, double z) {
    return switch (f) {
      case RELU -> Math.max(0, z);
      case GELU -> 0.5 * z * (1 + Erf.erf(z / Math.sqrt(2)));
      case SILU -> z / (1 + Math.exp(-z));
      case TANH -> Math.tanh(z);
    };
  }

  @Test
  void initialisesDownUniformAndEverythingElseZero() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    Peft.bottleneck(4).apply(sd);
    String scope = "peft/default/bottleneck/layers.1.mlp.down_proj/";
    INDArray down = sd.getArrForVarName(scope + "adapter_down");
    assertArrayEquals(new long[] {ToyModels.D, 4}, down.shape());
    double bound = 1 / Math.sqrt(ToyModels.D);
    assertTrue(down.amaxNumber().doubleValue() <= bound && down.amaxNumber().doubleValue() > 0.5 * bound);
    for (String zero : List.of("adapter_down_bias", "adapter_up", "adapter_up_bias")) {
      assertEquals(0.0, sd.getArrForVarName(scope + zero).amaxNumber().doubleValue(), 0.0, zero);
    }
  }

  @Test
  void houlsbyGoesAfterAttentionAndFeedForwardPfeifferAfterFeedForwardOnly() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel houlsby = Peft.bottleneck(2).apply(sd);
    assertEquals(List.of("layers.0.self_attn.o_proj", "layers.0.mlp.down_proj", "layers.1.self_attn.o_proj",
        "layers.1.mlp.down_proj"), ((Bottleneck) houlsby.adapter("default")).adaptedModules());
    houlsby.unload();
    PeftModel pfeiffer = Peft.bottleneck(2).afterFfnOnly().apply(sd);
    assertEquals(List.of("layers.0.mlp.down_proj", "layers.1.mlp.down_proj"),
        ((Bottleneck) pfeiffer.adapter("default")).adaptedModules());
  }

  @Test
  void bertOutputDenseDoesNotTakeTheAttentionOutput() throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-bert")).sameDiff();
    PeftModel houlsby = Peft.bottleneck(2).apply(sd);
    List<String> modules = ((Bottleneck) houlsby.adapter("default")).adaptedModules();
    assertEquals(List.of("encoder.layer.0.attention.output.dense", "encoder.layer.0.output.dense",
        "encoder.layer.1.attention.output.dense", "encoder.layer.1.output.dense"), modules.subList(0, 4));
    houlsby.unload();
    PeftModel pfeiffer = Peft.bottleneck(2).afterFfnOnly().apply(sd);
    List<String> ffn = ((Bottleneck) pfeiffer.adapter("default")).adaptedModules();
    assertTrue(ffn.stream().allMatch(m -> m.matches("encoder\\.layer\\.\\d+\\.output\\.dense")), ffn.toString());
    assertEquals(modules.size() / 2, ffn.size());
  }

  @Test
  void onTheLlamaDecoderIdentityAtInitThenTrains() throws IOException {
    Path fixture = Fixtures.dir("tiny-llama");
    SameDiff sd = HfModels.load(fixture).sameDiff();
    Map<String, INDArray> inputs = new HashMap<>();
    try (SafetensorsFile g = SafetensorsFile.open(fixture.resolve("golden.safetensors"))) {
      inputs.put(Llama.INPUT_IDS, g.read("input_ids"));
      inputs.put(Llama.ATTENTION_MASK, g.read("attention_mask"));
      inputs.put(Llama.LABELS, g.read("loss_labels"));
    }
    INDArray base = sd.output(inputs, Llama.LOGITS).get(Llama.LOGITS);
    PeftModel model = Peft.bottleneck(8).nonLinearity(NonLinearity.SILU).apply(sd);
    assertEquals(List.of("model.layers.0.self_attn.o_proj", "model.layers.0.mlp.down_proj",
        "model.layers.1.self_attn.o_proj", "model.layers.1.mlp.down_proj"),
        ((Bottleneck) model.adapter("default")).adaptedModules());
    assertEquals(4L * (2 * 64 * 8 + 8 + 64), model.trainableParameters().count(), "4 adapters on H = 64");
    assertEquals(base, sd.output(inputs, Llama.LOGITS).get(Llama.LOGITS), "identity at init");
    Batch batch = new Batch(inputs, inputs.get(Llama.ATTENTION_MASK).sumNumber().longValue());
    TrainingHistory h = Trainer.builder(model).steps(15).learningRate(1e-2).progress(null).build()
        .fit(List.of(batch));
    assertTrue(h.meanLossOfLast(3) < h.meanLossOfFirst(3) * 0.9, h.meanLossOfFirst(3) + " → " + h.meanLossOfLast(3));
    assertEquals(base, model.unload().output(inputs, Llama.LOGITS).get(Llama.LOGITS), "unload gives the base back");
  }

  @Test
  void dropoutActsOnlyWhileTrainingAndIsFreshPerSeed() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.bottleneck(8).afterFfnOnly().dropout(0.5).apply(sd);
    sd.getArrForVarName("peft/default/bottleneck/layers.1.mlp.down_proj/adapter_up").assign(0.5);
    Batch batch = Graphs.batches(sd, 1, 1, 16).get(0);
    INDArray inference = Graphs.logits(sd, batch);
    model.train();
    long[] seed = {1};
    try (var seeding = RandomOps.seed(sd, () -> seed[0])) {
      INDArray first = Graphs.logits(sd, batch);
      assertEquals(first, Graphs.logits(sd, batch), "same seed, same mask");
      assertNotEquals(inference, first, "dropout acts while training");
      seed[0] = 2;
      assertNotEquals(first, Graphs.logits(sd, batch), "a new seed draws a new mask");
    }
    model.eval();
    assertEquals(inference, Graphs.logits(sd, batch), "inference mode: no dropout");
  }

  @Test
  void savesNnLinearLayoutAndItsOwnPeftType(@TempDir Path dir) throws IOException {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.bottleneck(3).afterFfnOnly().nonLinearity(NonLinearity.GELU).dropout(0.1).apply(sd);
    String module = "layers.0.mlp.down_proj";
    String scope = "peft/default/bottleneck/" + module + "/";
    sd.getArrForVarName(scope + "adapter_up").assign(Mlp.uniform(new Random(3), 1, DataType.FLOAT, 3, ToyModels.D));
    model.save(dir);
    Map<String, INDArray> saved = new HashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(AdapterFiles.WEIGHTS))) {
      for (String name : f.names()) {
        saved.put(name, f.read(name));
      }
    }
    assertEquals(8, saved.size(), "4 tensors × 2 layers");
    String key = AdapterFiles.PREFIX + module;
    assertEquals(sd.getArrForVarName(scope + "adapter_down").transpose(), saved.get(key + ".adapter_down.weight"));
    assertArrayEquals(new long[] {3, ToyModels.D}, saved.get(key + ".adapter_down.weight").shape(), "[b, H]");
    assertArrayEquals(new long[] {3}, saved.get(key + ".adapter_down.bias").shape());
    assertEquals(sd.getArrForVarName(scope + "adapter_up").transpose(), saved.get(key + ".adapter_up.weight"));
    assertArrayEquals(new long[] {ToyModels.D, 3}, saved.get(key + ".adapter_up.weight").shape(), "[H, b]");
    assertArrayEquals(new long[] {ToyModels.D}, saved.get(key + ".adapter_up.bias").shape());
    JsonObject config = JsonParser.parseString(Files.readString(dir.resolve(AdapterFiles.CONFIG))).getAsJsonObject();
    assertEquals("BOTTLENECK", config.get("peft_type").getAsString());
    assertEquals(3, config.get("bottleneck_size").getAsInt());
    assertEquals("pfeiffer", config.get("placement").getAsString());
    assertEquals("gelu", config.get("non_linearity").getAsString());
    assertEquals(0.1, config.get("adapter_dropout").getAsDouble());
    assertTrue(config.get("ffn_output_modules").isJsonNull(), "the defaults are written as null");
  }
}
