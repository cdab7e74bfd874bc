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
 * A BERT encoder (Hugging Face's {@code BertModel}, with its pooler when the checkpoint has one) as a SameDiff graph with Hugging Face's module
 * names, so {@code target("query", "value")} means what it means in Hugging Face PEFT.
 * <pre>
 *   input_ids, token_type_ids, attention_mask: [b, s] INT64            (placeholders)
 *   x = LayerNorm(word[input_ids] + position[0..s) + token_type[token_type_ids])   "embeddings.*"       [b·s, H]
 *   per layer i ("encoder.layer.i."):
 *     q, k, v = x·Wq + bq, x·Wk + bk, x·Wv + bv      "attention.self.{query,key,value}"            [b·s, H]
 *     heads: [b, nh, s, d]; scores = q·kᵀ/√d + (1 − mask)·min_float; p = softmax(scores)           [b, nh, s, s]
 *     ctx = p·v → [b·s, H];  x = LayerNorm(x + ctx·Wo + bo)  "attention.output.{dense,LayerNorm}"
 *     x = LayerNorm(x + GELU(x·W1 + b1)·W2 + b2)     "intermediate.dense", "output.{dense,LayerNorm}"
 *   last_hidden_state: [b, s, H]
 *   pooler_output = tanh(last_hidden_state[:, 0]·Wp + bp)   "pooler.dense", only if the checkpoint has it   [b, H]
 * </pre>
 * Linear layers work on 2-D {@code [b·s, H]} rows; only attention uses the 4-D head layout. Each layer's key and
 * value states, {@code [b, nh, s, d]}, are named {@code encoder.layer.i.attention.self.key_states} and
 * {@code ...value_states} for methods that act on them (prefix tuning, IA³); the other {@link Hooks} prompt learning
 * splices into are named too.
 */
public final class Bert {

  public static final String INPUT_IDS = "input_ids";
  public static final String ATTENTION_MASK = "attention_mask";
  public static final String TOKEN_TYPE_IDS = "token_type_ids";
  public static final String LAST_HIDDEN_STATE = "last_hidden_state";
  /** The encoder output as rows, {@code [b·s, H]}; what heads read. */
  public static final String HIDDEN_ROWS = "hidden_rows";
  /** {@code BertPooler}'s output, {@code [b, H]}, when the model has a pooler. */
  public static final String POOLER_OUTPUT = "pooler_output";
  /** The pooler's linear module, as in {@code BertModel}. */
  public static final String POOLER = "pooler.dense";

  private Bert() {}

  /**
   * Builds the encoder with weights from {@code weights}.
   *
   * @throws IllegalArgumentException naming the tensor, if a weight is missing or has the wrong shape
   */
  public static SameDiff encoder(BertConfig config, Weights weights) {
    return encoder(config, weights, "", weights.has(POOLER + ".weight"));
  }

  /**
   * Builds the encoder with every module named {@code prefix + <name>}, as a task model names it
   * ({@code "bert."} in {@code BertForSequenceClassification}); weights are looked up under either name, so a bare
   * {@code BertModel} checkpoint feeds a task model and the other way round. With {@code pooler}, the pooler too.
   */
  static SameDiff encoder(BertConfig config, Weights checkpoint, String prefix, boolean pooler) {
    Weights weights = prefix.isEmpty() ? checkpoint : new PrefixedWeights(prefix, checkpoint);
    SameDiff sd = ArrayHolders.keepEachArrayOnce(SameDiff.create()); // no hidden second copy of each weight
    int h = config.hiddenSize();
    SDVariable ids = sd.placeHolder(INPUT_IDS, DataType.INT64, -1, -1);                // [b, s]
    SDVariable mask = sd.placeHolder(ATTENTION_MASK, DataType.INT64, -1, -1);          // [b, s]
    SDVariable types = sd.placeHolder(TOKEN_TYPE_IDS, DataType.INT64, -1, -1);         // [b, s]
    SDVariable seq = dimension(sd, sd.shape(ids), 1).rename(Hooks.SEQ_LEN);            // [1] = s
    SDVariable offset = sd.zerosLike(Hooks.POSITION_OFFSET, seq);                      // [1] = 0

    SDVariable words = sd.gather(param(sd, weights, prefix + "embeddings.word_embeddings.weight",
        config.vocabSize(), h), sd.reshape(ids, -1), 0).rename(Hooks.INPUTS_EMBEDS);  // [b·s, H]
    SDVariable typeEmbeddings = sd.gather(param(sd, weights, prefix + "embeddings.token_type_embeddings.weight",
        config.typeVocabSize(), h), sd.reshape(types, -1).rename(Hooks.TOKEN_TYPE_ROWS), 0); // [b·s, H]
    SDVariable positions = sd.slice(param(sd, weights, prefix + "embeddings.position_embeddings.weight",
        config.maxPositions(), h), sd.concat(0, offset, longs(sd, 0)), sd.concat(0, seq, longs(sd, h))); // [s, H]
    SDVariable rows3 = sd.concat(0, longs(sd, -1), seq, longs(sd, h));                 // shape [-1, s, H]
    SDVariable embedded = sd.reshape(sd.reshape(words.add(typeEmbeddings), rows3).add(positions), -1, h);
    SDVariable x = layerNorm(sd, weights, prefix + "embeddings.LayerNorm", embedded, h,
        config.layerNormEps());                                                        // [b·s, H]

    // additive mask, as transformers builds it: 0 on real tokens, the most negative float on padding
    SDVariable keyMask = mask.castTo(DataType.FLOAT).rename(Hooks.KEY_MASK);          // [b, s]
    x = PostLnLayers.apply(sd, weights, PostLnLayers.Names.BERT.under(prefix), config.numLayers(), h,
        config.numHeads(), config.intermediateSize(), config.layerNormEps(), x,
        PostLnLayers.additiveKeyMask(sd, keyMask), seq);
    x = x.rename(HIDDEN_ROWS);
    SDVariable last = sd.reshape(LAST_HIDDEN_STATE, x, rows3);                         // [b, s, H]
    sd.setOutputs(LAST_HIDDEN_STATE);
    if (pooler) {
      pooler(sd, weights, prefix + POOLER, last, h);
      sd.setOutputs(LAST_HIDDEN_STATE, POOLER_OUTPUT);
    }
    Hooks.declare(sd, new Hooks.Dims(config.numLayers(), config.numHeads(), config.numHeads(), config.headDim(), h,
        config.maxPositions()));
    return sd;
  }

  /**
   * {@code BertPooler}: {@code tanh(h[:, 0] · W + b)}, module {@code module}, output {@value #POOLER_OUTPUT}
   * {@code [b, H]}.
   */
  static SDVariable pooler(SameDiff sd, Weights weights, String module, SDVariable lastHidden, int h) {
    SDVariable first = Heads.firstToken(sd, lastHidden, h);                            // [b, H]: h[:, 0]
    SDVariable dense = linear(sd, weights, module, first, h, h, true);                // [b, H]
    return sd.math.tanh(POOLER_OUTPUT, dense);
  }

  private static SDVariable param(SameDiff sd, Weights weights, String name, long... shape) {
    return sd.var(name, Layers.shaped(weights.tensor(name), name, shape));
  }
}
