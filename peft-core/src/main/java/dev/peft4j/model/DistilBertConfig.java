package dev.peft4j.model;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The fields of a DistilBERT {@code config.json} that the architecture needs (DistilBERT's LayerNorm eps is fixed
 * at 1e-12 in transformers, not a config field).
 *
 * @param vocabSize    {@code vocab_size}
 * @param dim          {@code dim} (H)
 * @param numLayers    {@code n_layers}
 * @param numHeads     {@code n_heads}; H must divide by it
 * @param hiddenDim    {@code hidden_dim}, the feed-forward width
 * @param maxPositions {@code max_position_embeddings}
 */
public record DistilBertConfig(int vocabSize, int dim, int numLayers, int numHeads, int hiddenDim, int maxPositions) {

  /** transformers' {@code DistilBertModel} LayerNorms: {@code nn.LayerNorm(dim, eps=1e-12)}. */
  static final double LAYER_NORM_EPS = 1e-12;

  public DistilBertConfig {
    if (dim <= 0 || numHeads <= 0 || dim % numHeads != 0) {
      throw new IllegalArgumentException(String.format("dim (%s) must be a positive multiple of n_heads (%s)", dim,
          numHeads));
    }
    if (vocabSize <= 0 || numLayers <= 0 || hiddenDim <= 0 || maxPositions <= 0) {
      throw new IllegalArgumentException("DistilBERT sizes must be positive: " + this);
    }
  }

  /**
   * Reads a {@code config.json} of model_type distilbert.
   *
   * @throws IOException naming the file if it cannot be read, is not JSON, has another model_type, a missing
   *     field, or an {@code activation} other than gelu
   */
  public static DistilBertConfig read(Path configJson) throws IOException {
    JsonConfig json = JsonConfig.read(configJson);
    json.requireModelType("distilbert");
    json.requireString("activation", "gelu");
    try {
      return new DistilBertConfig(json.integer("vocab_size"), json.integer("dim"), json.integer("n_layers"),
          json.integer("n_heads"), json.integer("hidden_dim"), json.integer("max_position_embeddings"));
    } catch (IllegalArgumentException e) {
      throw new IOException(configJson + ": " + e.getMessage(), e);
    }
  }
}
