package dev.peft4j.testing;

import dev.peft4j.model.Hooks;
import dev.peft4j.model.Mlp;
import java.util.Random;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/** Graphs small enough for the contract suite to run in milliseconds. */
public final class ToyModels {

  public static final int MLP_IN = 6;
  public static final int MLP_HIDDEN = 8;
  public static final int MLP_LAYERS = 2;
  public static final int CLASSES = 3;
  public static final int D = 8;
  public static final int FFN = 12;
  public static final int BLOCKS = 2;
  /** The token toy: vocabulary, width, heads (query / key-value, grouped), head width, layers, longest input. */
  public static final int VOCAB = 11;
  public static final int TOKEN_HIDDEN = 8;
  public static final int TOKEN_HEADS = 2;
  public static final int TOKEN_KV_HEADS = 1;
  public static final int TOKEN_HEAD_DIM = 4;
  public static final int TOKEN_LAYERS = 2;
  public static final int TOKEN_MAX_POSITIONS = 16;
  /** The placeholders of {@link #tokens}. */
  public static final String INPUT_IDS = "input_ids";
  public static final String ATTENTION_MASK = "attention_mask";

  private ToyModels() {}

  /** {@link Mlp#classifier}: modules {@code layers.0.fc}, {@code layers.1.fc}, {@code head}. */
  public static SameDiff mlp(DataType dataType) {
    return Mlp.classifier(MLP_IN, MLP_HIDDEN, MLP_LAYERS, CLASSES, dataType, 11);
  }

  /**
   * A two-block attention model over the rows of its input (the rows are one sequence), with decoder-style names:
   * {@code layers.i.self_attn.{q,k,v,o}_proj} (no bias on q, k, v), {@code layers.i.mlp.{up,down}_proj},
   * {@code layers.i.norm} (an element-wise scale: a module, but not a linear one) and {@code lm_head}.
   * <pre>
   *   h: [n, D]   q,k,v: [n, D]   scores: [n, n]   up: [n, FFN]   logits: [n, CLASSES]
   * </pre>
   */
  public static SameDiff attention(DataType dataType) {
    Random random = new Random(5);
    SameDiff sd = SameDiff.create();
    SDVariable h = sd.placeHolder(Mlp.INPUT, dataType, -1, D);
    SDVariable labels = sd.placeHolder(Mlp.LABELS, dataType, -1, CLASSES);
    for (int i = 0; i < BLOCKS; i++) {
      String p = "layers." + i + ".";
      SDVariable q = linear(sd, p + "self_attn.q_proj", h, D, D, false, dataType, random);        // [n, D]
      SDVariable k = linear(sd, p + "self_attn.k_proj", h, D, D, false, dataType, random);        // [n, D]
      SDVariable v = linear(sd, p + "self_attn.v_proj", h, D, D, false, dataType, random);        // [n, D]
      SDVariable scores = sd.nn.softmax(sd.mmul(q, k, false, true, false).mul(1 / Math.sqrt(D)), 1); // [n, n]
      SDVariable attn = linear(sd, p + "self_attn.o_proj", scores.mmul(v), D, D, true, dataType, random);
      h = h.add(attn).mul(sd.var(p + "norm.weight", Mlp.uniform(random, 1, dataType, D).addi(1)));  // [n, D]
      SDVariable up = sd.math.tanh(linear(sd, p + "mlp.up_proj", h, D, FFN, true, dataType, random)); // [n, FFN]
      h = h.add(linear(sd, p + "mlp.down_proj", up, FFN, D, true, dataType, random));             // [n, D]
    }
    SDVariable logits = linear(sd, "lm_head", h, D, CLASSES, true, dataType, random).rename(Mlp.LOGITS);
    sd.loss.softmaxCrossEntropy(Mlp.LOSS, labels, logits, null);
    sd.setLossVariables(Mlp.LOSS);
    sd.setOutputs(Mlp.LOGITS, Mlp.LOSS);
    return sd;
  }

