package dev.peft4j.prompt;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.GraphRewriter.Branch;
import dev.peft4j.model.Hooks;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.nd4j.autodiff.samediff.NameScope;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ops.impl.transforms.Assert;

/**
 * {@code n} virtual tokens prepended to a transformer graph's input embeddings through its {@link Hooks}, as Hugging
 * Face PEFT's prompt tuning and P-tuning prepend them ({@code inputs_embeds = cat(prompts, inputs_embeds)}). Shared
 * by {@link PromptTuning} and {@code dev.peft4j.ptuning.PTuning}.
 * <pre>
 *   prompt P: [n, H] (a table, or an encoder's output)
 *   inputs_embeds [b·s, H] → rows of cat(P broadcast to [b, n, H], inputs_embeds as [b, s, H])   [b·(n+s), H]
 *   seq_len s → n + s       key_mask [b, s] → cat(1, key_mask)          [b, n+s]
 *   token_type_rows (BERT)  → type 0 for the virtual tokens             [b·(n+s)]
 *   loss_labels (decoders)  → cat(−100, labels)                         [b, n+s]
 *   last_hidden_state / logits [b, n+s, ·] → the real tokens' rows only [b, s, ·]
 * </pre>
 * Positions: the virtual tokens take positions 0..n−1 and the real tokens n..n+s−1, as in transformers, which numbers
 * the positions of {@code inputs_embeds} from 0 (absolute position embeddings in BERT, RoPE in Llama alike).
 */
public final class VirtualTokens {

  /** The prompt variable, and each hook with the branch's variable that replaces it. */
  private record Parts(String prompt, Map<String, String> results) {}

  private final GraphRewriter graph;
  private final Branch<Parts> branch;

  private VirtualTokens(GraphRewriter graph, Branch<Parts> branch) {
    this.graph = graph;
    this.branch = branch;
  }

  /**
   * Checks that {@code sd} can take {@code n} virtual tokens (at the input embeddings, or as prefix tuning's keys and
   * values), before anything is built.
   *
   * @throws IllegalArgumentException if the graph lacks the hooks, or n leaves no position for a real token
   * @throws IllegalStateException if another prompt-learning adapter is wired in
   */
  public static Hooks.Dims check(SameDiff sd, int n, String method) {
    Hooks.Dims dims = Hooks.require(sd, method);
    checkArgument(n < dims.maxPositions(), "%s with %s virtual tokens does not fit the model's %s positions "
        + "(n + sequence length must be ≤ %s)", method, n, dims.maxPositions(), dims.maxPositions());
    for (String hook : List.of(Hooks.SEQ_LEN, Hooks.KEY_MASK, Hooks.POSITION_OFFSET)) {
      String producer = sd.getVariableOutputOp(hook).getOwnName();
      checkState(!producer.startsWith("peft/"), "another prompt-learning adapter is wired into '%s' (op '%s'); "
          + "disable it first", hook, producer);
    }
    return dims;
  }

  /**
   * {@link #check(SameDiff, int, String)}, and that {@code tokenDim} (HF's {@code token_dim}, from a file) is the
   * model's hidden size.
   *
   * @throws IllegalArgumentException if it is given and differs
   */
  public static Hooks.Dims check(SameDiff sd, int n, Integer tokenDim, String method) {
    Hooks.Dims dims = check(sd, n, method);
    checkArgument(tokenDim == null || tokenDim == dims.hidden(), "token_dim %s does not match the model's hidden "
        + "size %s", tokenDim, dims.hidden());
    return dims;
  }

