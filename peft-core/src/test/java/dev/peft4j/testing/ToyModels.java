package dev.peft4j.testing;

import dev.peft4j.model.Mlp;
import java.util.Random;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/** Graphs small enough for the contract suite to run in milliseconds. */
public final class ToyModels {

  public static final int MLP_IN = 6;
  public static final int MLP_HIDDEN = 8;
  public static final int MLP_LAYERS = 2;
  public static final int CLASSES = 3;
  public static final int D = 8;
  public static final int FFN = 12;
  public static final int BLOCKS = 2;

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

  private static SDVariable linear(SameDiff sd, String module, SDVariable x, long in, long out, boolean bias,
      DataType dataType, Random random) {
    double bound = 1 / Math.sqrt(in);
    SDVariable y = x.mmul(sd.var(module + ".weight", Mlp.uniform(random, bound, dataType, in, out)));
    return bias ? y.add(sd.var(module + ".bias", Mlp.uniform(random, bound, dataType, out))) : y;
  }
}
