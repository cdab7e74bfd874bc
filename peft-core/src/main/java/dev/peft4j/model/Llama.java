package dev.peft4j.model;

import static dev.peft4j.model.Layers.dimension;
import static dev.peft4j.model.Layers.linear;
import static dev.peft4j.model.Layers.longs;
import static dev.peft4j.model.Layers.rmsNorm;

import dev.peft4j.graph.ArrayHolders;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A Llama-family decoder (Llama, Mistral, Qwen2, Qwen3, Gemma) with a causal-LM head as a SameDiff graph, with Hugging
 * Face's module names ({@code model.layers.i.self_attn.q_proj}, {@code model.layers.i.mlp.gate_proj}, …).
 * <pre>
 *   input_ids, attention_mask: [b, s] INT64 placeholders;  x = embed_tokens[input_ids]           [b·s, H]
 *   per layer i ("model.layers.i."):
 *     h = RMSNorm(x)                                        "input_layernorm"
 *     q = h·Wq → [b·s·nh, d], k, v = h·Wk, h·Wv → [b·s·nkv, d]  "self_attn.{q,k,v}_proj"
 *     (qwen3) q, k = RMSNorm_d(q), RMSNorm_d(k)             "self_attn.{q,k}_norm"
 *     q, k = q·cos + rotate_half(q)·sin (positions 0..s−1, rotate_half(x) = [−x₂, x₁])
 *     k, v repeated nh/nkv times per head (grouped-query attention)                      [b, nh, s, d]
 *     scores = q·kᵀ/√d + mask, mask = 0 where key ≤ query and the key is a real token, else −1e9
 *     x = x + (softmax(scores)·v → [b·s, nh·d])·Wo          "self_attn.o_proj"
 *     x = x + (SiLU(h₂·Wg) ⊙ h₂·Wu)·Wd, h₂ = RMSNorm(x)     "post_attention_layernorm", "mlp.{gate,up,down}_proj"
 *   logits = RMSNorm(x)·W_lm    "model.norm", "lm_head" (or embed_tokenᵀ when tied)               [b, s, V]
 *   loss (with labels [b, s], −100 ignored) = mean next-token cross-entropy, as transformers shifts it
 *   Gemma: x = embed_tokens[input_ids]·√H; every RMSNorm scales by (1 + w); the MLP is GELU_tanh(h₂·Wg) ⊙ h₂·Wu
 * </pre>
 * Each layer's key and value states after RoPE and head repetition, {@code [b, nh, s, d]}, are named
 * {@code model.layers.i.self_attn.key_states} and {@code ...value_states}, and before the repetition
 * {@code [b, nkv, s, d]} {@code ...key_heads} and {@code ...value_heads} (what generation caches); the other
 * {@link Hooks} prompt learning splices into are named too.
 */
public final class Llama {

  public static final String INPUT_IDS = "input_ids";
  public static final String ATTENTION_MASK = "attention_mask";
  public static final String LABELS = "labels";
  public static final String LOGITS = "logits";
  public static final String LOSS = "loss";
  /** The label value that contributes nothing to the loss (padding, prompt tokens). */
  public static final long IGNORE_INDEX = -100;
  private static final String EMBED_TOKENS = "model.embed_tokens";
  /** The additive score of a key a query may not see. */
  private static final double MASKED = -1e9;

  private Llama() {}

  /**
   * Builds the decoder and its causal-LM loss with weights from {@code weights}.
   *
   * @throws IllegalArgumentException naming the tensor, if a weight is missing or has the wrong shape
   */
  public static SameDiff causalLm(LlamaConfig c, Weights weights) {
    return causalLm(c, weights, false);
  }

