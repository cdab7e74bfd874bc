package dev.peft4j.model;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The fields of a RoBERTa or XLM-RoBERTa {@code config.json} that the architecture needs.
 *
 * @param modelType        {@code roberta} or {@code xlm-roberta} (the same graph)
 * @param vocabSize        {@code vocab_size}
 * @param hiddenSize       {@code hidden_size} (H)
 * @param numLayers        {@code num_hidden_layers}
 * @param numHeads         {@code num_attention_heads}; H must divide by it
 * @param intermediateSize {@code intermediate_size}
 * @param maxPositions     {@code max_position_embeddings}, counting the {@code padTokenId + 1} positions before the
 *                         first real one (514 for roberta-base: 512 tokens)
 * @param typeVocabSize    {@code type_vocab_size}
 * @param layerNormEps     {@code layer_norm_eps}
 * @param padTokenId       {@code pad_token_id}, also the position id of padding
 * @param numLabels        the classification head's labels ({@code id2label}'s size) when {@code architectures}
 *                         names a {@code …ForSequenceClassification}, else 0 (the bare encoder)
 */
public record RobertaConfig(String modelType, int vocabSize, int hiddenSize, int numLayers, int numHeads,
    int intermediateSize, int maxPositions, int typeVocabSize, double layerNormEps, int padTokenId, int numLabels) {

  public RobertaConfig {
    if (hiddenSize <= 0 || numHeads <= 0 || hiddenSize % numHeads != 0) {
      throw new IllegalArgumentException(String.format(
          "hidden_size (%s) must be a positive multiple of num_attention_heads (%s)", hiddenSize, numHeads));
    }
    if (vocabSize <= 0 || numLayers <= 0 || intermediateSize <= 0 || typeVocabSize <= 0 || numLabels < 0) {
      throw new IllegalArgumentException("RoBERTa sizes must be positive: " + this);
    }
    if (padTokenId < 0 || padTokenId + 1 >= maxPositions) {
      throw new IllegalArgumentException(String.format("max_position_embeddings (%s) leaves no position after "
          + "pad_token_id + 1 (%s)", maxPositions, padTokenId + 1));
    }
  }

  /**
   * Reads a {@code config.json} of model_type roberta or xlm-roberta.
   *
   * @throws IOException naming the file if it cannot be read, is not JSON, has another model_type, a missing
   *     field, or a {@code hidden_act} other than gelu
   */
  public static RobertaConfig read(Path configJson) throws IOException {
    JsonConfig json = JsonConfig.read(configJson);
    json.requireModelType("roberta", "xlm-roberta");
    json.requireString("hidden_act", "gelu");
    try {
      return new RobertaConfig(json.modelType(), json.integer("vocab_size"), json.integer("hidden_size"),
          json.integer("num_hidden_layers"), json.integer("num_attention_heads"), json.integer("intermediate_size"),
          json.integer("max_position_embeddings"), json.integer("type_vocab_size", 1),
          json.number("layer_norm_eps", 1e-5), json.integer("pad_token_id", 1), json.sequenceClassificationLabels());
    } catch (IllegalArgumentException e) {
      throw new IOException(configJson + ": " + e.getMessage(), e);
    }
  }

  /** Tokens per sequence the position table holds: {@code maxPositions − padTokenId − 1}. */
  public int maxTokens() {
    return maxPositions - padTokenId - 1;
  }

  int headDim() {
    return hiddenSize / numHeads;
  }
}
