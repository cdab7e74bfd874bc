package dev.peft4j.prefix;

import dev.peft4j.AbstractAdapter;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.GraphRewriter.Branch;
import dev.peft4j.model.Hooks;
import dev.peft4j.prompt.VirtualTokens;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.nd4j.autodiff.samediff.NameScope;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Prefix tuning: n trained key/value vectors per layer, in front of every attention layer's keys and values. See the
 * package documentation for the math.
 * <pre>
 *   table T: [n, layers·2·kv]  (kv = kv heads · head dim), at peft/&lt;adapter&gt;/prefix_tuning/prompt_embeddings
 *   with the projection: T = tanh(E·W1 + b1)·W2 + b2,  E: [n, kv]  W1: [kv, e]  W2: [e, layers·2·kv]
 *   saved as prompt_embeddings = T  (the MLP folded away, as HF's get_prompt_embedding_to_save)
 * </pre>
 */
public final class PrefixTuning extends AbstractAdapter<PrefixTuningConfig> {

  /** Hugging Face PEFT's key of the (folded) prefix table. */
  public static final String KEY = "prompt_embeddings";

  private static final Pattern LAYER = Pattern.compile("\\.(\\d+)\\.");

  /** The table (or the MLP's output for it), what trains, and each hook with the variable that replaces it. */
  private record Prefix(String table, List<String> parameters, Map<String, String> results) {}

  private Branch<Prefix> branch;

  PrefixTuning(String name, PrefixTuningConfig config) {
    super(name, config);
  }

  @Override
  protected void build(SameDiff sd, GraphRewriter g) {
    PrefixTuningConfig c = config();
    Hooks.Dims dims = c.check(sd);
    int n = c.numVirtualTokens();
    int kv = dims.kvDim();
    int layers = dims.layers();
    int width = layers * 2 * kv;
    String scope = scope("prefix_tuning");
    DataType type = sd.getVariable(Hooks.INPUTS_EMBEDS).dataType();
    Random random = new Random(c.seed());
    List<String> keys = sortedByLayer(Hooks.layerStates(sd, Hooks.KEY_STATES));
    List<String> values = sortedByLayer(Hooks.layerStates(sd, Hooks.VALUE_STATES));
    branch = g.spliceBranch(() -> {
      Map<String, String> results = new LinkedHashMap<>(); // hook → the branch result that replaces it
      List<String> parameters = new ArrayList<>();
      try (NameScope ignored = sd.withNameScope(scope.substring(0, scope.length() - 1))) {
        SDVariable t;                                                                             // [n, L·2·kv]
        if (c.reparameterised()) {
          int e = c.encoderHidden(dims);
          SDVariable embedding = sd.var(scope + "embedding", c.inferenceMode() ? Nd4j.zeros(type, n, kv)
              : normal(random, type, n, kv));                                                     // [n, kv]
          SDVariable w1 = sd.var(scope + "transform.0.weight", uniform(random, type, kv, kv, e)); // [kv, e]
          SDVariable b1 = sd.var(scope + "transform.0.bias", uniform(random, type, kv, e));
          SDVariable w2 = sd.var(scope + "transform.2.weight", c.zeroInit() ? Nd4j.zeros(type, e, width)
              : uniform(random, type, e, e, width));                                              // [e, L·2·kv]
          SDVariable b2 = sd.var(scope + "transform.2.bias", c.zeroInit() ? Nd4j.zeros(type, width)
              : uniform(random, type, e, width));
          parameters.addAll(List.of(embedding.name(), w1.name(), b1.name(), w2.name(), b2.name()));
          t = sd.nn.linear(sd.math.tanh(sd.nn.linear(embedding, w1, b1)), w2, b2).rename(scope + "prefix");
        } else {
          t = sd.var(scope + KEY, c.inferenceMode() || c.zeroInit() ? Nd4j.zeros(type, n, width)
              : normal(random, type, n, width));
          parameters.add(t.name());
        }
        SDVariable nn = dimension(sd, t, 0);                                                     // [1] = n
        SDVariable keyMask = sd.getVariable(Hooks.KEY_MASK);                                     // [b, s]
        SDVariable b = dimension(sd, keyMask, 0);
        results.put(Hooks.KEY_MASK, sd.concat(1, sd.fill(sd.concat(0, b, nn), keyMask.dataType(), 1.0), keyMask)
            .name());                                                                            // [b, n+s]
        // transformers numbers the real tokens after the cached prefix: positions n..n+s−1
        SDVariable seq = sd.getVariable(Hooks.SEQ_LEN);
        SDVariable checkedN = VirtualTokens.withinPositions(sd, seq.add(nn), dims.maxPositions()).sub(seq); // n
        results.put(Hooks.POSITION_OFFSET, sd.getVariable(Hooks.POSITION_OFFSET).add(checkedN).name());
        if (Hooks.isDecoder(sd)) { // every query sees the whole prefix
          SDVariable causal = sd.getVariable(Hooks.CAUSAL_MASK);                                 // [s, s]
          SDVariable ones = sd.fill(sd.concat(0, dimension(sd, causal, 0), nn), causal.dataType(), 1.0); // [s, n]
          results.put(Hooks.CAUSAL_MASK, sd.concat(1, ones, causal).name());                     // [s, n+s]
        }
        for (int layer = 0; layer < layers; layer++) {
          for (int kOrV = 0; kOrV < 2; kOrV++) {
            String hook = (kOrV == 0 ? keys : values).get(layer);
            SDVariable states = sd.getVariable(hook);                                            // [b, nh, s, d]
            SDVariable block = sd.slice(t, new int[] {0, (2 * layer + kOrV) * kv}, new int[] {n, kv}); // [n, kv]
            SDVariable heads = sd.permute(sd.reshape(block, n, dims.kvHeads(), dims.headDim()), 1, 0, 2); // [nkv,n,d]
            int groups = dims.heads() / dims.kvHeads();
            if (groups > 1) { // query head j reads kv head j / groups, as the model repeats its own keys
              heads = sd.reshape(sd.tile(sd.expandDims(heads, 1), 1, groups, 1, 1), dims.heads(), n,
                  dims.headDim());                                                               // [nh, n, d]
            }
            SDVariable batch = sd.fill(sd.concat(0, dimension(sd, states, 0), dimension(sd, states, 1), nn,
                dimension(sd, states, 3)), type, 0.0);                                           // [b, nh, n, d]
            SDVariable prefix = sd.expandDims(heads, 0).add(batch);                              // [b, nh, n, d]
            results.put(hook, sd.concat(2, prefix, states).name());                              // [b, nh, n+s, d]
          }
        }
        return new Prefix(t.name(), parameters, results);
      }
    }, Prefix::results);
  }

  private static List<String> sortedByLayer(List<String> names) {
    return names.stream().sorted(Comparator.comparingInt(PrefixTuning::layerOf)).toList();
  }

  private static int layerOf(String name) {
    Matcher m = LAYER.matcher(name);
    return m.find() ? Integer.parseInt(m.group(1)) : -1;
  }

  private static SDVariable dimension(SameDiff sd, SDVariable x, int axis) {
    return sd.stridedSlice(sd.shape(x), new long[] {axis}, new long[] {axis + 1}, new long[] {1});
  }

  /** N(0, 1), {@code nn.Embedding}'s default. */
  private static INDArray normal(Random random, DataType type, int rows, int cols) {
    double[] v = new double[rows * cols];
    for (int i = 0; i < v.length; i++) {
      v[i] = random.nextGaussian();
    }
    return Nd4j.create(v, new long[] {rows, cols}, DataType.DOUBLE).castTo(type);
  }

  /** U(±1/√fanIn), {@code nn.Linear}'s default for weights and biases; {@code [shape]} in our [in, out] layout. */
  private static INDArray uniform(Random random, DataType type, int fanIn, int... shape) {
    long count = 1;
    for (int s : shape) {
      count *= s;
    }
    double bound = 1 / Math.sqrt(fanIn);
    double[] v = new double[Math.toIntExact(count)];
    for (int i = 0; i < v.length; i++) {
      v[i] = (2 * random.nextDouble() - 1) * bound;
    }
    long[] dims = new long[shape.length];
    for (int i = 0; i < shape.length; i++) {
      dims[i] = shape[i];
    }
    return Nd4j.create(v, dims, DataType.DOUBLE).castTo(type);
  }

  @Override
  protected void attach() {
    if (branch != null) {
      graph().attach(branch);
    }
  }

  @Override
  protected void detach() {
    if (branch != null) {
      graph().detach(branch);
    }
  }

  @Override
  protected void remove() {
    if (branch != null) {
      graph().remove(branch);
      branch = null;
    }
  }

  /**
   * The table, or while the projection trains the embedding and the MLP: {@link #trainableParameters()} counts what
   * trains now, so a prefix saved after training with the projection loads as the (smaller or larger) folded table.
   */
  private String table() {
    return branch.parts().table();
  }

  @Override
  protected List<String> parameters() {
    return List.copyOf(branch.parts().parameters());
  }

  /** {@code prompt_embeddings [n, layers·2·kv]}: the table, or the MLP's output for it (folded). */
  @Override
  protected Map<String, INDArray> ownStateDict() {
    INDArray t = config().reparameterised() ? sd().output(Map.of(), table()).get(table())
        : sd().getArrForVarName(table());
    return Map.of(KEY, t.dup());
  }

  /**
   * @throws IllegalArgumentException with the projection: a folded table cannot be turned back into the MLP (as in
   *     HF); load it into a config without projection or a saved config
   */
  @Override
  protected void loadOwnStateDict(Map<String, INDArray> tensors) {
    if (config().reparameterised()) {
      throw new IllegalArgumentException("cannot load a folded prefix table into a prefix trained through the "
          + "projection (prefix_projection=True): the MLP cannot be recovered from its output; load the adapter "
          + "directory with Peft.load, which builds the plain table");
    }
    INDArray t = sd().getArrForVarName(table());
    t.assign(tensors.get(KEY).castTo(t.dataType()));
  }
}
