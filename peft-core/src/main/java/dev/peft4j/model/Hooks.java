package dev.peft4j.model;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.ArrayList;
import java.util.List;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Named points of the transformer graphs ({@link Bert}, {@link Llama}) where prompt-learning methods (prompt tuning,
 * P-tuning, prefix tuning) splice in virtual tokens. Each hook is the output of an op (never a placeholder or a
 * constant), so a method can splice a branch after it with {@code GraphRewriter.splice}; a model that lacks them
 * cannot take these methods.
 * <pre>
 *   seq_len          [1] INT64      positions the layers run over; every shape reads it (s; n + s with prompt tuning)
 *   position_offset  [1] INT64      the first position id, 0 (n under prefix tuning, as transformers offsets positions
 *                                   by the length of past_key_values)
 *   inputs_embeds    [b·s, H]       the word-embedding rows, before positions/types/LayerNorm (BERT) are added
 *   token_type_rows  [b·s] INT64    (BERT only) the token type ids as rows
 *   key_mask         [b, s] float   1 on real keys, 0 on padding (the attention_mask as floats)
 *   causal_mask      [s, s] float   (decoders only) 1 where key ≤ query
 *   position_cos, position_sin  [s, 1, d]  (Llama family) the rotary tables at the query positions, broadcast over
 *                                   batch and heads (generation replaces them by per-row positions, [b, s, 1, d])
 *   rope_cos, rope_sin, causal_allowed  (Llama family) constants: the rotary tables [max positions, d] and the
 *                                   lower triangle [max positions, max positions] the slices above read
 *   loss_labels      [b, s] INT64   (decoders only) the labels the next-token loss reads
 *   …key_states, …value_states      [b, nh, s, d] per layer, after RoPE and head repetition (one pair per layer)
 *   …key_heads, …value_heads        [b, nkv, s, d] per layer, before the repetition (Llama family; what generation
 *                                   caches)
 *   final_hidden_rows [b·s, H], logits_shape [3] INT64 = [−1, s, V]   (Llama.causalLm) what the LM head reads and
 *                                   the shape its rows become; generation keeps only each row's last position
 *   …layer_output    [b·s, H]       the hidden state after each layer but the last, in layer order (where gradient
 *                                   checkpointing cuts the graph)
 *   model_dims       INT64 constant [layers, heads, kv heads, head dim, hidden, max positions]
 * </pre>
 * The per-position output a method trims back to the real tokens is {@code last_hidden_state} [b, s, H] when the
 * graph has one (encoders, also under a classification head), else {@code logits} [b, s, V] (decoders).
 */
public final class Hooks {

  public static final String SEQ_LEN = "seq_len";
  public static final String POSITION_OFFSET = "position_offset";
  public static final String INPUTS_EMBEDS = "inputs_embeds";
  public static final String TOKEN_TYPE_ROWS = "token_type_rows";
  public static final String KEY_MASK = "key_mask";
  public static final String CAUSAL_MASK = "causal_mask";
  public static final String ROPE_COS = "position_cos";
  public static final String ROPE_SIN = "position_sin";
  public static final String ROPE_COS_TABLE = "rope_cos";
  public static final String ROPE_SIN_TABLE = "rope_sin";
  public static final String CAUSAL_TABLE = "causal_allowed";
  public static final String LOSS_LABELS = "loss_labels";
  public static final String KEY_STATES = "key_states";
  public static final String VALUE_STATES = "value_states";
  public static final String FINAL_HIDDEN_ROWS = "final_hidden_rows";
  public static final String LOGITS_SHAPE = "logits_shape";
  public static final String KEY_HEADS = "key_heads";
  public static final String VALUE_HEADS = "value_heads";
  public static final String LAYER_OUTPUT = "layer_output";
  public static final String DIMS = "model_dims";
  public static final String LAST_HIDDEN_STATE = "last_hidden_state";
  public static final String LOGITS = "logits";
  /** The attention allowed in a packed-sequence graph ({@link Llama#causalLm(LlamaConfig, Weights, boolean)}). */
  public static final String PACKED_EXAMPLES = "packed_examples";

