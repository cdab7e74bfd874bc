package dev.peft4j.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.testing.Graphs;
import dev.peft4j.io.Safetensors;
import dev.peft4j.io.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * RoBERTa, XLM-RoBERTa (with its classification head), DistilBERT, GPT-2 and Gemma loaded by {@link HfModels#load} against
 * golden outputs of transformers 5.18 (scripts/make_fixtures.py): ≤ 1e-4 on every real token.
 */
class MoreArchitecturesTest {

  @Test
  void robertaMatchesTransformersWithPaddingOffsetPositions() throws IOException {
    HfModels.Loaded m = HfModels.load(HfModelsTest.fixture("tiny-roberta"));
    assertEquals(Set.of(), m.unusedTensors(), "every checkpoint tensor is used");
    RobertaConfig c = (RobertaConfig) m.config();
    assertEquals(1, c.padTokenId());
    assertEquals(64, c.maxTokens(), "66 positions less padding_idx + 1");
    Map<String, INDArray> g = HfModelsTest.golden("tiny-roberta");
    INDArray hidden = m.sameDiff().output(Map.of(Roberta.INPUT_IDS, g.get("input_ids"), Roberta.ATTENTION_MASK,
        g.get("attention_mask")), Roberta.LAST_HIDDEN_STATE).get(Roberta.LAST_HIDDEN_STATE);
    double diff = Graphs.maxDiffOnRealTokens(hidden, g.get("last_hidden_state"), g.get("attention_mask"));
    assertTrue(diff <= 1e-4, "last_hidden_state differs by " + diff);
  }

  @Test
  void xlmRobertaSequenceClassifierMatchesTransformersLogits() throws IOException {
    HfModels.Loaded m = HfModels.load(HfModelsTest.fixture("tiny-xlm-roberta"));
    assertEquals(Set.of(), m.unusedTensors(), "encoder under 'roberta.' and the classifier head are all used");
    RobertaConfig c = (RobertaConfig) m.config();
    assertEquals("xlm-roberta", c.modelType());
    assertEquals(3, c.numLabels());
    Map<String, INDArray> g = HfModelsTest.golden("tiny-xlm-roberta");
    INDArray logits = m.sameDiff().output(Map.of(Roberta.INPUT_IDS, g.get("input_ids"), Roberta.ATTENTION_MASK,
        g.get("attention_mask")), Roberta.LOGITS).get(Roberta.LOGITS);
    assertEquals(List.of(3L, 3L), List.of(logits.shape()[0], logits.shape()[1]));
    double diff = logits.sub(g.get("logits")).amaxNumber().doubleValue();
    assertTrue(diff <= 1e-4, "logits differ by " + diff);
  }

  @Test
  void distilBertMatchesTransformers() throws IOException {
    HfModels.Loaded m = HfModels.load(HfModelsTest.fixture("tiny-distilbert"));
    assertEquals(Set.of(), m.unusedTensors(), "every checkpoint tensor is used");
    Map<String, INDArray> g = HfModelsTest.golden("tiny-distilbert");
    INDArray hidden = m.sameDiff().output(Map.of(DistilBert.INPUT_IDS, g.get("input_ids"), DistilBert.ATTENTION_MASK,
        g.get("attention_mask")), DistilBert.LAST_HIDDEN_STATE).get(DistilBert.LAST_HIDDEN_STATE);
    double diff = Graphs.maxDiffOnRealTokens(hidden, g.get("last_hidden_state"), g.get("attention_mask"));
    assertTrue(diff <= 1e-4, "last_hidden_state differs by " + diff);
    List<String> attention = Targets.names("q_lin", "v_lin").selectLinear(GraphRewriter.of(m.sameDiff()), "LoRA")
        .stream().map(LinearModule::name).toList();
    assertEquals(List.of("transformer.layer.0.attention.q_lin", "transformer.layer.0.attention.v_lin",
        "transformer.layer.1.attention.q_lin", "transformer.layer.1.attention.v_lin"), attention);
  }

  @Test
  void gpt2LogitsAndLossMatchTransformersAndItsConv1dLayersAreMarked() throws IOException {
    HfModels.Loaded m = HfModels.load(HfModelsTest.fixture("tiny-gpt2"));
    assertEquals(Set.of(), m.unusedTensors(), "every checkpoint tensor is used (lm_head is tied to wte)");
    Map<String, INDArray> g = HfModelsTest.golden("tiny-gpt2");
    Map<String, INDArray> out = m.sameDiff().output(Map.of(Gpt2.INPUT_IDS, g.get("input_ids"), Gpt2.ATTENTION_MASK,
        g.get("attention_mask"), Gpt2.LABELS, g.get("loss_labels")), Gpt2.LOGITS, Gpt2.LOSS);
    double diff = Graphs.maxDiffOnRealTokens(out.get(Gpt2.LOGITS), g.get("logits"), g.get("attention_mask"));
    assertTrue(diff <= 1e-4, "logits differ by " + diff);
    assertEquals(g.get("loss").getDouble(0), out.get(Gpt2.LOSS).getDouble(0), 1e-4, "next-token loss");

    List<LinearModule> all = Targets.names(Targets.ALL_LINEAR).selectLinear(GraphRewriter.of(m.sameDiff()), "LoRA");
    assertEquals(8, all.size(), "c_attn, attn.c_proj, c_fc, mlp.c_proj × 2 layers (the tied head is no module)");
    LinearModule cAttn = all.get(0);
    assertEquals("transformer.h.0.attn.c_attn", cAttn.name());
    assertEquals(List.of(32L, 96L), List.of(cAttn.inFeatures(), cAttn.outFeatures()), "fused q|k|v, [in, out]");
    assertTrue(all.stream().allMatch(l -> Conv1dModules.isConv1d(m.sameDiff(), l.name())));
    assertFalse(Conv1dModules.isConv1d(HfModels.load(HfModelsTest.fixture("tiny-bert")).sameDiff(),
        "encoder.layer.0.attention.self.query"), "nn.Linear modules are not Conv1D");
  }

  @Test
  void gemmaLogitsAndLossMatchTransformers() throws IOException {
    HfModels.Loaded m = HfModels.load(HfModelsTest.fixture("tiny-gemma"));
    assertEquals(Set.of(), m.unusedTensors(), "every checkpoint tensor is used (lm_head is tied)");
    Map<String, INDArray> g = HfModelsTest.golden("tiny-gemma");
    Map<String, INDArray> out = m.sameDiff().output(Map.of(Llama.INPUT_IDS, g.get("input_ids"), Llama.ATTENTION_MASK,
        g.get("attention_mask"), Llama.LABELS, g.get("loss_labels")), Llama.LOGITS, Llama.LOSS);
    double diff = Graphs.maxDiffOnRealTokens(out.get(Llama.LOGITS), g.get("logits"), g.get("attention_mask"));
    assertTrue(diff <= 1e-4, "logits differ by " + diff);
    assertEquals(g.get("loss").getDouble(0), out.get(Llama.LOSS).getDouble(0), 1e-4, "next-token loss");
  }

  /** The hub's gpt2 checkpoint is saved from the bare GPT2Model: no "transformer." prefix. */
  @Test
  void gpt2CheckpointWithoutTheTransformerPrefixLoadsTheSame(@TempDir Path tmp) throws IOException {
    Path source = HfModelsTest.fixture("tiny-gpt2");
    Map<String, INDArray> stripped = new HashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(source.resolve("model.safetensors"))) {
      for (String n : f.names()) {
        stripped.put(n.substring("transformer.".length()), f.read(n));
      }
    }
    Safetensors.write(tmp.resolve("model.safetensors"), stripped, Map.of("format", "pt"));
    Files.copy(source.resolve("config.json"), tmp.resolve("config.json"));
    HfModels.Loaded m = HfModels.load(tmp);
    assertEquals(Set.of(), m.unusedTensors());
    Map<String, INDArray> g = HfModelsTest.golden("tiny-gpt2");
    INDArray logits = m.sameDiff().output(Map.of(Gpt2.INPUT_IDS, g.get("input_ids"), Gpt2.ATTENTION_MASK,
        g.get("attention_mask")), Gpt2.LOGITS).get(Gpt2.LOGITS);
    double diff = Graphs.maxDiffOnRealTokens(logits, g.get("logits"), g.get("attention_mask"));
    assertTrue(diff <= 1e-4, "logits differ by " + diff);
  }
}