  /**
   * {@link #causalLm(LlamaConfig, Weights)}, or with {@code packed} a graph for packed sequences: several examples
   * in one row, {@code attention_mask} holding each token's example number 1, 2, … (0 for padding), a query seeing
   * only the earlier keys of its own example (a block-diagonal causal mask). Positions are not restarted per example:
   * rotary embeddings make q·k depend on the distance between the two positions only, so within an example the
   * attention is the same as at positions 0, 1, … (up to rounding), and no other part of the model reads positions.
   * A packed graph takes no prompt-learning method (their virtual tokens would have to repeat per example).
   *
   * @throws IllegalArgumentException naming the tensor, if a weight is missing or has the wrong shape
   */
  public static SameDiff causalLm(LlamaConfig c, Weights weights, boolean packed) {
    SameDiff sd = ArrayHolders.keepEachArrayOnce(SameDiff.create()); // no hidden second copy of each weight
    SDVariable last = decoder(sd, c, weights, packed).rename(Hooks.FINAL_HIDDEN_ROWS);  // [b·s, H]
    SDVariable seq = sd.getVariable(Hooks.SEQ_LEN);
    int h = c.hiddenSize();
    SDVariable logitRows = c.tieWordEmbeddings()
        ? sd.mmul(last, sd.getVariable(EMBED_TOKENS + ".weight"), false, true, false)    // [b·s, V]
        : linear(sd, weights, "lm_head", last, h, c.vocabSize(), false);
    SDVariable logitShape = sd.concat(0, longs(sd, -1), seq, longs(sd, c.vocabSize())).rename(Hooks.LOGITS_SHAPE);
    sd.reshape(LOGITS, logitRows, logitShape);
    causalLmLoss(sd, logitRows, seq, c.vocabSize());
    sd.setOutputs(LOGITS, LOSS);
    return sd;
  }

  /**
   * The decoder without a head ({@code LlamaModel}): placeholders, embeddings, layers and the final norm, the hooks
   * declared.
   *
   * @return the final norm's output rows {@code [b·s, H]}
   */
  static SDVariable decoder(SameDiff sd, LlamaConfig c, Weights weights) {
    return decoder(sd, c, weights, false);
  }

