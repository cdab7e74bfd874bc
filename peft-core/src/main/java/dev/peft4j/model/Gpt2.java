package dev.peft4j.model;

import static dev.peft4j.model.Layers.conv1d;
import static dev.peft4j.model.Layers.dimension;
import static dev.peft4j.model.Layers.geluTanh;
import static dev.peft4j.model.Layers.layerNorm;
import static dev.peft4j.model.Layers.longs;

import dev.peft4j.graph.ArrayHolders;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * GPT-2 with its language-model head (Hugging Face's {@code GPT2LMHeadModel}) as a SameDiff graph with Hugging Face's
 * module names. Its linear layers are Hugging Face {@code Conv1D}s, stored {@code [in, out]} in the checkpoint (used
 * as they are; {@link Conv1dModules} records them).
 * <pre>
 *   input_ids, attention_mask: [b, s] INT64 placeholders
 *   x = wte[input_ids] + wpe[0..s)                         "transformer.{wte,wpe}"                  [b·s, H]
 *   per layer i ("transformer.h.i."):
 *     q | k | v = LayerNorm(x)·W_attn + b_attn             "ln_1", "attn.c_attn" (fused, [H, 3H])   [b·s, 3H]
 *     scores = q·kᵀ/√d + mask, mask = 0 where key ≤ query and the key is a real token, else min_float
 *     x = x + (softmax(scores)·v → [b·s, H])·W_o + b_o     "attn.c_proj"
 *     x = x + GELU_tanh(LayerNorm(x)·W_fc + b_fc)·W_p + b_p "ln_2", "mlp.c_fc", "mlp.c_proj"
 *   logits = LayerNorm(x)·wteᵀ                             "transformer.ln_f"; lm_head tied to wte   [b, s, V]
 *   loss (with labels [b, s], −100 ignored) = mean next-token cross-entropy, as in {@link Llama}
 * </pre>
 * Each layer's key and value states, {@code [b, nh, s, d]}, are named {@code transformer.h.i.attn.key_states} and
 * {@code ...value_states}. Prompt-learning hooks are not declared (prompt learning refuses this graph).
 */
public final class Gpt2 {

  public static final String INPUT_IDS = "input_ids";
  public static final String ATTENTION_MASK = "attention_mask";
  public static final String LABELS = "labels";
  public static final String LOGITS = "logits";
  public static final String LOSS = "loss";

  private Gpt2() {}

  /**
   * Builds the decoder and its causal-LM loss with weights from {@code weights}.
   *
   * @throws IllegalArgumentException naming the tensor, if a weight is missing or has the wrong shape
   */
  public static SameDiff causalLm(Gpt2Config c, Weights weights) {
    SameDiff sd = ArrayHolders.keepEachArrayOnce(SameDiff.create()); // no hidden second copy of each weight
    int h = c.hidden();
    int nh = c.numHeads();
    int d = c.headDim();
    double eps = c.layerNormEps();
    SDVariable ids = sd.placeHolder(INPUT_IDS, DataType.INT64, -1, -1);                 // [b, s]
    SDVariable mask = sd.placeHolder(ATTENTION_MASK, DataType.INT64, -1, -1);           // [b, s]
    SDVariable seq = dimension(sd, sd.shape(ids), 1).rename(Hooks.SEQ_LEN);             // [1] = s

    SDVariable wte = param(sd, weights, "transformer.wte.weight", c.vocabSize(), h);
    SDVariable words = sd.gather(wte, sd.reshape(ids, -1), 0);                          // [b·s, H]
    SDVariable positions = sd.slice(param(sd, weights, "transformer.wpe.weight", c.maxPositions(), h),
        longs(sd, 0, 0), sd.concat(0, seq, longs(sd, h)));                              // [s, H]
    SDVariable rows3 = sd.concat(0, longs(sd, -1), seq, longs(sd, h));                  // shape [-1, s, H]
    SDVariable x = sd.reshape(sd.reshape(words, rows3).add(positions), -1, h);          // [b·s, H]

    // additive mask [b, 1, s, s]: causal ∧ real key, else the most negative float (as Llama)
    SDVariable causal = Llama.causalMask(sd, longs(sd, 0), seq, seq).rename(Hooks.CAUSAL_MASK); // [s, s]
    SDVariable keyMask = mask.castTo(DataType.FLOAT).rename(Hooks.KEY_MASK);            // [b, s]
    SDVariable keys = sd.expandDims(sd.expandDims(keyMask, 1), 1);                      // [b, 1, 1, s]
    SDVariable additiveMask = causal.mul(keys).rsub(1.0).mul(-Float.MAX_VALUE);         // [b, 1, s, s]

    SDVariable headShape = sd.concat(0, longs(sd, -1), seq, longs(sd, nh, d));          // [-1, s, nh, d]
    for (int i = 0; i < c.numLayers(); i++) {
      String p = "transformer.h." + i + ".";
      SDVariable qkv = conv1d(sd, weights, p + "attn.c_attn", layerNorm(sd, weights, p + "ln_1", x, h, eps), h,
          3L * h);                                                                      // [b·s, 3H]
      SDVariable q = heads(sd, columns(sd, qkv, 0, h), headShape);                      // [b, nh, s, d]
      SDVariable k = heads(sd, columns(sd, qkv, h, 2 * h), headShape).rename(p + "attn.key_states");
      SDVariable v = heads(sd, columns(sd, qkv, 2 * h, 3 * h), headShape).rename(p + "attn.value_states");
      // Kᵀ as its own permute and 1/√d on q, as in Bert (faster in ND4J M2.1 than transposeB and scaled scores)
      SDVariable scores = sd.mmul(q.mul(1 / Math.sqrt(d)), sd.permute(k, 0, 1, 3, 2)).add(additiveMask); // [b,nh,s,s]
      SDVariable context = sd.mmul(sd.nn.softmax(scores, 3), v);                        // [b, nh, s, d]
      SDVariable merged = sd.reshape(sd.permute(context, 0, 2, 1, 3), -1, h);           // [b·s, H]
      x = x.add(conv1d(sd, weights, p + "attn.c_proj", merged, h, h));
      SDVariable fc = conv1d(sd, weights, p + "mlp.c_fc", layerNorm(sd, weights, p + "ln_2", x, h, eps), h,
          c.inner());                                                                   // [b·s, I]
      x = x.add(conv1d(sd, weights, p + "mlp.c_proj", geluTanh(sd, fc), c.inner(), h));
      if (i < c.numLayers() - 1) {
        x = x.rename(p + Hooks.LAYER_OUTPUT);                                           // [b·s, H]
      }
    }
    SDVariable last = layerNorm(sd, weights, "transformer.ln_f", x, h, eps);            // [b·s, H]
    SDVariable logitRows = sd.mmul(last, wte, false, true, false);                      // [b·s, V]
    sd.reshape(LOGITS, logitRows, sd.concat(0, longs(sd, -1), seq, longs(sd, c.vocabSize())));
    Llama.causalLmLoss(sd, logitRows, seq, c.vocabSize());
    sd.setOutputs(LOGITS, LOSS);
    return sd;
  }

  /** Columns {@code [from, to)} of {@code rows [n, w]}: {@code [n, to − from]}. */
  private static SDVariable columns(SameDiff sd, SDVariable rows, long from, long to) {
    return sd.stridedSlice(rows, new long[] {0, from}, new long[] {0, to}, new long[] {1, 1}, 0b01, 0b01, 0, 0, 0);
  }

  /** {@code [b·s, H] → [b, nh, s, d]}. */
  private static SDVariable heads(SameDiff sd, SDVariable rows, SDVariable headShape) {
    return sd.permute(sd.reshape(rows, headShape), 0, 2, 1, 3);
  }

  private static SDVariable param(SameDiff sd, Weights weights, String name, long... shape) {
    return sd.var(name, Layers.shaped(weights.tensor(name), name, shape));
  }
}
