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
 * A copy of a model's graph, every adapter out, with one masked low-rank branch on each module that a LoRA-only
 * adapter ({@link LowRankAdapter}) adapts: it runs a batch whose rows name different such adapters in one forward,
 * the base once for the whole batch and each row's own update beside it (Hugging Face PEFT's
 * {@code _mixed_batch_forward} runs the base once too, then one LoRA delta per adapter's sub-batch).
 * <pre>
 *   per call:   the k adapters the batch names, each a block of r columns (a smaller rank zero-padded to r)
 *               A: [in, k·r] = [A_1 … A_k]     B: [k·r, out] = [s_1·B_1; …; s_k·B_k]   (zeros where adapter j does
 *               not adapt the module)          mask: [rows, 1, k·r], 1 on the block of the row's adapter, 0 elsewhere
 *                                              (everywhere for a base row)
 *   per module: x: [rows·t, in]                t: tokens per row (1 for a pooled [rows, in] input)
 *               y' = y + reshape(reshape(x·A, [rows, t, k·r]) ⊙ mask, [rows·t, k·r]) · B
 * </pre>
 * Two plain 2-D matmuls per module, k times LoRA's own FLOPs (at k = 8, r = 16 on MiniLM's query and value about a
 * tenth of the forward's), instead of gathering each row's A and B for batched matmuls: ND4J M2.1 runs 2-D matmuls
 * fastest, and the gathered form cost ~30% over the base forward at 32 rows where this one cost ~1% (CPU time, one
 * process, under load; peft-bench HISTORY, round 5). The stacked weights and the mask are placeholders filled from the
 * adapters' live arrays at every call, so a trained or loaded adapter needs no rebuild and concurrent calls share
 * nothing mutable; the copy's base weights are the original's arrays ({@link GraphCopies#copy}). It is rebuilt
 * when its adapters' modules or rank, the original's ops or a base weight array change ({@link #isCurrent}). The
 * update is added where LoRA's own branch adds it, so a row's result equals running it alone with its adapter (to
 * float rounding: the matmuls sum in another order). Models whose module inputs are not grouped by batch row
 * ({@code [rows·t, in]}, row-major) are not supported; every model peft4j builds groups them so.
 */
final class MixedLoraGraph {

  /** 1 on the r columns of each row's adapter, 0 elsewhere (everywhere for a base row). */
  static final String MASK = "peft/mixed/mask";            // [rows, 1, k·r]
  /** The shapes {rows, -1, k·r} and {-1, k·r}: x·A by row and back by token. */
  static final String BY_ROW = "peft/mixed/by_row";        // INT64 [3]
  static final String BY_TOKEN = "peft/mixed/by_token";    // INT64 [2]

  /** One masked branch: the names of its stacked-weight placeholders. */
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
    GraphRewriter g = GraphRewriter.of(copy);
    Map<String, Module> modules = new LinkedHashMap<>();
    if (!shapes.isEmpty()) {
      DataType type = dataType;
      SDVariable mask = copy.placeHolder(MASK, type, -1, 1, -1);                         // [rows, 1, k·r]
      SDVariable byRow = copy.placeHolder(BY_ROW, DataType.INT64, 3);                    // {rows, -1, k·r}
      SDVariable byToken = copy.placeHolder(BY_TOKEN, DataType.INT64, 2);                // {-1, k·r}
      shapes.forEach((name, inOut) -> {
        LinearModule m = g.linearModule(name);
        String scope = "peft/mixed/" + name;
        long in = inOut[0];
        long out = inOut[1];
        g.spliceBranch(m.output(), () -> {
          SDVariable x = copy.getVariable(m.input());                                      // [rows·t, in]
          SDVariable a = copy.placeHolder(scope + "/lora_A", type, in, -1);                // [in, k·r]
          SDVariable b = copy.placeHolder(scope + "/lora_B", type, -1, out);               // [k·r, out]
          SDVariable xa = copy.reshape(x.mmul(a), byRow).mul(mask);                        // [rows, t, k·r]
          SDVariable update = copy.reshape(xa, byToken).mmul(b);                           // [rows·t, out]
          return copy.getVariable(m.output()).add(scope + "/sum", update).name();          // [rows·t, out]
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
    Map<String, Integer> blocks = new LinkedHashMap<>(); // adapter → its block of r columns, 0..k-1
    for (String name : adapterPerRow) {
      if (name != null) {
        blocks.computeIfAbsent(name, n -> blocks.size());
      }
    }
    long width = (long) Math.max(1, blocks.size()) * rank; // k·r; one zero block for a batch of base rows
    INDArray mask = Nd4j.zeros(dataType, rows, 1, width);                                  // [rows, 1, k·r]
    for (int i = 0; i < rows; i++) {
      String name = adapterPerRow.get(i);
      if (name != null) {
        long from = (long) blocks.get(name) * rank;
        mask.get(NDArrayIndex.point(i), NDArrayIndex.point(0), NDArrayIndex.interval(from, from + rank)).assign(1);
      }
    }
    Map<String, INDArray> feed = new HashMap<>(inputs);
    feed.put(MASK, mask);
    feed.put(BY_ROW, Nd4j.createFromArray((long) rows, -1L, width));
    feed.put(BY_TOKEN, Nd4j.createFromArray(-1L, width));
    Map<String, INDArray[]> stacks = new HashMap<>();
    for (Module m : modules.values()) {
      INDArray a = Nd4j.zeros(dataType, m.in(), width);                                    // [in, k·r]
      INDArray b = Nd4j.zeros(dataType, width, m.out());                                   // [k·r, out]
      feed.put(m.a(), a);
      feed.put(m.b(), b);
      stacks.put(m.name(), new INDArray[] {a, b});
    }
    blocks.forEach((name, j) -> {
      for (LowRankUpdate u : updates.get(name)) {
        INDArray[] ab = stacks.get(u.module());
        long from = (long) j * rank;
        long to = from + u.a().size(1);
        ab[0].get(NDArrayIndex.all(), NDArrayIndex.interval(from, to)).assign(u.a());
        ab[1].get(NDArrayIndex.interval(from, to), NDArrayIndex.all()).assign(u.b().mul(u.scaling()));
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
