package dev.peft4j.generate;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.graph.GraphCopies;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.model.Hooks;
import dev.peft4j.model.Llama;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The two graphs cached decoding runs, built as rewrites of copies of a Llama-family decoder (adapters included, since
 * the copies are of the adapted graph; the copies compute with the original's weight arrays).
 * <pre>
 *   prefill:  input_ids, attention_mask [b, s]  →  logits [b, 1, V] (the last position's; [b, s, V] under prompt
 *             tuning / P-tuning, which trim the logits themselves), per layer i the cache
 *             model.layers.i.self_attn.{key,value}_heads  [b, nkv, T, d]   (T = s, + n virtual tokens under prompt
 *             tuning / P-tuning)
 *   decode:   input_ids [b, t], attention_mask [b, P + t] (every cached position, prompt tuning's virtual tokens
 *             included), past.i.key, past.i.value [b, nkv, P, d]
 *             →  logits [b, 1, V], the grown cache {key,value}_heads [b, nkv, P + t, d]
 *             key_heads := cat(past.i.key, key_heads, axis 2), and the same for values; the model repeats them to
 *             nh heads (grouped-query attention) after the cache, so the cache is nh/nkv × smaller than the states
 *             attention reads
 *             causal mask [t, K] ({@code Llama.causalMask}), K = the attention's key count (P + t, + n under prefix
 *             tuning): key j allowed for query i when j ≤ K − t + i
 *   both:     positions = cumsum(key mask) − 1 over every key, the last s (or t) of them, pads clamped to 0, as
 *             transformers' generate derives position_ids from the attention mask (left padding shifts a row's
 *             positions; under prompt tuning / P-tuning positions go by index instead, as PEFT has transformers
 *             do there); the rotary tables are gathered per row: position_cos, position_sin [b, s, 1, d]
 * </pre>
 * Prompt learning: prompt tuning's and P-tuning's virtual tokens are run once by the prefill graph (the adapted graph)
 * and land in the cache, where transformers has them too; the decode graph must be copied with that adapter disabled
 * (the caller does it) so they are not prepended again. Prefix tuning stays in both graphs: its virtual keys and values
 * are spliced in after the repetition, in front of the cached and new ones, and its key mask and causal columns come
 * with it, so they are not cached but recomputed at each step (the same values transformers caches).
 */
final class DecoderGraphs {

  private static final Pattern LAYER = Pattern.compile("\\.(\\d+)\\.");

  final SameDiff prefill;
  final SameDiff decode;
  /** Key and value hooks (the cache), in layer order. */
  final List<String> keys;
  final List<String> values;
  /** Decode placeholders, in layer order. */
  final List<String> pastKeys = new ArrayList<>();
  final List<String> pastValues = new ArrayList<>();

  private DecoderGraphs(SameDiff prefill, SameDiff decode) {
    this.prefill = prefill;
    this.decode = decode;
    this.keys = byLayer(Hooks.layerStates(prefill, Hooks.KEY_HEADS));
    this.values = byLayer(Hooks.layerStates(prefill, Hooks.VALUE_HEADS));
  }

  /** The graphs of a decoder without prompt learning: both are copies of {@code sd}, which does not change. */
  static DecoderGraphs of(SameDiff sd) {
    requireDecoder(sd);
    return ofCopies(GraphCopies.copy(sd), GraphCopies.copy(sd), false);
  }