  private Hooks() {}

  /** The model dimensions prompt-learning methods size their tables by. */
  public record Dims(int layers, int heads, int kvHeads, int headDim, int hidden, int maxPositions) {

    /** Key/value width per token and layer: {@code kvHeads · headDim}. */
    public int kvDim() {
      return kvHeads * headDim;
    }
  }

  /** Records {@code dims} in the graph as the constant {@value #DIMS}. */
  public static void declare(SameDiff sd, Dims dims) {
    sd.constant(DIMS, Nd4j.createFromArray((long) dims.layers(), dims.heads(), dims.kvHeads(), dims.headDim(),
        dims.hidden(), dims.maxPositions()));
  }

  /**
   * The graph's dimensions, after checking that it has every hook prompt learning needs.
   *
   * @throws IllegalArgumentException naming the missing hooks, for a graph not built by {@link Bert} or {@link Llama}
   *     (or a model that declares the same hooks), or for a packed-sequence graph
   */
  public static Dims require(SameDiff sd, String method) {
    checkArgument(!sd.hasVariable(PACKED_EXAMPLES), "%s cannot adapt a packed-sequence graph (several examples per "
        + "row): its virtual tokens would have to repeat per example; build the graph unpacked", method);
    List<String> missing = new ArrayList<>();
    for (String hook : List.of(SEQ_LEN, POSITION_OFFSET, INPUTS_EMBEDS, KEY_MASK, DIMS)) {
      if (!sd.hasVariable(hook)) {
        missing.add(hook);
      }
    }
    if (!sd.hasVariable(LAST_HIDDEN_STATE) && !sd.hasVariable(LOGITS)) {
      missing.add(LAST_HIDDEN_STATE + " or " + LOGITS);
    }
    if (sd.hasVariable(CAUSAL_MASK) != sd.hasVariable(LOSS_LABELS)) {
      missing.add(sd.hasVariable(CAUSAL_MASK) ? LOSS_LABELS : CAUSAL_MASK);
    }
    checkArgument(missing.isEmpty(), "%s needs a transformer graph with prompt-learning hooks (Bert.encoder, "
        + "Llama.causalLm); this graph lacks %s", method, missing);
    SDVariable d = sd.getVariable(DIMS);
    checkArgument(d.getVariableType() == VariableType.CONSTANT && d.getArr() != null && d.getArr().length() == 6,
        "'%s' must be a constant of 6 dimensions", DIMS);
    INDArray a = d.getArr();
    Dims dims = new Dims(a.getInt(0), a.getInt(1), a.getInt(2), a.getInt(3), a.getInt(4), a.getInt(5));
    int layers = layerStates(sd, KEY_STATES).size();
    checkArgument(layers == dims.layers() && layerStates(sd, VALUE_STATES).size() == layers,
        "%s needs one '%s' and one '%s' per layer (%s layers); the graph has %s and %s", method, KEY_STATES,
        VALUE_STATES, dims.layers(), layers, layerStates(sd, VALUE_STATES).size());
    return dims;
  }

  /** Whether the graph is a decoder (has a causal mask and a next-token loss). */
  public static boolean isDecoder(SameDiff sd) {
    return sd.hasVariable(CAUSAL_MASK);
  }

  /** {@value #LAST_HIDDEN_STATE} when the graph has it, else {@value #LOGITS}. */
  public static String sequenceOutput(SameDiff sd) {
    return sd.hasVariable(LAST_HIDDEN_STATE) ? LAST_HIDDEN_STATE : LOGITS;
  }

  /**
   * The variables named {@code <…>.<suffix>} ({@value #KEY_STATES}, {@value #VALUE_STATES} or {@value #LAYER_OUTPUT}),
   * in name order (SameDiff keeps its variables sorted by name: layer 10 comes before layer 2; sort by the layer
   * index where order matters).
   */
  public static List<String> layerStates(SameDiff sd, String suffix) {
    return sd.variableMap().keySet().stream().filter(n -> n.endsWith("." + suffix) && !n.startsWith("peft/"))
        .toList();
  }
}
