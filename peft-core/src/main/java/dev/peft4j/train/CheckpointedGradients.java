package dev.peft4j.train;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.graph.GraphCopies;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.BatchedMatmulBlasThreads;
import dev.peft4j.graph.RowMajorArrayCache;
import dev.peft4j.model.Hooks;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Gradient checkpointing: the loss and gradients of {@link Gradients#of}, computed while holding the activations of
 * one segment of the graph at a time, at the cost of running every segment's forward pass twice.
 *
 * <p>Checkpoints {@code c₁ … cₘ} (op outputs, in graph order, such as a transformer's layer outputs) cut the graph
 * into segments {@code S₀ … Sₘ}: {@code Sⱼ} reads {@code cⱼ} (j > 0) as an input and ends at {@code cⱼ₊₁}, or at the
 * loss for {@code Sₘ}. A step runs
 * <pre>
 *   forward:   c₁ … cₘ, by one inference run of the whole graph; only the checkpoints are kept
 *   backward:  Sₘ:  L, ∂L/∂θ (its part), gₘ = ∂L/∂cₘ
 *              Sⱼ:  the surrogate loss  Σ cⱼ₊₁ ⊙ gⱼ₊₁ (gⱼ₊₁ held constant)     j = m−1 … 0
 *                   ∂/∂θ of it = gⱼ₊₁ᵀ·∂cⱼ₊₁/∂θ   (the chain rule's vector-Jacobian product),  gⱼ = its ∂/∂cⱼ
 * </pre>
 * and sums each parameter's parts over the segments that read it. The backward of {@code Sⱼ} recomputes the segment's
 * activations from {@code cⱼ}, so the step's activation memory is the checkpoints plus one segment's activations,
 * instead of every layer's; all segments allocate through one shared {@link RowMajorArrayCache}. Random ops draw the
 * same values in both passes and as in an uncheckpointed step when they are seeded per op name
 * ({@link RandomOps#seed}, as {@link Trainer} does): the gradients are then those of {@link Gradients#of}
 * up to float rounding ({@code CheckpointedGradientsTest}).
 *
 * <p>Each segment is a copy of the graph ({@link SameDiff#invokeGraphOn}, as SameDiff copies a graph for its gradient
 * function) whose weights are the original's arrays (shared, not copied), with {@code cⱼ}'s readers redirected to a
 * placeholder. The copies follow the original: a weight array
 * replaced in the original is re-shared before each step, and the segments are rebuilt when its ops, trainable
 * variables or loss change (a rewrite, a freeze). One instance serves one thread (the segments and their shared array
 * cache are not synchronised).
 */
public final class CheckpointedGradients {

  private static final String INPUT_SUFFIX = "/checkpoint";
  private static final String UPSTREAM_SUFFIX = "/upstream_gradient";
  private static final String SURROGATE_SUFFIX = "/surrogate_loss";

  private final SameDiff sd;
  private final List<String> checkpoints;
  private final RowMajorArrayCache cache = new RowMajorArrayCache();
  private List<SameDiff> segments;
  private GraphCopies.Structure builtFor;

  private CheckpointedGradients(SameDiff sd, List<String> checkpoints) {
    this.sd = sd;
    this.checkpoints = List.copyOf(checkpoints);
  }

  /**
   * Checkpointing of {@code sd} at {@code checkpoints}.
   *
   * @throws IllegalArgumentException if a checkpoint is not a variable of the graph (the message lists the op outputs
   *     named like layer outputs), is not an op's output, repeats, or does not depend on the checkpoint before it
   */
  public static CheckpointedGradients of(SameDiff sd, List<String> checkpoints) {
    checkArgument(!checkpoints.isEmpty(), "no checkpoints given");
    checkArgument(new HashSet<>(checkpoints).size() == checkpoints.size(), "checkpoints repeat: %s", checkpoints);
    for (String c : checkpoints) {
      checkArgument(sd.hasVariable(c), "no variable '%s' in the graph; op outputs named like layer outputs: %s", c,
          sd.variableMap().keySet().stream().filter(n -> n.contains("layer")
              && sd.getVariable(n).getVariableType() == VariableType.ARRAY).limit(20).toList());
      checkArgument(sd.getVariable(c).getVariableType() == VariableType.ARRAY,
          "checkpoint '%s' is a %s, not an op output", c, sd.getVariable(c).getVariableType());
    }
    for (int j = 1; j < checkpoints.size(); j++) {
      checkArgument(GraphRewriter.of(sd).ancestorsOf(checkpoints.get(j)).contains(checkpoints.get(j - 1)),
          "checkpoint '%s' does not depend on '%s': checkpoints must be given in graph order", checkpoints.get(j),
          checkpoints.get(j - 1));
    }
    return new CheckpointedGradients(sd, checkpoints);
  }

  /**
   * Checkpointing of a {@code Bert} or {@code Llama} graph after every k-th layer, k = round(√L) for L layers (Chen et
   * al. 2016's √n schedule: L/k segments of k layers), at the layer-output hooks ({@code Hooks.LAYER_OUTPUT}). On
   * MiniLM (L = 6, k = 2) at 8 × 512 a LoRA step's peak resident memory was 4.1 GB with this schedule, 4.8 GB with one
   * cut, 6.2 GB with a cut after every layer and 6.6 GB without checkpointing: SameDiff M2.1 keeps some arrays of each
   * segment's last run, so more segments cost memory too.
   *
   * @throws IllegalStateException if the graph declares no layer outputs
   */
  public static CheckpointedGradients atLayers(SameDiff sd) {
    List<String> outputs = new ArrayList<>(Hooks.layerStates(sd, Hooks.LAYER_OUTPUT)); // the first L − 1 layers'
    outputs.sort(Comparator.comparingInt(CheckpointedGradients::layerIndex));
    checkState(!outputs.isEmpty(), "gradient checkpointing cuts the graph at its layer outputs (variables named "
        + "'<…>.%s', as Bert and Llama graphs declare them); this graph has none", Hooks.LAYER_OUTPUT);
    int k = Math.max(1, (int) Math.round(Math.sqrt(outputs.size() + 1)));
    List<String> picked = new ArrayList<>();
    for (int i = k - 1; i < outputs.size(); i += k) {
      picked.add(outputs.get(i));
    }
    return of(sd, picked);
  }

  /** {@code i} of {@code <…>.i.layer_output}; renaming can reorder SameDiff's variables, so order by it. */
  private static int layerIndex(String layerOutput) {
    String head = layerOutput.substring(0, layerOutput.length() - Hooks.LAYER_OUTPUT.length() - 1);
    try {
      return Integer.parseInt(head.substring(head.lastIndexOf('.') + 1));
    } catch (NumberFormatException e) {
      throw new IllegalStateException("a layer output not named '<…>.<layer index>." + Hooks.LAYER_OUTPUT + "': "
          + layerOutput, e);
    }
  }

  public List<String> checkpoints() {
    return checkpoints;
  }

  /**
   * The loss (under its name) and the gradients of the loss with respect to {@code variables}, for one batch.
   *
   * @param loss the graph's loss variable
   * @param variables variables whose gradients to return; one that does not reach the loss has no entry
   * @throws IllegalArgumentException if {@code loss} does not depend on the last checkpoint
   */
  public OutAndGrad compute(Map<String, INDArray> placeholders, String loss, Collection<String> variables) {
    checkArgument(sd.hasVariable(loss), "no loss variable '%s' in the graph", loss);
    for (String v : variables) {
      checkArgument(sd.hasVariable(v), "no variable '%s' in the graph", v);
    }
    GraphCopies.Structure now = GraphCopies.Structure.of(sd, loss);
    if (!now.equals(builtFor)) {
      checkArgument(GraphRewriter.of(sd).ancestorsOf(loss).contains(checkpoints.get(checkpoints.size() - 1)),
          "the loss '%s' does not depend on the last checkpoint '%s'", loss, checkpoints.get(checkpoints.size() - 1));
      segments = build(loss);
      builtFor = now;
    }
    shareArrays();

    // forward: the checkpoints in one inference run of the original graph, which releases every other activation
    // as soon as its last reader has run (the same op names as the segments': the same dropout masks)
    int m = checkpoints.size();
    RowMajorArrayCache.install(sd, cache);
    BatchedMatmulBlasThreads.install(sd);
    Map<String, INDArray> forward = sd.output(placeholders, checkpoints.toArray(new String[0]));
    RowMajorArrayCache.reclaim(sd, forward.values());

    Map<String, INDArray> gradients = new LinkedHashMap<>();
    Map<String, INDArray> outputs = new HashMap<>();
    INDArray upstream = null;
    for (int j = m; j >= 0; j--) {
      SameDiff segment = segments.get(j);
      segment.setListeners(sd.getListeners()); // the random-op seeding
      List<String> wanted = new ArrayList<>(variables);
      if (j > 0) {
        wanted.add(checkpoints.get(j - 1) + INPUT_SUFFIX);
      }
      OutAndGrad part = Gradients.of(segment, inputsOf(j, placeholders, forward, upstream),
          j == m ? List.of(loss) : List.of(), wanted, cache);
      if (j == m) {
        outputs.put(loss, part.getOutputs().get(loss));
      }
      for (String v : variables) {
        INDArray g = part.getGradients().get(v);
        if (g != null) {
          gradients.merge(v, g, INDArray::addi);
        }
      }
      if (j > 0) {
        upstream = part.getGradients().get(checkpoints.get(j - 1) + INPUT_SUFFIX);
        checkState(upstream != null, "no gradient reached checkpoint '%s'", checkpoints.get(j - 1));
      }
    }
    return new OutAndGrad(outputs, gradients);
  }

  /** The batch, plus segment {@code j}'s input checkpoint value and the gradient that reached its output. */
  private Map<String, INDArray> inputsOf(int j, Map<String, INDArray> placeholders, Map<String, INDArray> forward,
      INDArray upstream) {
    Map<String, INDArray> in = new HashMap<>(placeholders);
    if (j > 0) {
      in.put(checkpoints.get(j - 1) + INPUT_SUFFIX, forward.get(checkpoints.get(j - 1)));
    }
    if (upstream != null && j < checkpoints.size()) {
      in.put(checkpoints.get(j) + UPSTREAM_SUFFIX, upstream);
    }
    return in;
  }

  private List<SameDiff> build(String loss) {
    List<SameDiff> built = new ArrayList<>();
    for (int j = 0; j <= checkpoints.size(); j++) {
      SameDiff segment = GraphCopies.copy(sd);
      String input = null;
      if (j > 0) {
        String cut = checkpoints.get(j - 1);
        input = cut + INPUT_SUFFIX;
        SDVariable c = sd.getVariable(cut);
        segment.placeHolder(input, c.dataType(), placeholderShape(c));
        GraphRewriter.of(segment).redirect(cut, input, Set.of());
      }
      if (j < checkpoints.size()) {
        String end = checkpoints.get(j);
        SDVariable c = segment.getVariable(end);
        SDVariable g = segment.placeHolder(end + UPSTREAM_SUFFIX, c.dataType(), placeholderShape(c));
        segment.sum(end + SURROGATE_SUFFIX, c.mul(g));
        segment.setLossVariables(end + SURROGATE_SUFFIX);
      } else {
        segment.setLossVariables(loss);
      }
      built.add(segment);
      GradientFunction.prepare(segment, input == null ? new String[0] : new String[] {input});
      // copying a graph duplicates its trainable arrays before pointing the copy at the originals: collect those
      // duplicates now rather than letting them pile up over the segments (full fine-tuning: 2 × 40 MB a segment)
      System.gc();
    }
    return built;
  }

  private static long[] placeholderShape(SDVariable v) {
    long[] shape = v.getShape();
    if (shape == null) {
      return new long[] {-1, -1};
    }
    long[] unknown = new long[shape.length];
    Arrays.fill(unknown, -1);
    return unknown;
  }

  private void shareArrays() {
    for (SameDiff segment : segments) {
      GraphCopies.shareArrays(sd, segment);
    }
  }
}
