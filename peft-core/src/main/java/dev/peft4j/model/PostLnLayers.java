package dev.peft4j.model;

import static dev.peft4j.model.Layers.gelu;
import static dev.peft4j.model.Layers.layerNorm;
import static dev.peft4j.model.Layers.linear;
import static dev.peft4j.model.Layers.longs;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The post-LayerNorm encoder layers BERT, RoBERTa and DistilBERT share; only the module names differ.
 * <pre>
 *   per layer i (prefix "{layers}.i."):
 *     q, k, v = x·Wq + bq, x·Wk + bk, x·Wv + bv                                            [b·s, H]
 *     heads: [b, nh, s, d]; scores = q·kᵀ/√d + additive mask; p = softmax(scores)         [b, nh, s, s]
 *     x = LayerNorm(x + (p·v → [b·s, H])·Wo + bo)
 *     x = LayerNorm(x + GELU(x·W1 + b1)·W2 + b2)
 * </pre>
 */
final class PostLnLayers {

  /**
   * The module names of one layer, relative to its prefix.
   *
   * @param layers    the prefix before the layer index ({@code encoder.layer})
   * @param keyStates the name of the key states {@code [b, nh, s, d]} (value states: with {@code value} for
   *                  {@code key}), for methods that act on them
   */
  record Names(String layers, String query, String key, String value, String attentionOut, String attentionNorm,
      String ffnIn, String ffnOut, String outputNorm, String keyStates, String valueStates) {

    static final Names BERT = new Names("encoder.layer", "attention.self.query", "attention.self.key",
        "attention.self.value", "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
        "output.dense", "output.LayerNorm", "attention.self.key_states", "attention.self.value_states");
    static final Names DISTILBERT = new Names("transformer.layer", "attention.q_lin", "attention.k_lin",
        "attention.v_lin", "attention.out_lin", "sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm",
        "attention.key_states", "attention.value_states");

    /** These names inside a task model that puts the encoder under {@code prefix} (e.g. {@code bert.}). */
    Names under(String prefix) {
      return prefix.isEmpty() ? this : new Names(prefix + layers, query, key, value, attentionOut, attentionNorm,
          ffnIn, ffnOut, outputNorm, keyStates, valueStates);
    }
  }

  private PostLnLayers() {}

  /**
   * Runs {@code x [b·s, H]} through {@code layers} layers; returns {@code [b·s, H]}. Each layer's output but the last
   * is named {@code <prefix>.layer_output} (where gradient checkpointing cuts).
   *
   * @param additiveMask {@code [b, 1, 1, s]}: 0 on real keys, the most negative float on padding
   * @param seq          {@code [1]}, the sequence length s
   */
  static SDVariable apply(SameDiff sd, Weights weights, Names n, int layers, int h, int nh, int inner, double eps,
      SDVariable x, SDVariable additiveMask, SDVariable seq) {
    int d = h / nh;
    SDVariable headShape = sd.concat(0, longs(sd, -1), seq, longs(sd, nh, d));         // [-1, s, nh, d]
    for (int i = 0; i < layers; i++) {
      String p = n.layers() + "." + i + ".";
      SDVariable q = heads(sd, linear(sd, weights, p + n.query(), x, h, h, true), headShape); // [b,nh,s,d]
      SDVariable k = heads(sd, linear(sd, weights, p + n.key(), x, h, h, true), headShape).rename(p + n.keyStates());
      SDVariable v = heads(sd, linear(sd, weights, p + n.value(), x, h, h, true), headShape)
          .rename(p + n.valueStates());
      // Kᵀ as its own permute: ND4J M2.1's batched matmul with transposeB is ~2× slower than on a permuted copy;
      // 1/√d scales q [b,nh,s,d] rather than the scores [b,nh,s,s] (s/d times fewer elements)
      SDVariable scores = sd.mmul(q.mul(1 / Math.sqrt(d)), sd.permute(k, 0, 1, 3, 2)).add(additiveMask); // [b,nh,s,s]
      SDVariable context = sd.mmul(sd.nn.softmax(scores, 3), v);                       // [b, nh, s, d]
      SDVariable merged = sd.reshape(sd.permute(context, 0, 2, 1, 3), -1, h);          // [b·s, H]
      x = layerNorm(sd, weights, p + n.attentionNorm(),
          x.add(linear(sd, weights, p + n.attentionOut(), merged, h, h, true)), h, eps);
      SDVariable activated = gelu(sd, linear(sd, weights, p + n.ffnIn(), x, h, inner, true)); // [b·s, I]
      x = layerNorm(sd, weights, p + n.outputNorm(),
          x.add(linear(sd, weights, p + n.ffnOut(), activated, inner, h, true)), h, eps);
      if (i < layers - 1) {
        x = x.rename(p + Hooks.LAYER_OUTPUT);                                          // [b·s, H]
      }
    }
    return x;
  }

  /** The additive key mask {@code [b, 1, 1, s]} from the float key mask {@code [b, s]}, as transformers builds it. */
  static SDVariable additiveKeyMask(SameDiff sd, SDVariable keyMask) {
    SDVariable maskRows = sd.expandDims(sd.expandDims(keyMask, 1), 1);                 // [b, 1, 1, s]
    return maskRows.rsub(1.0).mul(-Float.MAX_VALUE);
  }

  /** {@code [b·s, H] → [b, nh, s, d]}. */
  private static SDVariable heads(SameDiff sd, SDVariable rows, SDVariable headShape) {
    return sd.permute(sd.reshape(rows, headShape), 0, 2, 1, 3);
  }
}
