package dev.peft4j.model;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The fields of a Llama-family {@code config.json} (model types llama, mistral, qwen2, qwen3, gemma) the architecture
 * needs. Gemma differs only in ways its model type implies (see {@link Llama}).
 *
 * @param modelType         {@code model_type}
 * @param vocabSize         {@code vocab_size}
 * @param hiddenSize        {@code hidden_size} (H)
 * @param intermediateSize  {@code intermediate_size}
 * @param numLayers         {@code num_hidden_layers}
 * @param numHeads          {@code num_attention_heads}
 * @param numKvHeads        {@code num_key_value_heads} (grouped-query attention; divides numHeads)
 * @param headDim           {@code head_dim}, or H / numHeads
 * @param maxPositions      {@code max_position_embeddings}
 * @param rmsNormEps        {@code rms_norm_eps}
 * @param ropeTheta         {@code rope_theta} (or {@code rope_parameters.rope_theta})
 * @param tieWordEmbeddings {@code tie_word_embeddings}: the LM head reuses the token embedding matrix
 * @param qkvBias           q, k, v projections have biases (qwen2 always; others {@code attention_bias})
 * @param mlpBias           {@code mlp_bias}
 * @param qkNorm            per-head RMSNorm of queries and keys before RoPE ({@code q_norm}, {@code k_norm}; qwen3)
 */
public record LlamaConfig(String modelType, int vocabSize, int hiddenSize, int intermediateSize, int numLayers,
    int numHeads, int numKvHeads, int headDim, int maxPositions, double rmsNormEps, double ropeTheta,
    boolean tieWordEmbeddings, boolean qkvBias, boolean mlpBias, boolean qkNorm) {

  public LlamaConfig {
    if (numHeads <= 0 || numKvHeads <= 0 || numHeads % numKvHeads != 0) {
      throw new IllegalArgumentException(String.format(
          "num_attention_heads (%s) must be a positive multiple of num_key_value_heads (%s)", numHeads, numKvHeads));
    }
    if (headDim <= 0 || headDim % 2 != 0) {
      throw new IllegalArgumentException("head_dim must be positive and even for rotary embeddings, got " + headDim);
    }
    if (vocabSize <= 0 || hiddenSize <= 0 || intermediateSize <= 0 || numLayers <= 0 || maxPositions <= 0) {
      throw new IllegalArgumentException("Llama sizes must be positive: " + this);
    }
  }

  /**
   * Qwen/Qwen3-0.6B's published {@code config.json}: 28 layers, hidden 1024, intermediate 3072, 16 query and 8
   * key-value heads of 128, vocabulary 151,936, 40,960 positions, rms_norm_eps 1e-6, rope_theta 1e6, tied embeddings,
   * q/k norms, no biases: 596,049,920 parameters (transformers' {@code num_parameters()} for the same config). With
   * {@link RandomLlamaWeights} it builds a model of that size without a download.
   */
  public static LlamaConfig qwen3_0_6B() {
    return new LlamaConfig("qwen3", 151_936, 1024, 3072, 28, 16, 8, 128, 40_960, 1e-6, 1_000_000, true, false, false,
        true);
  }

  /**
   * This config with {@code maxPositions} positions: the graph keeps a {@code [maxPositions, maxPositions]} float
   * causal mask and two {@code [maxPositions, headDim]} rotary tables as constants, so a run that never goes past a
   * few hundred tokens can spare the 6.25 GiB mask of 40,960 positions. No parameter depends on it.
   */
  public LlamaConfig withMaxPositions(int maxPositions) {
    return new LlamaConfig(modelType, vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim,
        maxPositions, rmsNormEps, ropeTheta, tieWordEmbeddings, qkvBias, mlpBias, qkNorm);
  }

  /**
   * Reads a {@code config.json} of model type llama, mistral, qwen2, qwen3 or gemma.
   *
   * @throws IOException naming the file and the problem: unreadable, not JSON, another model_type, a missing field,
   *     an activation other than silu (gemma: gelu_pytorch_tanh), Gemma's bidirectional attention, or a rope_scaling
   *     we do not implement
   */
  public static LlamaConfig read(Path configJson) throws IOException {
    JsonConfig json = JsonConfig.read(configJson);
    json.requireModelType("llama", "mistral", "qwen2", "qwen3", "gemma");
    String type = json.modelType();
    json.requireString("hidden_act", type.equals("gemma") ? "gelu_pytorch_tanh" : "silu");
    if (json.bool("use_bidirectional_attention", false)) {
      throw new IOException(configJson + ": use_bidirectional_attention true is not supported; only causal attention");
    }
    for (String field : new String[] {"rope_scaling", "rope_parameters"}) {
      String kind = json.nestedString(field, "rope_type");
      kind = kind != null ? kind : json.nestedString(field, "type");
      if (json.isObject(field) && !"default".equals(kind) && !(kind == null && field.equals("rope_parameters"))) {
        throw new IOException(String.format("%s: %s of type '%s' is not supported; only plain rotary embeddings",
            configJson, field, kind));
      }
    }
    double theta = json.has("rope_theta") ? json.number("rope_theta", 10000)
        : json.nestedNumber("rope_parameters", "rope_theta", 10000);
    int hidden = json.integer("hidden_size");
    int heads = json.integer("num_attention_heads");
    try {
      return new LlamaConfig(type, json.integer("vocab_size"), hidden, json.integer("intermediate_size"),
          json.integer("num_hidden_layers"), heads, json.integer("num_key_value_heads", heads),
          json.integer("head_dim", hidden / heads), json.integer("max_position_embeddings"),
          json.number("rms_norm_eps", 1e-6), theta, json.bool("tie_word_embeddings", false),
          type.equals("qwen2") || json.bool("attention_bias", false), json.bool("mlp_bias", false),
          type.equals("qwen3"));
    } catch (IllegalArgumentException e) {
      throw new IOException(configJson + ": " + e.getMessage(), e);
    }
  }

  /**
   * Gemma: RMSNorm scales by {@code 1 + w}, the token embeddings are multiplied by √H, and the gated MLP uses the
   * tanh GELU instead of SiLU.
   */
  boolean gemma() {
    return modelType.equals("gemma");
  }

  int kvGroups() {
    return numHeads / numKvHeads;
  }
}
