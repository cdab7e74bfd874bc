package dev.peft4j.prefix;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.io.Safetensors;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Hooks;
import dev.peft4j.model.Llama;
import dev.peft4j.prompt.PromptFixtures;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.ToyModels;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Prefix tuning against Hugging Face PEFT 0.21 (scripts/fixtures_prompt.py): tiny-llama (grouped-query attention,
 * RoPE), tiny-bert (absolute positions), and a prefix trained through the projection and saved folded; peft4j's saved
 * prefix for PEFT; counts with and without the projection; bad input.
 */
class PrefixTuningTest {

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"prefix-tiny-llama", "prefix-proj-tiny-llama", "prefix-tiny-bert"})
  void aPrefixSavedByHuggingFacePeftReproducesItsOutputs(String fixture) throws IOException {
    Path dir = Fixtures.dir(fixture);
    SameDiff sd = fixture.endsWith("bert") ? PromptFixtures.tinyBert() : PromptFixtures.tinyLlama();
    PeftModel model = Peft.load(sd, dir);
    GraphRewriter.of(sd).requireConsistentLinks();
    double[] diff = PromptFixtures.diffToGolden(sd, PromptFixtures.read(dir.resolve("golden.safetensors")));
    assertTrue(diff[0] <= 1e-4, fixture + ": max |Δ| on real tokens " + diff[0]);
    assertTrue(diff[1] <= 1e-4, fixture + ": |Δloss| " + diff[1]);
    assertEquals(3L * 2 * 2 * (fixture.endsWith("bert") ? 32 : 2 * 16), model.trainableParameters().count(),
        "a loaded prefix is the plain table n·layers·2·kv");
  }

  /**
   * Writes {@code target/peft4j-prefix-tiny-llama}: a prefix trained through the projection (moved off its init),
   * saved folded, with golden logits, for {@code python scripts/fixtures_prompt.py --check
   * peft-methods/target/peft4j-prefix-tiny-llama} (by hand); and checks it reloads to the same logits here.
   */
  @Test
  void aProjectedPrefixIsSavedFoldedAndReloadsToTheSameLogits() throws IOException {
    SameDiff sd = PromptFixtures.tinyLlama();
    PeftModel model = Peft.prefixTuning(4).projection(16).seed(9).apply(sd);
    long kv = 2 * 16;
    assertEquals(4 * kv + kv * 16 + 16 + 16 * (2 * 2 * kv) + 2 * 2 * kv, model.trainableParameters().count(),
        "embedding + MLP while training with the projection");
    Random random = new Random(5);
    for (String p : model.trainableParameters().names()) {
      INDArray a = sd.getArrForVarName(p);
      for (long i = 0; i < a.length(); i++) {
        a.putScalar(i, a.getDouble(i) + 0.2 * random.nextGaussian());
      }
    }
    Map<String, INDArray> golden = PromptFixtures.read(Fixtures.dir("tiny-llama").resolve("golden.safetensors"));
    Map<String, INDArray> out = sd.output(PromptFixtures.inputs(golden), Llama.LOGITS, Llama.LOSS);
    Path dir = Path.of("target", "peft4j-prefix-tiny-llama");
    model.save(dir);
    Map<String, INDArray> saved = PromptFixtures.read(dir.resolve(AdapterFiles.WEIGHTS));
    assertArrayEquals(new long[] {4, 2 * 2 * kv}, saved.get("prompt_embeddings").shape());
    Map<String, INDArray> written = new LinkedHashMap<>();
    written.put("input_ids", golden.get("input_ids"));
    written.put("attention_mask", golden.get("attention_mask"));
    written.put("loss_labels", golden.get("loss_labels"));
    written.put("logits", out.get(Llama.LOGITS));
    written.put("loss", out.get(Llama.LOSS).reshape());
    Safetensors.write(dir.resolve("golden.safetensors"), written, Map.of("format", "pt"));

    SameDiff fresh = PromptFixtures.tinyLlama();
    PeftModel loaded = Peft.load(fresh, dir);
    assertEquals(4 * 2 * 2 * kv, loaded.trainableParameters().count(), "the folded table");
    double[] diff = PromptFixtures.diffToGolden(fresh, PromptFixtures.read(dir.resolve("golden.safetensors")));
    assertTrue(diff[0] <= 1e-5 && diff[1] <= 1e-5, "folded vs projected: " + diff[0] + ", " + diff[1]);
    assertThrows(IllegalArgumentException.class, () -> model.adapter(PeftModel.DEFAULT_ADAPTER)
        .loadStateDict(saved), "a folded table cannot be loaded back into the MLP");
  }

  @Test
  void zeroInitStartsTheTableAtZero() {
    SameDiff sd = ToyModels.tokens(DataType.FLOAT);
    PeftModel model = Peft.prefixTuning(2).zeroInit().apply(sd);
    INDArray t = sd.getArrForVarName(model.trainableParameters().names().get(0));
    assertEquals(0.0, t.amaxNumber().doubleValue());
  }

  /** n + s beyond the model's positions fails at run time, naming the reason (n alone is checked at apply). */
  @Test
  void anInputTooLongForThePrefixIsRefusedByName() {
    SameDiff sd = PromptFixtures.tinyBert();
    Peft.prefixTuning(60).apply(sd);
    Map<String, INDArray> in = Map.of("input_ids", org.nd4j.linalg.factory.Nd4j.zeros(DataType.INT64, 1, 5),
        "attention_mask", org.nd4j.linalg.factory.Nd4j.ones(DataType.INT64, 1, 5),
        "token_type_ids", org.nd4j.linalg.factory.Nd4j.zeros(DataType.INT64, 1, 5));
    RuntimeException e = assertThrows(RuntimeException.class, () -> sd.output(in, "last_hidden_state"));
    assertTrue(e.getMessage().contains("virtual_tokens_plus_sequence_length_exceed_64_positions"), e.getMessage());
  }

  @Test
  void badInputLeavesTheGraphUntouched() {
    PromptFixtures.rejects(ToyModels::attention, IllegalArgumentException.class,
        sd -> Peft.prefixTuning(2).apply(sd), "prefix tuning needs a transformer graph", Hooks.KEY_MASK);
    PromptFixtures.rejects(ToyModels::tokens, IllegalArgumentException.class, sd -> Peft.prefixTuning(20).apply(sd),
        "20 virtual tokens", "16 positions");
    assertThrows(IllegalArgumentException.class, () -> Peft.prefixTuning(0));
    assertThrows(IllegalArgumentException.class, () -> Peft.prefixTuning(2).projection(0));
    assertThrows(IllegalStateException.class, () -> Peft.prefixTuning(2).seed(1).seed(2));
  }
}