  /** {@link #decoder(SameDiff, LlamaConfig, Weights)}, packed as {@link #causalLm(LlamaConfig, Weights, boolean)}. */
  static SDVariable decoder(SameDiff sd, LlamaConfig c, Weights weights, boolean packed) {
    int h = c.hiddenSize();
    int nh = c.numHeads();
    int nkv = c.numKvHeads();
    int d = c.headDim();
    SDVariable ids = sd.placeHolder(INPUT_IDS, DataType.INT64, -1, -1);                 // [b, s]
    SDVariable mask = sd.placeHolder(ATTENTION_MASK, DataType.INT64, -1, -1);           // [b, s]
    SDVariable seq = dimension(sd, sd.shape(ids), 1).rename(Hooks.SEQ_LEN);             // [1] = s
    SDVariable offset = sd.zerosLike(Hooks.POSITION_OFFSET, seq);                       // [1] = 0

    SDVariable embedding = param(sd, weights, EMBED_TOKENS + ".weight", c.vocabSize(), h);
    SDVariable rows = sd.gather(embedding, sd.reshape(ids, -1), 0);                      // [b·s, H]
    // Gemma's embedding module scales its own output, so virtual tokens spliced after it are not scaled (as in HF)
    SDVariable x = (c.gemma() ? rows.mul(Math.sqrt(h)) : rows).rename(Hooks.INPUTS_EMBEDS); // [b·s, H]

    // rotary tables for positions offset..offset+s−1, broadcast over batch and heads: [s, 1, d]
    SDVariable start = sd.concat(0, offset, longs(sd, 0));
    SDVariable cos = sd.reshape(sd.slice(sd.constant(Hooks.ROPE_COS_TABLE, rope(c, true)), start,
        sd.concat(0, seq, longs(sd, d))), sd.concat(0, seq, longs(sd, 1, d))).rename(Hooks.ROPE_COS);
    SDVariable sin = sd.reshape(sd.slice(sd.constant(Hooks.ROPE_SIN_TABLE, rope(c, false)), start,
        sd.concat(0, seq, longs(sd, d))), sd.concat(0, seq, longs(sd, 1, d))).rename(Hooks.ROPE_SIN);
    SDVariable rotateHalf = sd.constant("rope_rotate_half", rotateHalf(d));              // [d, d]

    // additive mask [b, 1, s, s]: 0 where causal ∧ real key (∧ same example when packed), else −1e9
    SDVariable causal = causalMask(sd, longs(sd, 0), seq, seq).rename(Hooks.CAUSAL_MASK); // [s, s]
    SDVariable keyMask = (packed ? sd.neq(mask, 0L) : mask).castTo(DataType.FLOAT).rename(Hooks.KEY_MASK); // [b, s]
    SDVariable keys = sd.expandDims(sd.expandDims(keyMask, 1), 1);                      // [b, 1, 1, s]
    SDVariable allowed = causal.mul(keys);                                              // [b, 1, s, s]
    if (packed) { // and the key belongs to the query's example
      SDVariable example = sd.expandDims(mask.castTo(DataType.FLOAT), 1);               // [b, 1, s]
      SDVariable same = sd.eq(sd.expandDims(example, 3), sd.expandDims(example, 2));    // [b, 1, s, s]
      allowed = allowed.mul(same.castTo(DataType.FLOAT)).rename(Hooks.PACKED_EXAMPLES);
    }
    // −1e9, not −MAX_VALUE: ND4J M2.1's softmax turns a row of −MAX_VALUE into NaN, and a left pad's query row is
    // masked whole; its NaN value would then reach the real tokens through 0·NaN (transformers gives it a uniform row)
    SDVariable additiveMask = allowed.rsub(1.0).mul(MASKED);                            // [b, 1, s, s]

    SDVariable qHeads = sd.concat(0, longs(sd, -1), seq, longs(sd, nh, d));             // [-1, s, nh, d]
    SDVariable kvHeads = sd.concat(0, longs(sd, -1), seq, longs(sd, nkv, d));           // [-1, s, nkv, d]
    for (int i = 0; i < c.numLayers(); i++) {
      String p = "model.layers." + i + ".";
      SDVariable normed = rmsNorm(sd, weights, p + "input_layernorm", x, h, c.rmsNormEps(), c.gemma());
      SDVariable q = linear(sd, weights, p + "self_attn.q_proj", normed, h, nh * d, c.qkvBias());  // [b·s, nh·d]
      SDVariable k = linear(sd, weights, p + "self_attn.k_proj", normed, h, nkv * d, c.qkvBias());  // [b·s, nkv·d]
      SDVariable v = linear(sd, weights, p + "self_attn.v_proj", normed, h, nkv * d, c.qkvBias());  // [b·s, nkv·d]
      if (c.qkNorm()) {
        q = sd.reshape(rmsNorm(sd, weights, p + "self_attn.q_norm", sd.reshape(q, -1, d), d, c.rmsNormEps()), -1, nh * d);
        k = sd.reshape(rmsNorm(sd, weights, p + "self_attn.k_norm", sd.reshape(k, -1, d), d, c.rmsNormEps()),
            -1, nkv * d);
      }
      SDVariable qRot = rope(sd, q, qHeads, cos, sin, rotateHalf, d);                   // [b, s, nh, d]
      SDVariable kRot = rope(sd, k, kvHeads, cos, sin, rotateHalf, d);                  // [b, s, nkv, d]
      SDVariable qh = sd.permute(qRot, 0, 2, 1, 3);                                     // [b, nh, s, d]
      SDVariable kHeads = sd.permute(kRot, 0, 2, 1, 3).rename(p + "self_attn." + Hooks.KEY_HEADS);  // [b, nkv, s, d]
      SDVariable vHeads = sd.permute(sd.reshape(v, kvHeads), 0, 2, 1, 3).rename(p + "self_attn." + Hooks.VALUE_HEADS);
      SDVariable kh = repeatHeads(sd, kHeads, c).rename(p + "self_attn.key_states");     // [b, nh, s, d]
      SDVariable vh = repeatHeads(sd, vHeads, c).rename(p + "self_attn.value_states");
      // Kᵀ as its own permute and 1/√d on q, as in Bert (faster in ND4J M2.1 than transposeB and scaled scores)
      SDVariable scores = sd.mmul(qh.mul(1 / Math.sqrt(d)), sd.permute(kh, 0, 1, 3, 2)).add(additiveMask); // [b,nh,s,s]
      SDVariable context = sd.mmul(sd.nn.softmax(scores, 3), vh);                       // [b, nh, s, d]
      SDVariable merged = sd.reshape(sd.permute(context, 0, 2, 1, 3), -1, nh * d);      // [b·s, nh·d]
      x = x.add(linear(sd, weights, p + "self_attn.o_proj", merged, nh * d, h, false));
      SDVariable normed2 = rmsNorm(sd, weights, p + "post_attention_layernorm", x, h, c.rmsNormEps(), c.gemma());
      int inner = c.intermediateSize();
      SDVariable gate = linear(sd, weights, p + "mlp.gate_proj", normed2, h, inner, c.mlpBias());  // [b·s, I]
      SDVariable up = linear(sd, weights, p + "mlp.up_proj", normed2, h, inner, c.mlpBias());      // [b·s, I]
      SDVariable gated = c.gemma() ? Layers.geluTanh(sd, gate) : gate.mul(sd.nn.sigmoid(gate));  // [b·s, I]
      SDVariable activated = gated.mul(up);                                              // SwiGLU (GeGLU: Gemma)
      x = x.add(linear(sd, weights, p + "mlp.down_proj", activated, inner, h, c.mlpBias()));
      if (i < c.numLayers() - 1) {
        x = x.rename(p + Hooks.LAYER_OUTPUT);                                            // [b·s, H]
      }
    }
    Hooks.declare(sd, new Hooks.Dims(c.numLayers(), nh, nkv, d, h, c.maxPositions()));
    return rmsNorm(sd, weights, "model.norm", x, h, c.rmsNormEps(), c.gemma());         // [b·s, H]
  }