  /**
   * A two-layer encoder over token ids with a mean-pooling classifier, carrying the prompt-learning {@link Hooks}
   * like {@code Bert.encoder}, with grouped-query attention (2 query heads share 1 key/value head) as in Llama.
   * <pre>
   *   input_ids, attention_mask: [b, s] INT64   labels: [b, CLASSES] one-hot
   *   x = embed[input_ids] + position[offset..offset+s)                                   [b·s, H]
   *   per layer: x = x + attention(x)·Wo   (q: [b, 2, s, 4], k, v: 1 head repeated to 2)
   *   last_hidden_state [b, s, H];  logits = mean over real tokens · W + b  "classifier"   [b, CLASSES]
   * </pre>
   */
  public static SameDiff tokens(DataType dataType) {
    Random random = new Random(7);
    int h = TOKEN_HIDDEN;
    int nh = TOKEN_HEADS;
    int nkv = TOKEN_KV_HEADS;
    int d = TOKEN_HEAD_DIM;
    SameDiff sd = SameDiff.create();
    SDVariable ids = sd.placeHolder(INPUT_IDS, DataType.INT64, -1, -1);                          // [b, s]
    SDVariable mask = sd.placeHolder(ATTENTION_MASK, DataType.INT64, -1, -1);                    // [b, s]
    SDVariable labels = sd.placeHolder(Mlp.LABELS, dataType, -1, CLASSES);
    SDVariable seq = sd.stridedSlice(sd.shape(ids), new long[] {1}, new long[] {2}, new long[] {1})
        .rename(Hooks.SEQ_LEN);                                                                  // [1]
    SDVariable offset = sd.zerosLike(Hooks.POSITION_OFFSET, seq);                                // [1]
    SDVariable words = sd.gather(sd.var("embed_tokens.weight", Mlp.uniform(random, 1, dataType, VOCAB, h)),
        sd.reshape(ids, -1), 0).rename(Hooks.INPUTS_EMBEDS);                                     // [b·s, H]
    SDVariable positions = sd.slice(sd.var("embed_positions.weight",
        Mlp.uniform(random, 1, dataType, TOKEN_MAX_POSITIONS, h)), sd.concat(0, offset, longs(sd, 0)),
        sd.concat(0, seq, longs(sd, h)));                                                        // [s, H]
    SDVariable rows3 = sd.concat(0, longs(sd, -1), seq, longs(sd, h));
    SDVariable x = sd.reshape(sd.reshape(words, rows3).add(positions), -1, h);                   // [b·s, H]
    SDVariable keyMask = mask.castTo(dataType).rename(Hooks.KEY_MASK);                          // [b, s]
    SDVariable additive = sd.expandDims(sd.expandDims(keyMask, 1), 1).rsub(1.0).mul(-1e9);      // [b, 1, 1, s]
    SDVariable qShape = sd.concat(0, longs(sd, -1), seq, longs(sd, nh, d));
    SDVariable kvShape = sd.concat(0, longs(sd, -1), seq, longs(sd, nkv, d));
    SDVariable repeated = sd.concat(0, longs(sd, -1, nh), seq, longs(sd, d));
    for (int i = 0; i < TOKEN_LAYERS; i++) {
      String p = "layers." + i + ".self_attn.";
      SDVariable q = sd.permute(sd.reshape(linear(sd, p + "q_proj", x, h, nh * d, false, dataType, random), qShape),
          0, 2, 1, 3);                                                                           // [b, nh, s, d]
      SDVariable k = sd.permute(sd.reshape(linear(sd, p + "k_proj", x, h, nkv * d, false, dataType, random),
          kvShape), 0, 2, 1, 3);                                                                 // [b, nkv, s, d]
      SDVariable v = sd.permute(sd.reshape(linear(sd, p + "v_proj", x, h, nkv * d, false, dataType, random),
          kvShape), 0, 2, 1, 3);
      k = sd.reshape(sd.tile(sd.expandDims(k, 2), 1, 1, nh / nkv, 1, 1), repeated).rename(p + Hooks.KEY_STATES);
      v = sd.reshape(sd.tile(sd.expandDims(v, 2), 1, 1, nh / nkv, 1, 1), repeated).rename(p + Hooks.VALUE_STATES);
      SDVariable scores = sd.mmul(q, k, false, true, false).mul(1 / Math.sqrt(d)).add(additive); // [b, nh, s, s]
      SDVariable context = sd.mmul(sd.nn.softmax(scores, 3), v);                                 // [b, nh, s, d]
      SDVariable merged = sd.reshape(sd.permute(context, 0, 2, 1, 3), -1, nh * d);               // [b·s, H]
      x = x.add(linear(sd, p + "o_proj", merged, nh * d, h, true, dataType, random));
    }
    SDVariable hidden = sd.reshape(Hooks.LAST_HIDDEN_STATE, x, rows3);                           // [b, s, H]
    SDVariable real = sd.expandDims(mask.castTo(dataType), 2);                                   // [b, s, 1]
    SDVariable pooled = hidden.mul(real).sum(1).div(real.sum(1));                                // [b, H]
    SDVariable logits = linear(sd, "classifier", pooled, h, CLASSES, true, dataType, random).rename(Mlp.LOGITS);
    sd.loss.softmaxCrossEntropy(Mlp.LOSS, labels, logits, null);
    sd.setLossVariables(Mlp.LOSS);
    sd.setOutputs(Mlp.LOGITS, Mlp.LOSS);
    Hooks.declare(sd, new Hooks.Dims(TOKEN_LAYERS, nh, nkv, d, h, TOKEN_MAX_POSITIONS));
    return sd;
  }

  private static SDVariable longs(SameDiff sd, long... values) {
    return sd.constant(Nd4j.createFromArray(values));
  }

  private static SDVariable linear(SameDiff sd, String module, SDVariable x, long in, long out, boolean bias,
      DataType dataType, Random random) {
    double bound = 1 / Math.sqrt(in);
    SDVariable y = x.mmul(sd.var(module + ".weight", Mlp.uniform(random, bound, dataType, in, out)));
    return bias ? y.add(sd.var(module + ".bias", Mlp.uniform(random, bound, dataType, out))) : y;
  }
}
