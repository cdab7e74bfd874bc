package dev.peft4j.ptuning;

import dev.peft4j.AbstractAdapter;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.model.Hooks;
import dev.peft4j.prompt.VirtualTokens;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.layers.recurrent.config.LSTMActivations;
import org.nd4j.linalg.api.ops.impl.layers.recurrent.config.LSTMDataFormat;
import org.nd4j.linalg.api.ops.impl.layers.recurrent.config.LSTMDirectionMode;
import org.nd4j.linalg.api.ops.impl.layers.recurrent.config.LSTMLayerConfig;
import org.nd4j.linalg.api.ops.impl.layers.recurrent.weights.LSTMLayerWeights;
import org.nd4j.linalg.factory.Nd4j;

/**
 * P-tuning: virtual tokens produced by a trained prompt encoder from a trained embedding, prepended to the input
 * embeddings. See the package documentation for the math.
 * <pre>
 *   E: [n, H]   W1: [H, e]  W2: [e, e]  W3: [e, H]     under peft/&lt;adapter&gt;/p_tuning/ (embedding, mlp_head.{0,2,4})
 *   P = ReLU(ReLU(E·W1 + b1)·W2 + b2)·W3 + b3: [n, H]  saved as prompt_embeddings = P (HF saves the encoder's output)
 * </pre>
 * With the LSTM encoder, a bidirectional LSTM ({@code lstm_head.i.*}) runs over E before a two-layer MLP. A config read
 * from a file (inference mode) builds only the table P, as HF does.
 */
public final class PTuning extends AbstractAdapter<PTuningConfig> {

  /** Hugging Face PEFT's key of the (encoded) virtual-token table. */
  public static final String KEY = "prompt_embeddings";

  private VirtualTokens tokens;
  private final List<String> parameters = new ArrayList<>();

  PTuning(String name, PTuningConfig config) {
    super(name, config);
  }

  @Override
  protected void build(SameDiff sd, GraphRewriter g) {
    PTuningConfig c = config();
    Hooks.Dims dims = c.check(sd);
    int n = c.numVirtualTokens();
    int h = dims.hidden();
    String scope = scope("p_tuning");
    DataType type = sd.getVariable(Hooks.INPUTS_EMBEDS).dataType();
    Random random = new Random(c.seed());
    tokens = VirtualTokens.prepend(sd, g, scope, n, () -> {
      if (c.inferenceMode()) {
        SDVariable table = sd.var(scope + KEY, Nd4j.zeros(type, n, h));                        // [n, H]
        parameters.add(table.name());
        return table;
      }
      int e = c.encoderHidden(dims);
      SDVariable embedding = sd.var(scope + "embedding", normal(random, type, n, h));            // [n, H]
      parameters.add(embedding.name());
      if (c.encoder() == PTuningConfig.Encoder.LSTM) {
        return lstmEncoder(sd, scope, embedding, h, e, c.encoderNumLayers(), random, type);
      }
      SDVariable w1 = sd.var(scope + "mlp_head.0.weight", uniform(random, type, h, h, e));      // [H, e]
      SDVariable b1 = sd.var(scope + "mlp_head.0.bias", uniform(random, type, h, e));
      SDVariable w2 = sd.var(scope + "mlp_head.2.weight", uniform(random, type, e, e, e));      // [e, e]
      SDVariable b2 = sd.var(scope + "mlp_head.2.bias", uniform(random, type, e, e));
      SDVariable w3 = sd.var(scope + "mlp_head.4.weight", uniform(random, type, e, e, h));      // [e, H]
      SDVariable b3 = sd.var(scope + "mlp_head.4.bias", uniform(random, type, e, h));
      for (SDVariable v : List.of(w1, b1, w2, b2, w3, b3)) {
        parameters.add(v.name());
      }
      SDVariable hidden = sd.nn.relu(sd.nn.linear(sd.nn.relu(sd.nn.linear(embedding, w1, b1), 0), w2, b2), 0);
      return sd.nn.linear(hidden, w3, b3).rename(scope + "prompt");                            // [n, H]
    });
  }

