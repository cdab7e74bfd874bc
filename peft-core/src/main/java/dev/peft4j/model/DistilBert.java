package dev.peft4j.model;

import static dev.peft4j.model.Layers.dimension;
import static dev.peft4j.model.Layers.layerNorm;
import static dev.peft4j.model.Layers.longs;

import dev.peft4j.graph.ArrayHolders;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * A DistilBERT encoder (Hugging Face's {@code DistilBertModel}) as a SameDiff graph with Hugging Face's module names.
 * <pre>
 *   input_ids, attention_mask: [b, s] INT64 placeholders (DistilBERT has no token types)
 *   x = LayerNorm(word[input_ids] + position[0..s))                   "embeddings.*"                   [b·s, H]
 *   per layer i ("transformer.layer.i."): BERT's post-LayerNorm layer under DistilBERT's names
 *     "attention.{q_lin,k_lin,v_lin,out_lin}", "sa_layer_norm", "ffn.{lin1,lin2}" (GELU), "output_layer_norm"
 *   last_hidden_state: [b, s, H]
 * </pre>
 * Each layer's key and value states, {@code [b, nh, s, d]}, are named {@code transformer.layer.i.attention.key_states}
 * and {@code ...value_states}. Prompt-learning hooks are not declared (prompt learning refuses this graph).
 */
public final class DistilBert {

  public static final String INPUT_IDS = "input_ids";
  public static final String ATTENTION_MASK = "attention_mask";
  public static final String LAST_HIDDEN_STATE = "last_hidden_state";

  private DistilBert() {}

  /**
   * Builds the encoder with weights from {@code weights}.
   *
   * @throws IllegalArgumentException naming the tensor, if a weight is missing or has the wrong shape
   */
  public static SameDiff encoder(DistilBertConfig config, Weights weights) {
    SameDiff sd = ArrayHolders.keepEachArrayOnce(SameDiff.create()); // no hidden second copy of each weight
    int h = config.dim();
    SDVariable ids = sd.placeHolder(INPUT_IDS, DataType.INT64, -1, -1);                // [b, s]
    SDVariable mask = sd.placeHolder(ATTENTION_MASK, DataType.INT64, -1, -1);          // [b, s]
    SDVariable seq = dimension(sd, sd.shape(ids), 1).rename(Hooks.SEQ_LEN);            // [1] = s

    SDVariable words = sd.gather(param(sd, weights, "embeddings.word_embeddings.weight", config.vocabSize(), h),
        sd.reshape(ids, -1), 0);                                                       // [b·s, H]
    SDVariable positions = sd.slice(param(sd, weights, "embeddings.position_embeddings.weight",
        config.maxPositions(), h), longs(sd, 0, 0), sd.concat(0, seq, longs(sd, h)));  // [s, H]
    SDVariable rows3 = sd.concat(0, longs(sd, -1), seq, longs(sd, h));                 // shape [-1, s, H]
    SDVariable embedded = sd.reshape(sd.reshape(words, rows3).add(positions), -1, h);  // [b·s, H]
    SDVariable x = layerNorm(sd, weights, "embeddings.LayerNorm", embedded, h, DistilBertConfig.LAYER_NORM_EPS);

    SDVariable keyMask = mask.castTo(DataType.FLOAT).rename(Hooks.KEY_MASK);          // [b, s]
    x = PostLnLayers.apply(sd, weights, PostLnLayers.Names.DISTILBERT, config.numLayers(), h, config.numHeads(),
        config.hiddenDim(), DistilBertConfig.LAYER_NORM_EPS, x, PostLnLayers.additiveKeyMask(sd, keyMask), seq);
    sd.reshape(LAST_HIDDEN_STATE, x, rows3);                                           // [b, s, H]
    sd.setOutputs(LAST_HIDDEN_STATE);
    return sd;
  }

  private static SDVariable param(SameDiff sd, Weights weights, String name, long... shape) {
    return sd.var(name, Layers.shaped(weights.tensor(name), name, shape));
  }
}
