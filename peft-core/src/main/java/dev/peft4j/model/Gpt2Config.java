package dev.peft4j.model;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The fields of a GPT-2 {@code config.json} that the architecture needs.
 *
 * @param vocabSize    {@code vocab_size}
 * @param hidden       {@code n_embd} (H)
 * @param numLayers    {@code n_layer}
 * @param numHeads     {@code n_head}; H must divide by it
 * @param inner        {@code n_inner}, the MLP width (4·H when null, as transformers)
 * @param maxPositions {@code n_positions}
 * @param layerNormEps {@code layer_norm_epsilon}
 */
public record Gpt2Config(int vocabSize, int hidden, int numLayers, int numHeads, int inner, int maxPositions,
    double layerNormEps) {

  public Gpt2Config {
    if (hidden <= 0 || numHeads <= 0 || hidden % numHeads != 0) {
      throw new IllegalArgumentException(String.format("n_embd (%s) must be a positive multiple of n_head (%s)",
          hidden, numHeads));
    }
    if (vocabSize <= 0 || numLayers <= 0 || inner <= 0 || maxPositions <= 0) {
      throw new IllegalArgumentException("GPT-2 sizes must be positive: " + this);
    }
  }

  /**
   * Reads a {@code config.json} of model_type gpt2.
   *
   * @throws IOException naming the file if it cannot be read, is not JSON, has another model_type, a missing
   *     field, an {@code activation_function} other than gelu_new, or an attention variant peft4j does not build
   *     ({@code scale_attn_weights: false}, {@code scale_attn_by_inverse_layer_idx}, {@code add_cross_attention})
   */
  public static Gpt2Config read(Path configJson) throws IOException {
    JsonConfig json = JsonConfig.read(configJson);
    json.requireModelType("gpt2");
    json.requireString("activation_function", "gelu_new");
    for (String[] f : new String[][] {{"scale_attn_weights", "true"}, {"scale_attn_by_inverse_layer_idx", "false"},
        {"add_cross_attention", "false"}}) {
      boolean expected = Boolean.parseBoolean(f[1]);
      if (json.bool(f[0], expected) != expected) {
        throw new IOException(String.format("%s: %s %s is not supported; only %s", configJson, f[0], !expected,
            expected));
      }
    }
    try {
      int hidden = json.integer("n_embd");
      boolean innerGiven = json.has("n_inner");  // absent or null: 4·H
      return new Gpt2Config(json.integer("vocab_size"), hidden, json.integer("n_layer"), json.integer("n_head"),
          innerGiven ? json.integer("n_inner") : 4 * hidden, json.integer("n_positions"),
          json.number("layer_norm_epsilon", 1e-5));
    } catch (IllegalArgumentException e) {
      throw new IOException(configJson + ": " + e.getMessage(), e);
    }
  }

  int headDim() {
    return hidden / numHeads;
  }
}
