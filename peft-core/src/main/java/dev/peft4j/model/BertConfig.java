package dev.peft4j.model;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The fields of a BERT {@code config.json} that the architecture needs.
 *
 * @param vocabSize        {@code vocab_size}
 * @param hiddenSize       {@code hidden_size} (H)
 * @param numLayers        {@code num_hidden_layers}
 * @param numHeads         {@code num_attention_heads}; H must divide by it
 * @param intermediateSize {@code intermediate_size}
 * @param maxPositions     {@code max_position_embeddings}
 * @param typeVocabSize    {@code type_vocab_size}
 * @param layerNormEps     {@code layer_norm_eps}
 */
public record BertConfig(int vocabSize, int hiddenSize, int numLayers, int numHeads, int intermediateSize,
    int maxPositions, int typeVocabSize, double layerNormEps) {

  public BertConfig {
    if (hiddenSize <= 0 || numHeads <= 0 || hiddenSize % numHeads != 0) {
      throw new IllegalArgumentException(String.format(
          "hidden_size (%s) must be a positive multiple of num_attention_heads (%s)", hiddenSize, numHeads));
    }
    if (vocabSize <= 0 || numLayers <= 0 || intermediateSize <= 0 || maxPositions <= 0 || typeVocabSize <= 0) {
      throw new IllegalArgumentException("BERT sizes must be positive: " + this);
    }
  }

  /** sentence-transformers/all-MiniLM-L6-v2's {@code config.json}. */
  public static BertConfig miniLm() {
    return new BertConfig(30522, 384, 6, 12, 1536, 512, 2, 1e-12);
  }

  /**
   * Reads a BERT-family {@code config.json} ({@code model_type} bert, roberta-free BERT variants).
   *
   * @throws IOException naming the file if it cannot be read, is not JSON, has another model_type, a missing
   *     field, or a {@code hidden_act} other than gelu
   */
  public static BertConfig read(Path configJson) throws IOException {
    JsonConfig json = JsonConfig.read(configJson);
    json.requireModelType("bert");
    json.requireString("hidden_act", "gelu");
    try {
      return new BertConfig(json.integer("vocab_size"), json.integer("hidden_size"),
          json.integer("num_hidden_layers"), json.integer("num_attention_heads"), json.integer("intermediate_size"),
          json.integer("max_position_embeddings"), json.integer("type_vocab_size"),
          json.number("layer_norm_eps", 1e-12));
    } catch (IllegalArgumentException e) {
      throw new IOException(configJson + ": " + e.getMessage(), e);
    }
  }

  int headDim() {
    return hiddenSize / numHeads;
  }
}
