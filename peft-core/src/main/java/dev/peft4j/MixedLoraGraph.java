package dev.peft4j;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.LowRankAdapter.LowRankUpdate;
import dev.peft4j.graph.GraphCopies;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.graph.RowMajorArrayCache;
import dev.peft4j.model.ModelInputs;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * A copy of a model's graph, every adapter out, with one gathered low-rank branch on each module that a LoRA-only
 * adapter ({@link LowRankAdapter}) adapts: it runs a batch whose rows name different such adapters in one forward,
 * the base once for the whole batch and each row's own update beside it (Hugging Face PEFT's
 * {@code _mixed_batch_forward} runs the base once too, then one LoRA delta per adapter's sub-batch).
 * <pre>
 *   per call:   slot[b] ∈ 0..k   row b's adapter among the k the batch names, 0 for a base row      [rows]
 *               A: [k+1, in, r]   B: [k+1, r, out]   stack s_j·A_j, B_j at slot j; zeros at slot 0, and where
 *               adapter j does not adapt the module; a smaller rank zero-padded to r (the product is the same)
 *   per module: x: [rows·t, in] → [rows, t, in]        t: tokens per row (1 for a pooled [rows, in] input)
 *               y' = y + reshape((x·gather(A, slot)) · gather(B, slot), [rows·t, out])
 *                        [rows, t, in]·[rows, in, r] → [rows, t, r];  ·[rows, r, out] → [rows, t, out]
 * </pre>
 * The stacked weights are placeholders filled from the adapters' live arrays at every call, so a trained or loaded
 * adapter needs no rebuild and concurrent calls share nothing mutable; the copy's base weights are the original's
 * arrays ({@link GraphCopies#shareArrays}). It is rebuilt when its adapters' modules or rank, the original's ops or
 * a base weight array change ({@link #isCurrent}). The update is added where LoRA's own branch adds it, so a row's
 * result equals running it alone with its adapter (to float rounding: the batched matmuls sum in another order).
 * Models whose module inputs are not grouped by batch row ({@code [rows·t, in]}, row-major) are not supported; every
 * model peft4j builds groups them so.
 */
final class MixedLoraGraph {

  /** Each row's slot in the stacked weights: 0 for the base, j for the batch's j-th adapter. */
  static final String SLOT = "peft/mixed/slot";    // INT32 [rows]
  /** The number of rows, for the reshape of each module's input. */
  static final String ROWS = "peft/mixed/rows";    // INT64 [1]

  /** One gathered branch: the names of its stacked-weight placeholders. */
  private record Module(String name, String a, String b, long in, long out) {}

  private final SameDiff original;
  private final SameDiff graph;
  private final Map<String, Module> modules;
  private final int rank;
  private final DataType dataType;
  private final Set<String> originalOps;
  // the original's weight arrays the copy shares: a replaced one (a load) means a rebuild
  private final Map<String, INDArray> sharedWeights;

  private MixedLoraGraph(SameDiff original, SameDiff graph, Map<String, Module> modules, int rank, DataType dataType,
      Set<String> originalOps, Map<String, INDArray> sharedWeights) {
    this.original = original;
    this.graph = graph;
    this.modules = modules;
    this.rank = rank;
    this.dataType = dataType;
    this.originalOps = originalOps;
    this.sharedWeights = sharedWeights;
  }

  /**
   * Builds the variant of {@code sd} for the LoRA-only adapters {@code updates} (adapter → its updates). Call with
   * every adapter of the model disabled, under the model's write lock.
   */
  static MixedLoraGraph build(SameDiff sd, Map<String, List<LowRankUpdate>> updates) {
    Map<String, long[]> shapes = new LinkedHashMap<>(); // module → {in, out}
    int rank = 1;
    DataType dataType = null;
    for (List<LowRankUpdate> list : updates.values()) {
      for (LowRankUpdate u : list) {
        shapes.putIfAbsent(u.module(), new long[] {u.a().size(0), u.b().size(1)});
        rank = Math.max(rank, Math.toIntExact(u.a().size(1)));
        dataType = u.a().dataType();
      }
    }
    SameDiff copy = GraphCopies.copy(sd);
    GraphCopies.shareArrays(sd, copy); // invokeGraphOn duplicated every weight: point the copy back at the originals
    GraphRewriter g = GraphRewriter.of(copy);
    Map<String, Module> modules = new LinkedHashMap<>();
    if (!shapes.isEmpty()) {
      DataType type = dataType;
      int r = rank;
      SDVariable slot = copy.placeHolder(SLOT, DataType.INT32, -1);                        // [rows]
      SDVariable rows = copy.placeHolder(ROWS, DataType.INT64, 1);                         // [1]
      shapes.forEach((name, inOut) -> {
        LinearModule m = g.linearModule(name);
        String scope = "peft/mixed/" + name;
        long in = inOut[0];
        long out = inOut[1];
        g.spliceBranch(m.output(), () -> {
          SDVariable x = copy.getVariable(m.input());                                      // [rows·t, in]
          SDVariable a = copy.placeHolder(scope + "/lora_A", type, -1, in, r);             // [k+1, in, r]
          SDVariable b = copy.placeHolder(scope + "/lora_B", type, -1, r, out);            // [k+1, r, out]
          SDVariable shape = copy.concat(0, rows, copy.constant(Nd4j.createFromArray(-1L, in)));
          SDVariable xRows = copy.reshape(x, shape);                                       // [rows, t, in]
          SDVariable xa = copy.mmul(xRows, copy.gather(a, slot, 0));                       // [rows, t, r]
          SDVariable update = copy.mmul(xa, copy.gather(b, slot, 0));                      // [rows, t, out]
          return copy.getVariable(m.output()).add(scope + "/sum", copy.reshape(update, -1, out)).name(); // [n, out]
        }, sum -> sum);
        modules.put(name, new Module(name, scope + "/lora_A", scope + "/lora_B", in, out));
      });
    }
    Map<String, INDArray> shared = new HashMap<>();
    for (SDVariable v : sd.variables()) {
      if (v.getVariableType() == VariableType.VARIABLE || v.getVariableType() == VariableType.CONSTANT) {
        shared.put(v.name(), sd.getArrForVarName(v.name()));
      }
    }
    return new MixedLoraGraph(sd, copy, modules, rank, dataType, GraphRewriter.of(sd).opNames(), shared);
  }

  /**
   * Whether this variant still fits the original and {@code updates}: the same adapted modules and rank, the same ops
   * in the original, and every weight array the copy shares still the original's.
   */
  boolean isCurrent(Map<String, List<LowRankUpdate>> updates) {
    Set<String> wanted = new java.util.LinkedHashSet<>();
    int r = 1;
    for (List<LowRankUpdate> list : updates.values()) {
      for (LowRankUpdate u : list) {
        wanted.add(u.module());
        r = Math.max(r, Math.toIntExact(u.a().size(1)));
        if (u.a().dataType() != dataType) {
          return false;
        }
      }
    }
    if (!wanted.equals(modules.keySet()) || r != rank || !GraphRewriter.of(original).opNames().equals(originalOps)) {
      return false;
    }
    for (Map.Entry<String, INDArray> e : sharedWeights.entrySet()) {
      if (!original.hasVariable(e.getKey()) || original.getArrForVarName(e.getKey()) != e.getValue()) {
        return false;
      }
    }
    return true;
  }

  /**
   * Runs the batch: row i with adapter {@code adapterPerRow.get(i)} (a key of {@code updates}), or the base where
   * that is null. Safe from several threads at once under the model's read lock.
   *
   * @throws IllegalArgumentException if a requested output has no batch dimension
   */
  Map<String, INDArray> output(Map<String, INDArray> inputs, List<String> adapterPerRow,
      Map<String, List<LowRankUpdate>> updates, String... outputs) {
    int rows = adapterPerRow.size();
    Map<String, Integer> slots = new LinkedHashMap<>();
    int[] slot = new int[rows];
    for (int i = 0; i < rows; i++) {
      String name = adapterPerRow.get(i);
      slot[i] = name == null ? 0 : slots.computeIfAbsent(name, n -> slots.size() + 1);
    }
    Map<String, INDArray> feed = new HashMap<>(inputs);
    feed.put(SLOT, Nd4j.createFromArray(slot));
    feed.put(ROWS, Nd4j.createFromArray(new long[] {rows}));
    Map<String, INDArray[]> stacks = new HashMap<>();
    for (Module m : modules.values()) {
      INDArray a = Nd4j.zeros(dataType, slots.size() + 1, m.in(), rank);                 // [k+1, in, r]
      INDArray b = Nd4j.zeros(dataType, slots.size() + 1, rank, m.out());                // [k+1, r, out]
      feed.put(m.a(), a);
      feed.put(m.b(), b);
      stacks.put(m.name(), new INDArray[] {a, b});
    }
    slots.forEach((name, j) -> {
      for (LowRankUpdate u : updates.get(name)) {
        INDArray[] ab = stacks.get(u.module());
        long r = u.a().size(1);
        ab[0].get(NDArrayIndex.point(j), NDArrayIndex.all(), NDArrayIndex.interval(0, r)).assign(u.a());
        ab[1].get(NDArrayIndex.point(j), NDArrayIndex.interval(0, r), NDArrayIndex.all())
            .assign(u.b().mul(u.scaling()));
      }
    });
    RowMajorArrayCache.install(graph); // the calling thread's own session: SameDiff keeps one per thread
    Map<String, INDArray> out = graph.output(ModelInputs.complete(graph, feed), outputs);
    for (String o : outputs) {
      INDArray v = out.get(o);
      checkArgument(v.rank() > 0 && v.size(0) == rows, "output '%s' has no batch dimension (shape %s)", o,
          Arrays.toString(v.shape()));
    }
    return out;
  }
}
