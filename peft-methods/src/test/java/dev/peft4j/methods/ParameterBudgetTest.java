package dev.peft4j.methods;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.TrainableParameterSet;
import dev.peft4j.methods.ParameterBudget.Placement;
import dev.peft4j.methods.ParameterBudget.Shape;
import dev.peft4j.model.BertConfig;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.LlamaConfig;
import dev.peft4j.testing.Fixtures;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/** The closed-form budget against textbook figures and against the trainable counts of real built models. */
class ParameterBudgetTest {

  /** LLaMA-2-7B's shape: hidden 4096, 32 layers, FFN 11008, 32 heads, vocabulary 32000, 4096 positions. */
  private static final ParameterBudget LLAMA_7B = ParameterBudget.of(Shape.llama(4096, 32, 11008, 32, 32, 32000,
      4096));

  @Test
  void reproducesTheTextbookFiguresForLlama2_7b() {
    assertEquals(6_738_415_616L, LLAMA_7B.totalParameters(), "LLaMA-2-7B's published parameter count");
    assertEquals(16_777_216L, LLAMA_7B.lora(16, "q_proj", "k_proj", "v_proj", "o_proj"), "32·4·16·(4096 + 4096)");
    assertEquals(33_554_432L, LLAMA_7B.bottleneckWeightsOnly(64, Placement.HOULSBY), "32·2·2·4096·64, weights only");
    assertEquals(33_820_672L, LLAMA_7B.bottleneck(64, Placement.HOULSBY), "with biases: 32·2·(2·4096·64 + 64 + 4096)");
    assertEquals(16_910_336L, LLAMA_7B.bottleneck(64, Placement.PFEIFFER), "one per layer: half of Houlsby");
    assertEquals(5_242_880L, LLAMA_7B.prefix(20), "20 tokens · 32 layers · (K and V) · 4096");
    assertEquals(409_600L, LLAMA_7B.prompt(100), "100 · 4096");
    assertEquals(614_400L, LLAMA_7B.ia3(List.of("k_proj", "v_proj", "down_proj"), List.of("down_proj")),
        "32 · (4096 + 4096 + 11008)");
  }

  @Test
  void everyMethodsFormulaOnLlama2_7b() {
    long attention = 4L * 4096 * 4096;
    long mlp = 3L * 4096 * 11008;
    assertEquals(16_777_216L + 32L * 4 * 4096, LLAMA_7B.dora(16, "q_proj", "k_proj", "v_proj", "o_proj"),
        "LoRA + a magnitude of out per target");
    assertEquals(32L * 2 * (256 + 4096), LLAMA_7B.vera(256, "q_proj", "v_proj"), "d (r) and b (out) per target");
    assertEquals(32L * 2 * 1000, LLAMA_7B.fourierFt(1000, "q_proj", "v_proj"));
    assertEquals(20L * 4096 + (4096L * 128 + 128) + (128L * 128 + 128) + (128L * 4096 + 4096),
        LLAMA_7B.pTuning(20, 128));
    assertEquals(0, LLAMA_7B.bitFit(), "Llama's linear layers have no bias");
    assertEquals(4096L * (2 * 32 + 1), LLAMA_7B.lnTuning(), "two RMSNorms per layer and the final norm");
    assertEquals(4096L * 32000, LLAMA_7B.headOnly(), "the untied lm_head");
    assertEquals(32 * (attention + mlp) + 4096L * 65 + 4096L * 32000, LLAMA_7B.fullFineTuning(),
        "everything but embed_tokens");
    long allLinear = 32L * 16 * (4 * (4096 + 4096) + 2 * (4096 + 11008) + (11008 + 4096));
    assertEquals(allLinear, LLAMA_7B.lora(16, "all-linear"), "all-linear leaves the lm_head out");
  }