  /**
   * HF's LSTM prompt encoder: a bidirectional LSTM over the n virtual tokens (one sequence), then
   * {@code Linear(2e, 2e) → ReLU → Linear(2e, H)}. Weights start U(±1/√e) as PyTorch's LSTM.
   */
  private SDVariable lstmEncoder(SameDiff sd, String scope, SDVariable embedding, int h, int e, int layers,
      Random random, DataType type) {
    LSTMLayerConfig lstm = LSTMLayerConfig.builder().lstmdataformat(LSTMDataFormat.NTS)
        .directionMode(LSTMDirectionMode.BIDIR_CONCAT).gateAct(LSTMActivations.SIGMOID).cellAct(LSTMActivations.TANH)
        .outAct(LSTMActivations.TANH).retFullSequence(true).retLastH(false).retLastC(false).build();
    SDVariable x = sd.expandDims(embedding, 0);                                                // [1, n, H]
    for (int layer = 0; layer < layers; layer++) {
      int in = layer == 0 ? h : 2 * e;
      String p = scope + "lstm_head." + layer + ".";
      SDVariable w = sd.var(p + "input_weight", uniform(random, type, e, 2, in, 4 * e));    // [2, in, 4e]
      SDVariable r = sd.var(p + "recurrent_weight", uniform(random, type, e, 2, e, 4 * e)); // [2, e, 4e]
      SDVariable b = sd.var(p + "bias", uniform(random, type, e, 2, 4 * e));               // [2, 4e]
      parameters.addAll(List.of(w.name(), r.name(), b.name()));
      x = sd.rnn.lstmLayer(x, LSTMLayerWeights.builder().weights(w).rWeights(r).bias(b).build(), lstm)[0]; // [1,n,2e]
    }
    SDVariable rows = sd.reshape(x, -1, 2 * e);                                                 // [n, 2e]
    SDVariable w1 = sd.var(scope + "mlp_head.0.weight", uniform(random, type, 2 * e, 2 * e, 2 * e));
    SDVariable b1 = sd.var(scope + "mlp_head.0.bias", uniform(random, type, 2 * e, 2 * e));
    SDVariable w2 = sd.var(scope + "mlp_head.2.weight", uniform(random, type, 2 * e, 2 * e, h));
    SDVariable b2 = sd.var(scope + "mlp_head.2.bias", uniform(random, type, 2 * e, h));
    parameters.addAll(List.of(w1.name(), b1.name(), w2.name(), b2.name()));
    return sd.nn.linear(sd.nn.relu(sd.nn.linear(rows, w1, b1), 0), w2, b2).rename(scope + "prompt"); // [n, H]
  }

  /** N(0, 1), {@code nn.Embedding}'s default. */
  private static INDArray normal(Random random, DataType type, int rows, int cols) {
    double[] v = new double[rows * cols];
    for (int i = 0; i < v.length; i++) {
      v[i] = random.nextGaussian();
    }
    return Nd4j.create(v, new long[] {rows, cols}, DataType.DOUBLE).castTo(type);
  }

  /** U(±1/√fanIn), {@code nn.Linear}'s default; {@code shape} in our [in, out] layout. */
  private static INDArray uniform(Random random, DataType type, int fanIn, int... shape) {
    long[] dims = new long[shape.length];
    long count = 1;
    for (int i = 0; i < shape.length; i++) {
      dims[i] = shape[i];
      count *= shape[i];
    }
    double bound = 1 / Math.sqrt(fanIn);
    double[] v = new double[Math.toIntExact(count)];
    for (int i = 0; i < v.length; i++) {
      v[i] = (2 * random.nextDouble() - 1) * bound;
    }
    return Nd4j.create(v, dims, DataType.DOUBLE).castTo(type);
  }

  @Override
  protected void attach() {
    tokens.attach();
  }

  @Override
  protected void detach() {
    if (tokens != null) {
      tokens.detach();
    }
  }

  @Override
  protected void remove() {
    if (tokens != null) {
      tokens.remove();
      tokens = null;
    }
  }

  /** While training the embedding and the MLP; for a saved adapter, the table. */
  @Override
  protected List<String> parameters() {
    return List.copyOf(parameters);
  }

  /** {@code prompt_embeddings [n, H]}: the encoder's output (or the loaded table). */
  @Override
  protected Map<String, INDArray> ownStateDict() {
    String p = tokens.prompt();
    INDArray out = config().inferenceMode() ? sd().getArrForVarName(p) : sd().output(Map.of(), p).get(p);
    return Map.of(KEY, out.dup());
  }

  /**
   * @throws IllegalArgumentException while training the encoder: its output cannot be turned back into the encoder
   *     (HF cannot either); load the directory with {@code Peft.load}, which builds the plain table
   */
  @Override
  protected void loadOwnStateDict(Map<String, INDArray> tensors) {
    if (!config().inferenceMode()) {
      throw new IllegalArgumentException("cannot load saved P-tuning virtual tokens into a trainable prompt encoder: "
          + "the encoder cannot be recovered from its output; load the adapter directory with Peft.load, which "
          + "builds the plain table");
    }
    INDArray p = sd().getArrForVarName(tokens.prompt());
    p.assign(tensors.get(KEY).castTo(p.dataType()));
  }
}
