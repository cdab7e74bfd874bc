package dev.peft4j.model;

import static dev.peft4j.model.Layers.dimension;
import static dev.peft4j.model.Layers.layerNorm;
import static dev.peft4j.model.Layers.linear;
import static dev.peft4j.model.Layers.longs;

import dev.peft4j.graph.ArrayHolders;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * A RoBERTa / XLM-RoBERTa encoder (Hugging Face's {@code RobertaModel} without pooler), optionally with the
 * sequence-classification head of {@code RobertaForSequenceClassification}, as a SameDiff graph with Hugging Face's
 * module names. The layers are BERT's ({@code encoder.layer.i.attention.self.query}, …); the embeddings differ:
 * <pre>
 *   input_ids, attention_mask: [b, s] INT64 placeholders (no token_type_ids: every token has type 0)
 *   real = (input_ids ≠ pad)                                                             [b, s]
 *   position_ids = cumsum(real, axis 1)·real + pad   (transformers' create_position_ids_from_input_ids:
 *                                                     pad+1, pad+2, … on real tokens, pad on padding)
 *   x = LayerNorm(word[input_ids] + position[position_ids] + token_type[0])   "embeddings.*"       [b·s, H]
 *   layers as in {@link Bert}; last_hidden_state: [b, s, H]
 *   head (numLabels > 0): logits = tanh(x₀·Wd + bd)·Wo + bo on the first (&lt;s&gt;) token
 *                         "classifier.dense", "classifier.out_proj"                           [b, labels]
 * </pre>
 * The key and value states are named as in BERT. Prompt-learning hooks are not declared: RoBERTa's position ids
 * depend on the input ids, which virtual tokens do not have, so prompt learning refuses this graph.
 */
public final class Roberta {

  public static final String INPUT_IDS = "input_ids";
  public static final String ATTENTION_MASK = "attention_mask";
  public static final String LAST_HIDDEN_STATE = "last_hidden_state";
  /** The classification head's output, {@code [b, numLabels]}. */
  public static final String LOGITS = "logits";

  private Roberta() {}

  /**
   * Builds the encoder, with the classification head when {@code config.numLabels() > 0}, with weights from
   * {@code weights}.
   *
   * @throws IllegalArgumentException naming the tensor, if a weight is missing or has the wrong shape
   */
  public static SameDiff encoder(RobertaConfig config, Weights weights) {
    return encoder(config, weights, "");
  }

  /**
   * Builds the encoder with its modules named {@code prefix + <name>} ({@code roberta.encoder…}, as
   * {@code RobertaForSequenceClassification} names them, so adapter files carry Hugging Face's keys); the head stays
   * {@code classifier.dense}, {@code classifier.out_proj}.
   */
  static SameDiff encoder(RobertaConfig config, Weights checkpoint, String prefix) {
    Weights weights = prefix.isEmpty() ? checkpoint : new PrefixedWeights(prefix, checkpoint);
    SameDiff sd = ArrayHolders.keepEachArrayOnce(SameDiff.create()); // no hidden second copy of each weight
    int h = config.hiddenSize();
    SDVariable ids = sd.placeHolder(INPUT_IDS, DataType.INT64, -1, -1);                // [b, s]
    SDVariable mask = sd.placeHolder(ATTENTION_MASK, DataType.INT64, -1, -1);          // [b, s]
    SDVariable seq = dimension(sd, sd.shape(ids), 1).rename(Hooks.SEQ_LEN);            // [1] = s

    SDVariable real = sd.neq(ids, (double) config.padTokenId()).castTo(DataType.FLOAT); // [b, s]
    SDVariable positionIds = sd.cumsum(real, false, false, 1).mul(real).add(config.padTokenId())
        .castTo(DataType.INT64);                                                       // [b, s]
    SDVariable words = sd.gather(param(sd, weights, prefix + "embeddings.word_embeddings.weight", config.vocabSize(),
        h),
        sd.reshape(ids, -1), 0);                                                       // [b·s, H]
    SDVariable positions = sd.gather(param(sd, weights, prefix + "embeddings.position_embeddings.weight",
        config.maxPositions(), h), sd.reshape(positionIds, -1), 0);                    // [b·s, H]
    SDVariable typeZero = sd.slice(param(sd, weights, prefix + "embeddings.token_type_embeddings.weight",
        config.typeVocabSize(), h), new int[] {0, 0}, 1, h);                          // [1, H]
    SDVariable x = layerNorm(sd, weights, prefix + "embeddings.LayerNorm", words.add(positions).add(typeZero), h,
        config.layerNormEps());                                                        // [b·s, H]

    SDVariable keyMask = mask.castTo(DataType.FLOAT).rename(Hooks.KEY_MASK);          // [b, s]
    x = PostLnLayers.apply(sd, weights, PostLnLayers.Names.BERT.under(prefix), config.numLayers(), h,
        config.numHeads(), config.intermediateSize(), config.layerNormEps(), x, PostLnLayers.additiveKeyMask(sd, keyMask), seq);
    SDVariable hidden = sd.reshape(LAST_HIDDEN_STATE, x, sd.concat(0, longs(sd, -1), seq, longs(sd, h))); // [b,s,H]
    if (config.numLabels() == 0) {
      sd.setOutputs(LAST_HIDDEN_STATE);
      return sd;
    }
    SDVariable first = sd.stridedSlice(hidden, new long[] {0, 0, 0}, new long[] {0, 1, 0}, new long[] {1, 1, 1},
        0b101, 0b101, 0, 0, 0b010);                                                    // [b, H]: the <s> token
    SDVariable dense = sd.math.tanh(linear(sd, weights, "classifier.dense", first, h, h, true)); // [b, H]
    sd.identity(LOGITS, linear(sd, weights, "classifier.out_proj", dense, h, config.numLabels(), true)); // [b, L]
    sd.setOutputs(LAST_HIDDEN_STATE, LOGITS);
    return sd;
  }

  private static SDVariable param(SameDiff sd, Weights weights, String name, long... shape) {
    return sd.var(name, Layers.shaped(weights.tensor(name), name, shape));
  }
}
