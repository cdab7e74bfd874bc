package dev.peft4j.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The Qwen3-0.6B shape and its random weights, without building the 2.4 GB model. */
class RandomLlamaWeightsTest {

  /** transformers 5.18: {@code Qwen3ForCausalLM(Qwen3Config(...the published values...)).num_parameters()}. */
  private static final long QWEN3_0_6B_PARAMETERS = 596_049_920L;

  @Test
  void qwen3ConfigHasTheParameterCountOfTransformers() {
    LlamaConfig c = LlamaConfig.qwen3_0_6B();
    assertEquals(QWEN3_0_6B_PARAMETERS, RandomLlamaWeights.of(c, 1).parameterCount());
    assertEquals(QWEN3_0_6B_PARAMETERS, RandomLlamaWeights.of(c.withMaxPositions(512), 1).parameterCount(),
        "positions carry no parameters");
    assertEquals(512, c.withMaxPositions(512).maxPositions());
    assertEquals(c, c.withMaxPositions(40_960));
  }

  @Test
  void parameterCountIsWhatTheBuiltGraphHolds() {
    // a small model of the same family: every VARIABLE of the built graph is one of the random weights, counted once
    for (boolean tied : new boolean[] {true, false}) {
      LlamaConfig c = new LlamaConfig("qwen3", 96, 32, 48, 2, 4, 2, 8, 16, 1e-6, 1e6, tied, false, false, true);
      RandomLlamaWeights w = RandomLlamaWeights.of(c, 7);
      SameDiff sd = Llama.causalLm(c, w);
      long held = 0;
      for (SDVariable v : sd.variables()) {
        if (v.getVariableType() == VariableType.VARIABLE) {
          held += v.getArr().length();
        }
      }
      assertEquals(w.parameterCount(), held, "tied " + tied);
    }
  }

  @Test
  void valuesAreSeededPerTensorAndNormsAreOne() {
    LlamaConfig c = new LlamaConfig("qwen3", 96, 32, 48, 2, 4, 2, 8, 16, 1e-6, 1e6, true, false, false, true);
    INDArray a = RandomLlamaWeights.of(c, 7).linearWeight("model.layers.1.self_attn.q_proj");
    assertEquals(a, RandomLlamaWeights.of(c, 7).linearWeight("model.layers.1.self_attn.q_proj"));
    assertTrue(!a.equals(RandomLlamaWeights.of(c, 8).linearWeight("model.layers.1.self_attn.q_proj")));
    assertEquals(32, a.size(0), "[in, out]");
    double std = a.stdNumber().doubleValue();
    assertTrue(Math.abs(std - 0.02) < 0.002, "standard deviation " + std);
    assertEquals(1.0, RandomLlamaWeights.of(c, 7).tensor("model.layers.0.self_attn.k_norm.weight").minNumber()
        .doubleValue());
    assertEquals(Set.of(), Set.copyOf(RandomLlamaWeights.of(c, 7).names().stream()
        .filter(n -> n.startsWith("lm_head")).toList()), "tied: no lm_head");
  }

  @Test
  void refusesBiasesItCannotGenerate() {
    LlamaConfig c = new LlamaConfig("qwen2", 96, 32, 48, 2, 4, 2, 8, 16, 1e-6, 1e6, true, true, false, false);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RandomLlamaWeights.of(c, 1));
    assertTrue(e.getMessage().contains("qkv_bias true"), e.getMessage());
  }
}