  /**
   * Rewrites {@code prefillCopy} (a {@link #copy} of the adapted graph) into the prefill graph and {@code decodeCopy}
   * (a copy made while its prompt-learning adapter, if any, was disabled) into the decode graph. With
   * {@code positionsByIndex} every row's positions are 0, 1, 2, … over all cache positions, pads included: PEFT drops
   * {@code position_ids} when prompt tuning or P-tuning prepends virtual tokens ("Position ids are not supported for
   * parameter efficient tuning"), so transformers numbers them by cache position, and so must we to give its tokens.
   */
  static DecoderGraphs ofCopies(SameDiff prefillCopy, SameDiff decodeCopy, boolean positionsByIndex) {
    requireDecoder(prefillCopy);
    DecoderGraphs g = new DecoderGraphs(prefillCopy, decodeCopy);
    perRowPositions(g.prefill, positionsByIndex);
    perRowPositions(g.decode, positionsByIndex);
    lastPositionLogits(g.prefill);
    lastPositionLogits(g.decode);
    g.spliceCache();
    return g;
  }

  /**
   * @throws IllegalArgumentException naming what is missing, for a graph that is not a Llama-family decoder
   */
  static Hooks.Dims requireDecoder(SameDiff sd) {
    checkArgument(sd.hasVariable(Hooks.ROPE_COS) && sd.hasVariable(Hooks.ROPE_SIN) && sd.hasVariable(Hooks.CAUSAL_MASK),
        "generation needs a Llama-family decoder (Llama.causalLm: Llama, Mistral, Qwen2, Qwen3, Gemma); this graph "
        + "lacks '%s' or '%s'", Hooks.ROPE_COS, Hooks.CAUSAL_MASK);
    return Hooks.require(sd, "generation");
  }

  /** Replaces the rotary tables at positions offset..offset+s−1 by the tables at each row's own positions. */
  private static void perRowPositions(SameDiff sd, boolean byIndex) {
    GraphRewriter g = GraphRewriter.of(sd);
    SDVariable keyMask = sd.getVariable(Hooks.KEY_MASK);                                 // [b, T] float
    SDVariable seq = sd.getVariable(Hooks.SEQ_LEN);                                      // [1] = s
    SDVariable b = dimension(sd, keyMask, 0);
    SDVariable total = dimension(sd, keyMask, 1);                                        // [1] = T
    SDVariable d = dimension(sd, sd.getVariable(Hooks.ROPE_COS_TABLE), 1);
    g.spliceBranch(() -> {
      SDVariable counted = byIndex ? sd.onesLike(keyMask) : keyMask;                     // [b, T]
      SDVariable all = sd.nn.relu(sd.cumsum(counted, false, false, 1).sub(1.0), 0);      // [b, T], pads → 0
      SDVariable mine = sd.slice(all, sd.concat(0, sd.constant(0L).reshape(1), total.sub(seq)),
          sd.concat(0, b, seq)).castTo(DataType.INT64);                                  // [b, s]
      SDVariable flat = sd.reshape(mine, -1);                                            // [b·s]
      SDVariable shape = sd.concat(0, b, seq, sd.constant(1L).reshape(1), d);            // [b, s, 1, d]
      SDVariable cos = sd.reshape(sd.gather(sd.getVariable(Hooks.ROPE_COS_TABLE), flat, 0), shape);
      SDVariable sin = sd.reshape(sd.gather(sd.getVariable(Hooks.ROPE_SIN_TABLE), flat, 0), shape);
      return Map.of(Hooks.ROPE_COS, cos.name(), Hooks.ROPE_SIN, sin.name());
    }, m -> m);
  }

