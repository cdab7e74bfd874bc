package dev.peft4j.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Our architectures against golden outputs of Hugging Face transformers (see scripts/make_fixtures.py): tiny random
 * Llama (untied head), Qwen3 (tied head, q/k norms) and a sharded BERT checkpoint.
 */
class HfModelsTest {

  static Path fixture(String name) {
    return Fixtures.dir(name);
  }

  static Map<String, INDArray> golden(String name) throws IOException {
    Map<String, INDArray> out = new HashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(fixture(name).resolve("golden.safetensors"))) {
      for (String n : f.names()) {
        out.put(n, f.read(n));
      }
    }
    return out;
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"tiny-llama", "tiny-qwen3", "tiny-qwen2"})
  void decoderLogitsAndLossMatchTransformers(String name) throws IOException {
    HfModels.Loaded m = HfModels.load(fixture(name));
    assertEquals(Set.of(), m.unusedTensors(), "every checkpoint tensor is used");
    Map<String, INDArray> g = golden(name);
    Map<String, INDArray> inputs = Map.of(Llama.INPUT_IDS, g.get("input_ids"), Llama.ATTENTION_MASK,
        g.get("attention_mask"), Llama.LABELS, g.get("loss_labels"));
    Map<String, INDArray> out = m.sameDiff().output(inputs, Llama.LOGITS, Llama.LOSS);
    assertEquals(List.of(3L, 10L, 128L), List.of(out.get(Llama.LOGITS).shape()[0], out.get(Llama.LOGITS).shape()[1],
        out.get(Llama.LOGITS).shape()[2]));
    double diff = Graphs.maxDiffOnRealTokens(out.get(Llama.LOGITS), g.get("logits"), g.get("attention_mask"));
    assertTrue(diff <= 1e-4, name + " logits differ by " + diff);
    assertEquals(g.get("loss").getDouble(0), out.get(Llama.LOSS).getDouble(0), 1e-4, "next-token loss");
  }

  @Test
  void shardedBertCheckpointMatchesTransformers() throws IOException {
    HfModels.Loaded m = HfModels.load(fixture("tiny-bert"));
    assertEquals(Set.of(), m.unusedTensors());
    Map<String, INDArray> g = golden("tiny-bert");
    Map<String, INDArray> inputs = Map.of(Bert.INPUT_IDS, g.get("input_ids"), Bert.ATTENTION_MASK,
        g.get("attention_mask"), Bert.TOKEN_TYPE_IDS, g.get("token_type_ids"));
    INDArray hidden = m.sameDiff().output(inputs, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE);
    double diff = Graphs.maxDiffOnRealTokens(hidden, g.get("last_hidden_state"), g.get("attention_mask"));
    assertTrue(diff <= 1e-4, "last_hidden_state differs by " + diff);
  }

  @Test
  void qAndVProjectionsAreTwoTargetsPerLayerAndAllLinearSkipsTheHead() throws IOException {
    HfModels.Loaded llama = HfModels.load(fixture("tiny-llama"));
    GraphRewriter g = GraphRewriter.of(llama.sameDiff());
    List<String> qv = Targets.names("q_proj", "v_proj").selectLinear(g, "LoRA").stream().map(LinearModule::name)
        .toList();
    assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
        "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"), qv);
    List<LinearModule> all = Targets.names(Targets.ALL_LINEAR).selectLinear(g, "LoRA");
    assertEquals(14, all.size(), "q, k, v, o, gate, up, down × 2 layers");
    assertTrue(all.stream().noneMatch(l -> l.name().equals("lm_head")));
    assertEquals(Set.of("lm_head"), g.outputHeads());
    // the tied Qwen3 head multiplies by the embedding matrix: not a linear module of its own
    GraphRewriter qwen = GraphRewriter.of(HfModels.load(fixture("tiny-qwen3")).sameDiff());
    assertEquals(14, Targets.names(Targets.ALL_LINEAR).selectLinear(qwen, "LoRA").size());
  }
}