  /**
   * Builds the prompt with {@code prompt} (under {@code scope}) and prepends it; {@code prompt} must return a
   * {@code [n, H]} variable. Call {@link #check} first.
   */
  public static VirtualTokens prepend(SameDiff sd, GraphRewriter g, String scope, int n,
      Supplier<SDVariable> prompt) {
    int maxPositions = Hooks.require(sd, "virtual tokens").maxPositions();
    Branch<Parts> branch = g.spliceBranch(() -> {
      Map<String, String> results = new LinkedHashMap<>(); // hook → the branch result that replaces it
      try (NameScope ignored = sd.withNameScope(scope.substring(0, scope.length() - 1))) {
        SDVariable p = prompt.get();                                                            // [n, H]
        // shapes from the tensors themselves, not from constants (a constant in the adapter's scope would count as
        // one of its parameters)
        SDVariable keyMask = sd.getVariable(Hooks.KEY_MASK);                                    // [b, s]
        SDVariable b = dimension(sd, keyMask, 0);                                               // [1]
        SDVariable s = dimension(sd, keyMask, 1);                                               // [1]
        SDVariable nn = dimension(sd, p, 0);                                                    // [1] = n
        SDVariable hh = dimension(sd, p, 1);                                                    // [1] = H
        results.put(Hooks.SEQ_LEN, withinPositions(sd, sd.getVariable(Hooks.SEQ_LEN).add(nn), maxPositions).name());
        SDVariable ones = sd.fill(sd.concat(0, b, nn), keyMask.dataType(), 1.0);                // [b, n]
        results.put(Hooks.KEY_MASK, sd.concat(1, ones, keyMask).name());                        // [b, n+s]
        SDVariable embeds = sd.getVariable(Hooks.INPUTS_EMBEDS);                                // [b·s, H]
        SDVariable rows = sd.reshape(embeds, sd.concat(0, b, s, hh));                           // [b, s, H]
        SDVariable prompts = sd.fill(sd.concat(0, b, nn, hh), p.dataType(), 0.0).add(p);        // [b, n, H]
        SDVariable all = sd.concat(1, prompts, rows);                                           // [b, n+s, H]
        results.put(Hooks.INPUTS_EMBEDS, sd.reshape(all, sd.concat(0, b.mul(s.add(nn)), hh)).name()); // [b·(n+s), H]
        if (sd.hasVariable(Hooks.TOKEN_TYPE_ROWS)) {
          SDVariable types = sd.reshape(sd.getVariable(Hooks.TOKEN_TYPE_ROWS), sd.concat(0, b, s)); // [b, s]
          SDVariable zeros = sd.fill(sd.concat(0, b, nn), DataType.INT64, 0);                    // [b, n]
          results.put(Hooks.TOKEN_TYPE_ROWS, sd.reshape(sd.concat(1, zeros, types), -1).name()); // [b·(n+s)]
        }
        if (Hooks.isDecoder(sd)) { // HF: labels = cat(full(−100), labels), so the last virtual token predicts token 0
          SDVariable labels = sd.getVariable(Hooks.LOSS_LABELS);                                // [b, s]
          SDVariable ignored2 = sd.fill(sd.concat(0, b, nn), DataType.INT64, -100);              // [b, n]
          results.put(Hooks.LOSS_LABELS, sd.concat(1, ignored2, labels).name());                 // [b, n+s]
        }
        String out = Hooks.sequenceOutput(sd);
        results.put(out, sd.stridedSlice(sd.getVariable(out), new long[] {0, n, 0}, new long[] {0, 0, 0},
            new long[] {1, 1, 1}, 5, 7, 0, 0, 0).name());                                       // [b, s, ·]
        return new Parts(p.name(), results);
      }
    }, Parts::results);
    return new VirtualTokens(g, branch);
  }

  /**
   * {@code total} (an INT64 {@code [1]}, n + s), computed only after an assertion op that fails when it exceeds
   * {@code maxPositions}: ND4J's error names the op, and its name says why ({@code
   * …/virtual_tokens_plus_sequence_length_exceed_<max>_positions/Assert}), where the position-table slice would fail
   * with "Op validation failed". Shared with prefix tuning.
   */
  public static SDVariable withinPositions(SameDiff sd, SDVariable total, int maxPositions) {
    SDVariable fits = total.lte(maxPositions);                                                 // [1] BOOL
    SDVariable passed;
    try (NameScope ignored = sd.withNameScope("virtual_tokens_plus_sequence_length_exceed_" + maxPositions
        + "_positions")) { // the failing op's name is all ND4J reports
      passed = new Assert(sd, fits).outputVariables()[0];
    }
    return total.add(passed.castTo(DataType.INT64).mul(0));                                    // total, after the check
  }

  /** The word-embedding table: the first input of the op that computes {@value Hooks#INPUTS_EMBEDS}. */
  public static String tableOf(SameDiff sd) {
    String op = sd.getVariableOutputOp(Hooks.INPUTS_EMBEDS).getOwnName();
    String table = GraphRewriter.of(sd).inputsOf(op).get(0);
    checkArgument(sd.getArrForVarName(table) != null && sd.getArrForVarName(table).rank() == 2,
        "'%s' is not computed from a word-embedding table (op '%s' reads '%s')", Hooks.INPUTS_EMBEDS, op, table);
    return table;
  }

  private static SDVariable dimension(SameDiff sd, SDVariable x, int axis) {
    return sd.stridedSlice(sd.shape(x), new long[] {axis}, new long[] {axis + 1}, new long[] {1});
  }

  /** The name of the {@code [n, H]} prompt variable the graph reads. */
  public String prompt() {
    return branch.parts().prompt();
  }

  /** Wires the virtual tokens back in. */
  public void attach() {
    graph.attach(branch);
  }

  /** Takes the virtual tokens out; the graph computes the base model again. */
  public void detach() {
    graph.detach(branch);
  }

  /** Deletes every op and variable (call detached). */
  public void remove() {
    graph.remove(branch);
  }
}
