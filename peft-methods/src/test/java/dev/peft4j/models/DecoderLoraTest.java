package dev.peft4j.models;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.lora.Lora;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/** LoRA on the Llama-family decoders, trained through RoPE, grouped-query attention and the causal-LM loss. */
class DecoderLoraTest {

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"tiny-llama", "tiny-qwen3"})
  void loraOnAttentionTrainsMergesAndUnloads(String fixture) throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir(fixture)).sameDiff();
    Map<String, INDArray> inputs = new HashMap<>();
    try (SafetensorsFile g = SafetensorsFile.open(Fixtures.dir(fixture).resolve("golden.safetensors"))) {
      inputs.put(Llama.INPUT_IDS, g.read("input_ids"));
      inputs.put(Llama.ATTENTION_MASK, g.read("attention_mask"));
      inputs.put(Llama.LABELS, g.read("loss_labels"));
    }
    Batch batch = new Batch(inputs, inputs.get(Llama.ATTENTION_MASK).sumNumber().longValue());
    INDArray base = sd.output(inputs, Llama.LOGITS).get(Llama.LOGITS);

    PeftModel model = Peft.lora(4).alpha(8).target("q_proj", "k_proj", "v_proj").apply(sd);
    assertEquals(2L * (4 * (64 + 64) + 4 * (64 + 32) + 4 * (64 + 32)), model.trainableParameters().count(),
        "q: 64→64, k and v: 64→32 (2 KV heads of 16) per layer");
    assertEquals(base, sd.output(inputs, Llama.LOGITS).get(Llama.LOGITS), "identity at init");
    TrainingHistory h = Trainer.builder(model).steps(15).learningRate(1e-2).progress(null).build()
        .fit(List.of(batch));
    assertTrue(h.meanLossOfLast(3) < h.meanLossOfFirst(3) * 0.9, h.meanLossOfFirst(3) + " → " + h.meanLossOfLast(3));

    INDArray adapted = sd.output(inputs, Llama.LOGITS).get(Llama.LOGITS);
    ((Lora) model.adapter("default")).merge();
    assertTrue(Graphs.relativeError(sd.output(inputs, Llama.LOGITS).get(Llama.LOGITS), adapted) < 1e-5);
    SameDiff unloaded = model.unload();
    // float rounding of W + ΔW − ΔW after 15 steps at lr 1e-2: measured 0.8–1.1e-6 (it moves with the trajectory)
    assertTrue(Graphs.relativeError(unloaded.output(inputs, Llama.LOGITS).get(Llama.LOGITS), base) < 2e-6,
        "unmerge + unload: the base again, up to the rounding of W + ΔW − ΔW");
    assertEquals(List.of(), GraphRewriter.of(unloaded).checkLinks());
  }
}