  @Test
  void groupedQueryAttentionShrinksKeyValueTargetsAndPrefixes() {
    ParameterBudget gqa = ParameterBudget.of(Shape.llama(4096, 32, 14336, 32, 8, 128256, 8192)); // Llama-3-8B
    assertEquals(32L * 16 * ((4096 + 1024) + (4096 + 1024)), gqa.lora(16, "k_proj", "v_proj"), "k, v: 4096 → 1024");
    assertEquals(20L * 32 * 2 * 1024, gqa.prefix(20), "K and V of 8 kv heads × 128");
    assertEquals(8_030_261_248L, gqa.totalParameters(), "Llama-3-8B's published parameter count");
  }

  @Test
  void qwen3_0_6BMatchesTransformersAndPeft() {
    ParameterBudget qwen = ParameterBudget.of(Shape.of(LlamaConfig.qwen3_0_6B()));
    assertEquals(596_049_920L, qwen.totalParameters(), "transformers' num_parameters(), tied embeddings, q/k norms");
    assertEquals(28L * 16 * ((1024 + 2048) + (1024 + 1024)), qwen.lora(16, "q_proj", "v_proj"),
        "q: 1024 → 16·128, v: 1024 → 8·128 (PEFT's trainable count: 2,293,760)");
  }

  @Test
  void memoryEstimateIsTheSumOfItsParts() {
    ParameterBudget b = ParameterBudget.of(Shape.bert(32, 2, 64, 4, 128, 64).withClassifier(3));
    long trainable = b.lora(4, "query", "value");
    ParameterBudget.Memory m = b.memory(trainable, 2, 16, DataType.FLOAT);
    assertEquals(b.totalParameters() * 4, m.weightBytes());
    assertEquals(trainable * 4, m.trainableBytes());
    assertEquals(trainable * 4, m.gradientBytes());
    assertEquals(trainable * 2 * 4, m.optimizerBytes(), "AdamW: two moments");
    long perTokenPerLayer = 10 * 32 + 2 * 64 + 2 * 4 * 16;
    assertEquals(2L * 16 * perTokenPerLayer * 2 * 4, m.activationBytes(), "no LM logits for a classifier");
    assertEquals(m.weightBytes() + m.trainableBytes() + m.gradientBytes() + m.optimizerBytes() + m.activationBytes(),
        m.totalBytes());
    ParameterBudget.Memory half = b.memory(trainable, 2, 16, DataType.HALF);
    assertEquals(m.totalBytes() / 2, half.totalBytes(), "2 bytes per element instead of 4");
    ParameterBudget.Memory lm = LLAMA_7B.memory(0, 1, 8, DataType.FLOAT);
    assertEquals(8L * ((10 * 4096 + 4 * 11008 + 2 * 32 * 8) * 32 + 2 * 32000) * 4, lm.activationBytes(),
        "a language model also keeps its logits and their softmax");
  }

