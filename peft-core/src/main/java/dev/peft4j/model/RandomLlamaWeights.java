package dev.peft4j.model;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Seeded random weights for every tensor a Llama-family decoder of shape {@link LlamaConfig} reads, by Hugging Face
 * name, so that a model of a published size can be built in memory without a download (speed and memory runs, GPU
 * checks).
 * <pre>
 *   projections, embeddings: uniform in [−a, a), a = 0.02·√3 (standard deviation 0.02, as transformers' initializer_range)
 *   RMSNorm weights (input_layernorm, post_attention_layernorm, q_norm, k_norm, model.norm): 1
 *   linear weights answered as [in, out] by {@link #linearWeight}; biases (qkv_bias, mlp_bias) are not generated
 * </pre>
 * The values come from Java's {@link SplittableRandom}, one generator per tensor seeded by the seed and the tensor's
 * name, not from ND4J's generator: every backend and every build order sees the same numbers.
 *
 * <pre>{@code
 * LlamaConfig c = LlamaConfig.qwen3_0_6B().withMaxPositions(512);
 * SameDiff sd = Llama.causalLm(c, RandomLlamaWeights.of(c, 2026));
 * }</pre>
 */
public final class RandomLlamaWeights implements Weights {

  private final LlamaConfig c;
  private final long seed;
  private final Map<String, long[]> shapes = new HashMap<>();

  private RandomLlamaWeights(LlamaConfig c, long seed) {
    this.c = c;
    this.seed = seed;
    long h = c.hiddenSize();
    long q = (long) c.numHeads() * c.headDim();
    long kv = (long) c.numKvHeads() * c.headDim();
    long inner = c.intermediateSize();
    shapes.put("model.embed_tokens.weight", new long[] {c.vocabSize(), h});
    shapes.put("model.norm.weight", new long[] {h});
    if (!c.tieWordEmbeddings()) {
      shapes.put("lm_head.weight", new long[] {h, c.vocabSize()});
    }
    for (int i = 0; i < c.numLayers(); i++) {
      String p = "model.layers." + i + ".";
      shapes.put(p + "input_layernorm.weight", new long[] {h});
      shapes.put(p + "post_attention_layernorm.weight", new long[] {h});
      if (c.qkNorm()) {
        shapes.put(p + "self_attn.q_norm.weight", new long[] {c.headDim()});
        shapes.put(p + "self_attn.k_norm.weight", new long[] {c.headDim()});
      }
      shapes.put(p + "self_attn.q_proj.weight", new long[] {h, q}); // [in, out], as linearWeight answers
      shapes.put(p + "self_attn.k_proj.weight", new long[] {h, kv});
      shapes.put(p + "self_attn.v_proj.weight", new long[] {h, kv});
      shapes.put(p + "self_attn.o_proj.weight", new long[] {q, h});
      shapes.put(p + "mlp.gate_proj.weight", new long[] {h, inner});
      shapes.put(p + "mlp.up_proj.weight", new long[] {h, inner});
      shapes.put(p + "mlp.down_proj.weight", new long[] {inner, h});
    }
  }

  /**
   * Random weights for a decoder of shape {@code config}.
   *
   * @throws IllegalArgumentException if the config has biases (q/k/v or MLP), which these weights do not generate
   */
  public static RandomLlamaWeights of(LlamaConfig config, long seed) {
    checkArgument(config != null, "config must not be null");
    checkArgument(!config.qkvBias() && !config.mlpBias(),
        "random weights have no biases, but the config asks for qkv_bias %s, mlp_bias %s", config.qkvBias(),
        config.mlpBias());
    return new RandomLlamaWeights(config, seed);
  }

  /** The number of scalars of every tensor (a tied LM head is the embedding table, counted once). */
  public long parameterCount() {
    long n = 0;
    for (long[] shape : shapes.values()) {
      long size = 1;
      for (long s : shape) {
        size *= s;
      }
      n += size;
    }
    return n;
  }

  @Override
  public boolean has(String name) {
    return shapes.containsKey(name);
  }

  @Override
  public Set<String> names() {
    return Set.copyOf(shapes.keySet());
  }

  @Override
  public INDArray tensor(String name) {
    long[] shape = shapes.get(name);
    if (shape == null) {
      throw new IllegalArgumentException("no random weight '" + name + "' for " + c);
    }
    if (name.endsWith("norm.weight")) {
      return Nd4j.ones(DataType.FLOAT, shape);
    }
    // one generator per tensor, seeded by its name: the same values whatever order the builder asks in
    return uniform(new SplittableRandom(seed ^ name.hashCode() * 0x9E3779B97F4A7C15L), 0.02 * Math.sqrt(3), shape);
  }

  @Override
  public INDArray linearWeight(String module) {
    return tensor(module + ".weight");
  }

  /** Uniform in [−a, a) (standard deviation a/√3), generated in Java so every backend gets the same values. */
  private static INDArray uniform(SplittableRandom random, double a, long... shape) {
    long n = 1;
    for (long s : shape) {
      n *= s;
    }
    float[] values = new float[Math.toIntExact(n)];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) ((random.nextDouble() * 2 - 1) * a);
    }
    return Nd4j.create(values, shape, 'c');
  }
}