  /** Next-token cross-entropy: row t predicts label t+1; labels equal to −100 (and the last position) count 0. */
  static void causalLmLoss(SameDiff sd, SDVariable logitRows, SDVariable seq, int vocab) {
    SDVariable labels = sd.identity(Hooks.LOSS_LABELS, sd.placeHolder(LABELS, DataType.INT64, -1, -1)); // [b, s]
    SDVariable next = sd.stridedSlice(labels, new long[] {0, 1}, new long[] {0, 0}, new long[] {1, 1},
        1, 3, 0, 0, 0);                                                                 // [b, s−1] = labels[:, 1:]
    SDVariable column = sd.fill(sd.concat(0, dimension(sd, sd.shape(labels), 0), longs(sd, 1)), DataType.INT64,
        IGNORE_INDEX);                                                                  // [b, 1]
    SDVariable target = sd.reshape(sd.concat(1, next, column), -1);                     // [b·s]
    SDVariable counted = sd.neq(target, IGNORE_INDEX).castTo(DataType.FLOAT);           // [b·s]
    SDVariable safeTarget = target.mul(counted.castTo(DataType.INT64));                 // −100 → 0
    SDVariable logProbabilities = Heads.logSoftmax(sd, logitRows);                      // [b·s, V]
    SDVariable picked = logProbabilities.mul(sd.oneHot(safeTarget, vocab, -1, 1.0, 0.0, DataType.FLOAT)).sum(1);
    picked.mul(counted).sum().div(counted.sum()).neg(LOSS);
    sd.setLossVariables(LOSS);
  }