  @Test
  void badInputsAreNamed() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LLAMA_7B.lora(8, "query"));
    assertTrue(e.getMessage().contains("[query]") && e.getMessage().contains("model.layers.0.self_attn.q_proj"),
        e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> LLAMA_7B.lora(0, "q_proj"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> LLAMA_7B.memory(10, 1, 5000, DataType.FLOAT))
        .getMessage().contains("5000"));
    assertTrue(assertThrows(IllegalStateException.class,
        () -> ParameterBudget.of(Shape.bert(32, 2, 64, 4, 128, 64)).headOnly()).getMessage()
        .contains("withClassifier"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> Shape.llama(100, 2, 64, 3, 3, 10, 10))
        .getMessage().contains("hidden (100) must be a multiple of heads (3)"));
  }

  /** Applies {@code config}, checks its count against {@code budget} and the config's own count, unloads again. */
  private static void sameAsBuilt(SameDiff sd, AdapterConfig config, long budget) {
    assertEquals(budget, config.parameterCount(sd), config + ": the config's count from the graph");
    PeftModel model = config.apply(sd);
    assertEquals(budget, model.trainableParameters().count(), config + ": the built model's trainable count");
    model.unload();
  }

  @Test
  void equalsTheBuiltTinyLlama() throws IOException {
    HfModels.Loaded loaded = HfModels.load(Fixtures.dir("tiny-llama"));
    SameDiff sd = loaded.sameDiff();
    ParameterBudget b = ParameterBudget.of(Shape.of((LlamaConfig) loaded.config()));
    assertEquals(TrainableParameterSet.parameterCount(sd), b.totalParameters(), "every parameter of the graph");
    sameAsBuilt(sd, Peft.lora(4).target("q_proj", "k_proj", "v_proj", "o_proj").build(),
        b.lora(4, "q_proj", "k_proj", "v_proj", "o_proj"));
    sameAsBuilt(sd, Peft.lora(2).target("all-linear").build(), b.lora(2, "all-linear"));
    sameAsBuilt(sd, Peft.ia3().target("k_proj", "v_proj", "down_proj").feedforward("down_proj").build(),
        b.ia3(List.of("k_proj", "v_proj", "down_proj"), List.of("down_proj")));
    sameAsBuilt(sd, Peft.bottleneck(8).build(), b.bottleneck(8, Placement.HOULSBY));
    sameAsBuilt(sd, Peft.bottleneck(8).afterFfnOnly().build(), b.bottleneck(8, Placement.PFEIFFER));
    sameAsBuilt(sd, Peft.lnTuning().build(), b.lnTuning());
    sameAsBuilt(sd, Peft.linearProbe().build(), b.headOnly());
    sameAsBuilt(sd, Peft.fullFineTuning().build(), b.fullFineTuning());
    assertEquals(0, b.bitFit(), "and BitFit is refused on it (BitFitTest)");
  }

  @Test
  void equalsTheBuiltTinyBert() throws IOException {
    HfModels.Loaded loaded = HfModels.load(Fixtures.dir("tiny-bert"));
    SameDiff sd = loaded.sameDiff();
    ParameterBudget b = ParameterBudget.of(Shape.of((BertConfig) loaded.config()));
    assertEquals(TrainableParameterSet.parameterCount(sd), b.totalParameters(), "every parameter of the graph");
    sameAsBuilt(sd, Peft.lora(4).target("query", "value").build(), b.lora(4, "query", "value"));
    sameAsBuilt(sd, Peft.lora(2).target("dense").build(), b.lora(2, "dense"));
    sameAsBuilt(sd, Peft.ia3().target("key", "value", "output.dense").feedforward("output.dense").build(),
        b.ia3(List.of("key", "value", "output.dense"), List.of("output.dense")));
    sameAsBuilt(sd, Peft.bottleneck(4).build(), b.bottleneck(4, Placement.HOULSBY));
    sameAsBuilt(sd, Peft.bitFit().build(), b.bitFit());
    sameAsBuilt(sd, Peft.bitFit().target("query", "intermediate.dense").build(),
        b.bitFit("query", "intermediate.dense"));
    sameAsBuilt(sd, Peft.lnTuning().build(), b.lnTuning());
    sameAsBuilt(sd, Peft.fullFineTuning().build(), b.fullFineTuning());
  }

  /**
   * A BERT checkpoint with a pooler, as its task model (tiny-bert-cls: BertForSequenceClassification, 3 labels):
   * all-linear adapts pooler.dense too and leaves the classifier, as PEFT 0.21 does (seq-cls-tiny-bert).
   */
  @Test
  void equalsTheBuiltTinyBertWithAPoolerAndAClassifier() throws IOException {
    HfModels.Loaded loaded = HfModels.loadTask(Fixtures.dir("tiny-bert-cls"));
    SameDiff sd = loaded.sameDiff();
    Shape shape = Shape.of((BertConfig) loaded.config()).withClassifier(3);
    ParameterBudget b = ParameterBudget.of(shape.withPooler());
    assertEquals(TrainableParameterSet.parameterCount(sd), b.totalParameters(), "every parameter, the pooler's too");
    assertEquals(ParameterBudget.of(shape).lora(2, "all-linear") + 2L * (32 + 32), b.lora(2, "all-linear"),
        "the pooler's A and B: r·(H + H)");
    sameAsBuilt(sd, Peft.lora(2).target("all-linear").build(), b.lora(2, "all-linear"));
    sameAsBuilt(sd, Peft.fullFineTuning().build(), b.fullFineTuning());
    sameAsBuilt(sd, Peft.linearProbe().build(), b.headOnly());
  }
}
