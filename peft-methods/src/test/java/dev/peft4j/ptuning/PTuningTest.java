package dev.peft4j.ptuning;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.io.Safetensors;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Llama;
import dev.peft4j.prompt.PromptFixtures;
import dev.peft4j.ptuning.PTuningConfig.Encoder;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.ToyModels;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * P-tuning against Hugging Face PEFT 0.21 (scripts/fixtures_prompt.py): PEFT's saved prompt-encoder output reproduces
 * its logits on tiny-llama; peft4j saves its encoder's output for PEFT; bad input.
 */
class PTuningTest {

  @Test
  void aPromptEncoderOutputSavedByHuggingFacePeftReproducesItsLogits() throws IOException {
    Path dir = Fixtures.dir("ptuning-tiny-llama");
    SameDiff sd = PromptFixtures.tinyLlama();
    PeftModel model = Peft.load(sd, dir);
    GraphRewriter.of(sd).requireConsistentLinks();
    double[] diff = PromptFixtures.diffToGolden(sd, PromptFixtures.read(dir.resolve("golden.safetensors")));
    assertTrue(diff[0] <= 1e-4, "max |Δlogits| on real tokens " + diff[0]);
    assertTrue(diff[1] <= 1e-4, "|Δloss| " + diff[1]);
    assertEquals(4L * 64, model.trainableParameters().count(), "a loaded P-tuning adapter is the table n·H");
  }

  /**
   * Writes {@code target/peft4j-ptuning-tiny-llama} (MLP encoder) and {@code target/peft4j-ptuning-lstm-tiny-llama},
   * each with golden logits, for {@code python scripts/fixtures_prompt.py --check DIR} (by hand); both reload here to
   * the same logits.
   */
  @Test
  void theEncodersOutputIsSavedAndReloadsToTheSameLogits() throws IOException {
    for (Encoder encoder : Encoder.values()) {
      SameDiff sd = PromptFixtures.tinyLlama();
      PeftModel model = Peft.pTuning(4).encoder(encoder).encoderHiddenSize(8).seed(2).apply(sd);
      long expected = encoder == Encoder.MLP ? 4 * 64 + (64 * 8 + 8) + (8 * 8 + 8) + (8 * 64 + 64)
          : 4 * 64 + 2 * (64 * 32 + 8 * 32 + 32) + 2 * (16 * 32 + 8 * 32 + 32) + (16 * 16 + 16) + (16 * 64 + 64);
      assertEquals(expected, model.trainableParameters().count(), encoder + ": embedding + encoder");
      Map<String, INDArray> golden = PromptFixtures.read(Fixtures.dir("tiny-llama").resolve("golden.safetensors"));
      Map<String, INDArray> out = sd.output(PromptFixtures.inputs(golden), Llama.LOGITS, Llama.LOSS);
      Path dir = Path.of("target", encoder == Encoder.MLP ? "peft4j-ptuning-tiny-llama"
          : "peft4j-ptuning-lstm-tiny-llama");
      model.save(dir);
      assertArrayEquals(new long[] {4, 64},
          PromptFixtures.read(dir.resolve(AdapterFiles.WEIGHTS)).get("prompt_embeddings").shape());
      Map<String, INDArray> written = new LinkedHashMap<>();
      written.put("input_ids", golden.get("input_ids"));
      written.put("attention_mask", golden.get("attention_mask"));
      written.put("loss_labels", golden.get("loss_labels"));
      written.put("logits", out.get(Llama.LOGITS));
      written.put("loss", out.get(Llama.LOSS).reshape());
      Safetensors.write(dir.resolve("golden.safetensors"), written, Map.of("format", "pt"));

      SameDiff fresh = PromptFixtures.tinyLlama();
      PeftModel loaded = Peft.load(fresh, dir);
      assertEquals(4L * 64, loaded.trainableParameters().count());
      double[] diff = PromptFixtures.diffToGolden(fresh, PromptFixtures.read(dir.resolve("golden.safetensors")));
      assertTrue(diff[0] <= 1e-5 && diff[1] <= 1e-5, encoder + ": table vs encoder " + diff[0] + ", " + diff[1]);
      Map<String, INDArray> saved = PromptFixtures.read(dir.resolve(AdapterFiles.WEIGHTS));
      assertThrows(IllegalArgumentException.class,
          () -> model.adapter(PeftModel.DEFAULT_ADAPTER).loadStateDict(saved),
          "the encoder cannot be recovered from its output");
    }
  }

  @Test
  void badInputIsRefused() {
    PromptFixtures.rejects(ToyModels::mlp, IllegalArgumentException.class, sd -> Peft.pTuning(2).apply(sd),
        "P-tuning needs a transformer graph");
    PromptFixtures.rejects(ToyModels::tokens, IllegalArgumentException.class, sd -> Peft.pTuning(30).apply(sd),
        "30 virtual tokens", "16 positions");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Peft.pTuning(2).encoderNumLayers(3).build());
    assertTrue(e.getMessage().contains("encoder_num_layers 3"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Peft.pTuning(2).encoderHiddenSize(0));
    assertThrows(IllegalStateException.class, () -> Peft.pTuning(2).encoder(Encoder.MLP).encoder(Encoder.LSTM));
  }
}