  /**
   * The LM head on each row's last position only: logits {@code [b, 1, V]}, as transformers' generate asks for
   * ({@code logits_to_keep=1}), instead of {@code [b, s, V]} (b·s·V floats: 1.2 GB for 8 × 256 tokens of a 151,936-id
   * vocabulary). Left as it is when prompt learning trims the logits itself (it would slice the one row away).
   */
  private static void lastPositionLogits(SameDiff sd) {
    if (!sd.hasVariable(Hooks.FINAL_HIDDEN_ROWS) || !sd.hasVariable(Hooks.LOGITS_SHAPE)
        || sd.getVariableOutputOp(Hooks.LOGITS).getOwnName().startsWith("peft/")) {
      return;
    }
    GraphRewriter g = GraphRewriter.of(sd);
    SDVariable rows = sd.getVariable(Hooks.FINAL_HIDDEN_ROWS);                           // [b·s, H]
    SDVariable seq = sd.getVariable(Hooks.SEQ_LEN);                                      // [1] = s
    g.spliceBranch(Hooks.FINAL_HIDDEN_ROWS, () -> {
      // inside the branch: an op outside it that read the hook would be pointed at the branch's result (a cycle)
      SDVariable h = dimension(sd, rows, 1);
      SDVariable perRow = sd.reshape(rows, sd.concat(0, sd.constant(-1L).reshape(1), seq, h)); // [b, s, H]
      SDVariable b = dimension(sd, perRow, 0);
      SDVariable lastOnes = sd.slice(perRow, sd.concat(0, sd.constant(0L).reshape(1), seq.sub(sd.constant(1L).reshape(1)),
          sd.constant(0L).reshape(1)), sd.concat(0, b, sd.constant(1L).reshape(1), h)); // [b, 1, H]
      return sd.reshape(lastOnes, sd.concat(0, b, h)).name();                           // [b, H]
    }, r -> r);
    SDVariable shape = sd.getVariable(Hooks.LOGITS_SHAPE);                               // [−1, s, V]
    g.spliceBranch(Hooks.LOGITS_SHAPE, () -> sd.concat(0, sd.slice(shape, new int[] {0}, new int[] {1}),
        sd.constant(1L).reshape(1), sd.slice(shape, new int[] {2}, new int[] {1})).name(), r -> r); // [−1, 1, V]
  }

  /** Past placeholders before every key and value hook of the decode graph, and the causal mask over them. */
  private void spliceCache() {
    SameDiff sd = decode;
    GraphRewriter g = GraphRewriter.of(sd);
    Hooks.Dims dims = Hooks.require(sd, "generation");
    List<String> k = byLayer(Hooks.layerStates(sd, Hooks.KEY_HEADS));
    List<String> v = byLayer(Hooks.layerStates(sd, Hooks.VALUE_HEADS));
    for (int i = 0; i < k.size(); i++) {
      for (int kOrV = 0; kOrV < 2; kOrV++) {
        String hook = (kOrV == 0 ? k : v).get(i);
        String name = "past." + i + (kOrV == 0 ? ".key" : ".value");
        (kOrV == 0 ? pastKeys : pastValues).add(name);
        SDVariable states = sd.getVariable(hook);                                        // [b, nkv, t, d]
        g.spliceBranch(hook, () -> {
          SDVariable past = sd.placeHolder(name, states.dataType(), -1, dims.kvHeads(), -1, dims.headDim());
          return sd.concat(2, past, states).name();                                     // [b, nkv, P+t, d]
        }, r -> r);
      }
    }
    // the attention's own key mask (after prefix tuning's splice, which puts its keys in front): K keys
    SDVariable keyMask = sd.getVariable(Hooks.KEY_MASK);                                 // [b, K]
    SDVariable seq = sd.getVariable(Hooks.SEQ_LEN);                                      // [1] = t
    SDVariable total = dimension(sd, keyMask, 1);                                        // [1] = K
    g.spliceBranch(Hooks.CAUSAL_MASK, () -> Llama.causalMask(sd, total.sub(seq), seq, total).name(), // [t, K]
        r -> r);
  }

  private static SDVariable dimension(SameDiff sd, SDVariable x, int axis) {
    return sd.stridedSlice(sd.shape(x), new long[] {axis}, new long[] {axis + 1}, new long[] {1});
  }

  private static List<String> byLayer(List<String> names) {
    return names.stream().sorted(Comparator.comparingInt(DecoderGraphs::layerOf)).toList();
  }

  private static int layerOf(String name) {
    Matcher m = LAYER.matcher(name);
    return m.find() ? Integer.parseInt(m.group(1)) : -1;
  }
}