  /** Rows {@code [b·s, n·d]} → heads {@code [b, s, n, d]} rotated: {@code x·cos + rotate_half(x)·sin}. */
  private static SDVariable rope(SameDiff sd, SDVariable rows, SDVariable headShape, SDVariable cos, SDVariable sin,
      SDVariable rotateHalf, int d) {
    SDVariable heads = sd.reshape(rows, headShape);                                     // [b, s, n, d]
    SDVariable rotated = sd.reshape(sd.reshape(rows, -1, d).mmul(rotateHalf), headShape);
    return heads.mul(cos).add(rotated.mul(sin));
  }

  /**
   * {@code [b, nkv, s, d]} → {@code [b, nh, s, d]}, query head j reading key/value head j / (nh/nkv). The length is
   * read from the heads themselves (not seq_len): generation splices cached positions in before the repetition.
   */
  private static SDVariable repeatHeads(SameDiff sd, SDVariable heads, LlamaConfig c) {
    if (c.kvGroups() == 1) {
      return sd.identity(heads);
    }
    SDVariable length = dimension(sd, sd.shape(heads), 2);                              // [1] = s
    SDVariable tiled = sd.tile(sd.expandDims(heads, 2), 1, 1, c.kvGroups(), 1, 1);     // [b, nkv, g, s, d]
    return sd.reshape(tiled, sd.concat(0, longs(sd, -1, c.numHeads()), length, longs(sd, c.headDim())));
  }

  /** cos or sin of {@code position · θ^(−2j/d)}, duplicated across the two halves: {@code [maxPositions, d]}. */
  private static INDArray rope(LlamaConfig c, boolean cosine) {
    int d = c.headDim();
    float[] table = new float[c.maxPositions() * d];
    for (int pos = 0; pos < c.maxPositions(); pos++) {
      for (int j = 0; j < d / 2; j++) {
        double angle = pos * Math.pow(c.ropeTheta(), -2.0 * j / d);
        float value = (float) (cosine ? Math.cos(angle) : Math.sin(angle));
        table[pos * d + j] = value;
        table[pos * d + j + d / 2] = value;
      }
    }
    return Nd4j.create(table, new long[] {c.maxPositions(), d}, 'c');
  }

  /** R with {@code x·R = rotate_half(x) = [−x[d/2:], x[:d/2]]}. */
  private static INDArray rotateHalf(int d) {
    INDArray r = Nd4j.zeros(DataType.FLOAT, d, d);
    for (int j = 0; j < d / 2; j++) {
      r.putScalar(j + d / 2, j, -1);
      r.putScalar(j, j + d / 2, 1);
    }
    return r;
  }

  /**
   * Rows {@code firstRow … firstRow+rows−1} of the causal mask over keys {@code 0 … columns−1}: 1 where
   * {@code key ≤ row}, else 0, {@code [rows, columns]} FLOAT, from the sizes at run time. Not a slice of a
   * {@code [positions, positions]} constant: at Qwen3's 40,960 positions that table alone is 6.25 GiB.
   *
   * @param firstRow the first row's query position, {@code [1]} INT64
   * @param rows the number of query rows, {@code [1]} INT64
   * @param columns the number of keys, {@code [1]} INT64
   */
  public static SDVariable causalMask(SameDiff sd, SDVariable firstRow, SDVariable rows, SDVariable columns) {
    SDVariable query = counting(sd, rows).add(firstRow.castTo(DataType.FLOAT));        // [rows]
    SDVariable key = counting(sd, columns);                                             // [columns]
    return sd.lte(sd.expandDims(key, 0), sd.expandDims(query, 1)).castTo(DataType.FLOAT); // [rows, columns]
  }

  /** {@code 0, 1, …, n−1} as FLOAT (exact below 2²⁴), {@code n} a {@code [1]} INT64 size. */
  private static SDVariable counting(SameDiff sd, SDVariable n) {
    return sd.cumsum(sd.fill(n, DataType.FLOAT, 1.0), 0).sub(1.0);
  }

  private static SDVariable param(SameDiff sd, Weights weights, String name, long... shape) {
    return sd.var(name, Layers.shaped(weights.tensor(name), name, shape));
  }
}
