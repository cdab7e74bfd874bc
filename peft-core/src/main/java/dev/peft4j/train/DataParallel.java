package dev.peft4j.train;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.graph.GraphCopies;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.RowMajorArrayCache;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.nd4j.autodiff.listeners.Listener;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Environment;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Data parallelism on one machine's cores: the loss and gradients of {@link Gradients#of}, or the outputs of
 * {@link SameDiff#output}, with the batch split row-wise into shards that run at the same time, one per core, each
 * with single-threaded ops.
 *
 * <p>A batch of {@code n} rows is cut into {@code W} shards of {@code nᵢ} rows ({@code W} = the number of workers, or
 * {@code n} if smaller; sizes differ by at most one). Shard {@code i} runs through replica {@code i} of the graph
 * ({@link SameDiff#invokeGraphOn}), whose weights are the original's arrays: shard 0 on the calling thread, shard
 * {@code i > 0} on worker thread {@code i}, all at the same time. A batch that makes one shard (one row) runs through
 * the graph itself, with ND4J's usual threading. The results are combined as
 * <pre>
 *   L = Σᵢ (nᵢ/n)·Lᵢ        ∂L/∂θ = Σᵢ (nᵢ/n)·∂Lᵢ/∂θ
 * </pre>
 * which is exact when the loss is a mean over the batch's rows (classification heads; a language-model loss whose
 * rows count equally many tokens) and otherwise the per-shard weighting of PyTorch's DistributedDataParallel; the
 * outputs of an inference run are the shards' outputs stacked along the first axis. Every input array of rank ≥ 1 is
 * split along its first axis, which must be the batch; scalars go to every shard whole.
 *
 * <p>Why: ND4J's ops parallelise each op over the cores, which on small machines leaves them waiting on one another
 * between ops (on 2 cores a MiniLM training step ran about as fast on one thread as on two). Shards keep every core
 * busy with whole ops instead: while {@link #gradients} or {@link #output} runs, ND4J's ops and its BLAS run
 * single-threaded, and the previous thread counts are restored when it returns (other threads using ND4J at that
 * moment run single-threaded too). Measured on all-MiniLM-L6-v2 at batch 8 × 128 on 2 cores: see {@code peft-bench/README.md}.
 *
 * <p>Random ops seeded per op name ({@link RandomOps#seed}, as {@link Trainer} does) stay reproducible,
 * and each replica mixes its index into a random op's state, so that no two shards share a dropout mask; the masks
 * are not those of an unsplit step (shard 0 draws the unsplit graph's). The graph's listeners are called from every
 * worker thread. Replicas follow the original: weight arrays are re-shared before each call, and the replicas are
 * rebuilt when the graph's ops or trainable variables change (a rewrite, a freeze, an adapter added) or gradients of
 * another loss are asked for.
 *
 * <p>Start-up: the replicas and their gradient functions are built at the first call, each on the thread that will run
 * it, at the same time, so that the first call costs about one gradient-function build, not one per worker. The graph
 * itself never runs a shard of more than one: a switch between training and inference mode rewires the graph (a
 * dropout branch) and drops its sessions and gradient function, which would leave shard 0 cold after every evaluation
 * between training steps. Instead the replicas are kept by the wiring they were copied from, one set for each of the
 * last two wirings (the training mode's and the inference mode's), so that training → evaluation → training finds its
 * warm replicas again; a change of ops or trainable variables drops every set.
 *
 * <p>Memory: each replica holds the activations of its shard (together about one unsplit batch's), its own copy of the
 * graph's structure and of its gradient function, not of its weights; a second set (inference mode) holds another
 * copy of the structure. One instance serves one calling thread; {@link #close} stops the worker threads.
 */
public final class DataParallel implements AutoCloseable {

  private final SameDiff sd;
  private final int workers;
  private final int minShardRows;
  // one single-thread executor per replica: SameDiff keeps a session per graph and thread, so replica i always runs
  // on thread i and never builds a second session
  private final List<ExecutorService> threads = new ArrayList<>();
  // replica sets by the graph they were copied from, the most recently used last; at most MODE_SETS
  private final LinkedHashMap<BuiltFrom, List<SameDiff>> replicaSets = new LinkedHashMap<>(4, 0.75f, true);
  private int replicasBuilt; // for tests: how many replicas were ever built
  private boolean closed;

  /** Replica sets kept at once: one per mode, training and inference, so that a switch between them rebuilds none. */
  private static final int MODE_SETS = 2;

  /** What a replica set was copied from: the ops, trainable variables and loss, and how every op is wired. */
  private record BuiltFrom(GraphCopies.Structure structure, Map<String, List<String>> wiring) {
    boolean sameGraphAs(BuiltFrom other) {
      return structure.ops().equals(other.structure.ops())
          && structure.trainable().equals(other.structure.trainable());
    }

    /** Whether replicas built from this serve {@code wanted}: the same graph and wiring, and its loss unless inference. */
    boolean serves(BuiltFrom wanted) {
      return sameGraphAs(wanted) && wiring.equals(wanted.wiring)
          && (wanted.structure.loss() == null || wanted.structure.loss().equals(structure.loss()));
    }
  }

  private DataParallel(SameDiff sd, int workers, int minShardRows) {
    this.sd = sd;
    this.workers = workers;
    this.minShardRows = minShardRows;
    for (int i = 1; i < workers; i++) {
      String name = "peft4j-data-parallel-" + i;
      threads.add(Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
      }));
    }
  }

  /**
   * Data parallelism for {@code sd} over {@code workers} shards (the machine's cores, typically:
   * {@code Runtime.getRuntime().availableProcessors()}); 1 runs every batch whole on the calling thread.
   *
   * @throws IllegalArgumentException if {@code workers} is below 1
   */
  public static DataParallel of(SameDiff sd, int workers) {
    checkArgument(sd != null, "graph must not be null");
    checkArgument(workers >= 1, "workers must be >= 1, got %s", workers);
    return new DataParallel(sd, workers, 1);
  }

  /**
   * As {@link #of}, but never cutting a shard of fewer than {@code minShardRows} rows from a batch of more rows (fewer
   * shards instead): {@link Trainer}'s default uses 2, because in ND4J 1.0.0-M2.1 the gradient of a one-row batch
   * fails on some graphs where a larger batch's works (a {@code NullPointerException} in the {@code reduce_sum} of a
   * linear layer's gradient, seen on a BERT sequence-classification graph loaded from Hugging Face files), and a default
   * must not break a batch that trains without it.
   */
  static DataParallel of(SameDiff sd, int workers, int minShardRows) {
    checkArgument(sd != null, "graph must not be null");
    checkArgument(workers >= 1, "workers must be >= 1, got %s", workers);
    checkArgument(minShardRows >= 1, "minShardRows must be >= 1, got %s", minShardRows);
    return new DataParallel(sd, workers, minShardRows);
  }

  public int workers() {
    return workers;
  }

  /**
   * The loss (under its name) and the gradients of the loss with respect to {@code variables}, for one batch.
   *
   * @param loss the graph's loss variable
   * @param variables variables whose gradients to return; one that does not reach the loss has no entry
   * @throws IllegalArgumentException if the inputs of rank ≥ 1 do not share their first dimension (the message lists
   *     every input's shape), or a name is not in the graph
   */
  public OutAndGrad gradients(Map<String, INDArray> placeholders, String loss, Collection<String> variables) {
    checkArgument(sd.hasVariable(loss), "no loss variable '%s' in the graph", loss);
    List<Map<String, INDArray>> shards = split(placeholders, workers, minShardRows);
    List<OutAndGrad> parts = run(shards, loss,
        (graph, shard) -> Gradients.of(graph, shard, List.of(loss), variables));
    return combine(parts, shards, loss, variables);
  }

  /**
   * The values of {@code outputs} for one batch, as {@link SameDiff#output} computes them in the graph's current mode,
   * each the shards' values stacked along the first axis.
   *
   * @throws IllegalArgumentException if an output does not have one row per input row (a loss, a reduction over the
   *     batch), the inputs of rank ≥ 1 do not share their first dimension, or a name is not in the graph
   */
  public Map<String, INDArray> output(Map<String, INDArray> placeholders, String... outputs) {
    for (String o : outputs) {
      checkArgument(sd.hasVariable(o), "no variable '%s' in the graph", o);
    }
    List<Map<String, INDArray>> shards = split(placeholders, workers, minShardRows);
    List<Map<String, INDArray>> parts = run(shards, null, (graph, shard) -> {
      RowMajorArrayCache.install(graph); // as PeftModel.output does
      Map<String, INDArray> values = graph.output(shard, outputs);
      RowMajorArrayCache.reclaim(graph, values.values());
      return values;
    });
    Map<String, INDArray> stacked = new LinkedHashMap<>();
    for (String o : outputs) {
      INDArray[] values = new INDArray[parts.size()];
      for (int i = 0; i < parts.size(); i++) {
        values[i] = parts.get(i).get(o);
        long rows = rowsOf(shards.get(i));
        checkArgument(values[i].rank() > 0 && values[i].size(0) == rows, "output '%s' of shape %s does not have one "
            + "row per input row (the shard had %s rows), so the shards' values cannot be stacked", o,
            Arrays.toString(values[i].shape()), rows);
      }
      stacked.put(o, values.length == 1 ? values[0] : Nd4j.concat(0, values));
    }
    return stacked;
  }

  /**
   * Runs {@code task} on every shard at once, shard 0 on this thread through the graph and the others on the workers
   * through the replicas, with ND4J's ops and BLAS single-threaded meanwhile; the results in shard order.
   */
  private <T> List<T> run(List<Map<String, INDArray>> shards, String loss, ShardTask<T> task) {
    checkState(!closed, "this DataParallel was closed");
    if (shards.size() == 1) { // nothing runs beside it: the graph itself, with ND4J's own threading
      return List.of(task.run(sd, shards.get(0)));
    }
    List<SameDiff> replicas = replicasFor(loss, shards.size());
    Environment env = Nd4j.getEnvironment();
    int masterThreads = env.maxMasterThreads();
    int blasThreads = Nd4j.factory().blas().getMaxThreads();
    env.setMaxMasterThreads(1);
    Nd4j.factory().blas().setMaxThreads(1);
    try {
      List<Future<T>> running = new ArrayList<>();
      for (int i = 0; i < shards.size(); i++) {
        replicas.get(i).setListeners(listenersFor(i));
      }
      for (int i = 1; i < shards.size(); i++) {
        SameDiff replica = replicas.get(i);
        Map<String, INDArray> shard = shards.get(i);
        running.add(threads.get(i - 1).submit(() -> task.run(replica, shard)));
      }
      List<T> parts = new ArrayList<>();
      RuntimeException failure = null;
      try {
        parts.add(task.run(replicas.get(0), shards.get(0)));
      } catch (RuntimeException e) {
        failure = e;
      }
      parts.addAll(awaitAll(running, failure)); // no shard may still run when this returns
      return parts;
    } finally {
      env.setMaxMasterThreads(masterThreads);
      Nd4j.factory().blas().setMaxThreads(blasThreads);
    }
  }

  @FunctionalInterface
  private interface ShardTask<T> {
    T run(SameDiff graph, Map<String, INDArray> shard);
  }

  /** Stops the worker threads; {@link #gradients} and {@link #output} refuse to run afterwards. */
  @Override
  public void close() {
    closed = true;
    threads.forEach(ExecutorService::shutdown);
  }

  private static OutAndGrad combine(List<OutAndGrad> parts, List<Map<String, INDArray>> shards, String loss,
      Collection<String> variables) {
    long rows = shards.stream().mapToLong(DataParallel::rowsOf).sum();
    double lossValue = 0;
    Map<String, INDArray> gradients = new LinkedHashMap<>();
    for (int i = 0; i < parts.size(); i++) {
      double weight = (double) rowsOf(shards.get(i)) / rows;
      lossValue += weight * parts.get(i).getOutputs().get(loss).getDouble(0);
      for (String v : variables) {
        INDArray g = parts.get(i).getGradients().get(v);
        if (g != null) {
          INDArray weighted = parts.size() == 1 ? g : g.muli(weight); // each part's arrays are its own
          gradients.merge(v, weighted, INDArray::addi);
        }
      }
    }
    // the other parts' gradients were added into part 0's: free their buffers now rather than when the collector
    // finalises them (full fine-tuning on MiniLM: 40 MiB a step per extra worker)
    for (int i = 1; i < parts.size(); i++) {
      Map<INDArray, Boolean> added = new IdentityHashMap<>();
      parts.get(i).getGradients().values().forEach(g -> added.put(g, true));
      gradients.values().forEach(added::remove); // a gradient only this part had is the result itself
      StepGradients.free(added.keySet());
    }
    INDArray lossArray = parts.get(0).getOutputs().get(loss);
    Map<String, INDArray> outputs = new HashMap<>();
    outputs.put(loss, parts.size() == 1 ? lossArray : lossArray.ulike().assign(lossValue));
    return new OutAndGrad(outputs, gradients);
  }

  /**
   * The first {@code count} replicas of the set copied from the graph as it is now: the set built for the same ops,
   * trainable variables and wiring (and {@code loss}, unless {@code loss} is null: an inference run), grown or built
   * when needed, its weights re-shared with the graph's. Sets of other ops or trainable variables are dropped; of the
   * others the least recently used goes beyond {@value #MODE_SETS}.
   */
  private List<SameDiff> replicasFor(String loss, int count) {
    BuiltFrom now = new BuiltFrom(GraphCopies.Structure.of(sd, loss), GraphRewriter.of(sd).wiring());
    replicaSets.keySet().removeIf(b -> !b.sameGraphAs(now)); // a real change: those replicas are of another graph
    BuiltFrom found = replicaSets.keySet().stream().filter(b -> b.serves(now)).findFirst().orElse(null);
    List<SameDiff> set;
    if (found != null) {
      set = replicaSets.get(found); // which also makes it the most recently used
    } else {
      if (replicaSets.size() == MODE_SETS) {
        replicaSets.remove(replicaSets.keySet().iterator().next()); // the least recently used
      }
      set = new ArrayList<>();
      replicaSets.put(now, set);
    }
    if (set.size() < count) {
      set.addAll(build(set.size(), count, loss));
    }
    List<SameDiff> replicas = set.subList(0, count);
    for (SameDiff replica : replicas) {
      GraphCopies.shareArrays(sd, replica);
    }
    return replicas;
  }

  /**
   * Replicas {@code from} to {@code to - 1}, copied here in turn (copying reads the graph) and given their gradient
   * functions for {@code loss} (when not null) at the same time, each on the thread that will run it: building a
   * gradient function is most of a replica's cost, and two cores build two at once.
   */
  private List<SameDiff> build(int from, int to, String loss) {
    List<SameDiff> built = new ArrayList<>();
    for (int i = from; i < to; i++) {
      SameDiff replica = GraphCopies.copy(sd);
      if (loss != null) {
        replica.setLossVariables(loss);
      }
      built.add(replica);
    }
    // copying a graph duplicates its trainable arrays before pointing the copy at the originals: collect them
    System.gc();
    if (loss != null) {
      List<Future<Object>> preparing = new ArrayList<>();
      for (int i = Math.max(from, 1); i < to; i++) {
        SameDiff replica = built.get(i - from);
        preparing.add(threads.get(i - 1).submit(() -> {
          GradientFunction.prepare(replica);
          return null;
        }));
      }
      RuntimeException failure = null;
      try {
        if (from == 0) {
          GradientFunction.prepare(built.get(0));
        }
      } catch (RuntimeException e) {
        failure = e;
      }
      awaitAll(preparing, failure); // none may still be building when this returns
    }
    replicasBuilt += built.size();
    return built;
  }

  /** For tests: how many replicas this instance has built so far. */
  int replicasBuilt() {
    return replicasBuilt;
  }

  /** For tests: the replicas that served the last call of this mode's wiring, or none yet. */
  List<SameDiff> replicas(String loss) {
    BuiltFrom now = new BuiltFrom(GraphCopies.Structure.of(sd, loss), GraphRewriter.of(sd).wiring());
    return replicaSets.entrySet().stream().filter(e -> e.getKey().serves(now)).map(e -> List.copyOf(e.getValue()))
        .findFirst().orElse(List.of());
  }

  /** The graph's listeners, then one that gives replica {@code i}'s random ops their own state. */
  private List<Listener> listenersFor(int replica) {
    List<Listener> listeners = new ArrayList<>();
    if (sd.getListeners() != null) {
      listeners.addAll(sd.getListeners());
    }
    if (replica > 0) { // shard 0 draws the masks of the graph itself
      listeners.add(RandomOps.distinct(replica));
    }
    return listeners;
  }

  /**
   * The batch's shards: every input of rank ≥ 1 cut along its first axis into {@code min(workers, n)} row ranges
   * whose sizes differ by at most one; scalars go to every shard.
   */
  static List<Map<String, INDArray>> split(Map<String, INDArray> inputs, int workers) {
    return split(inputs, workers, 1);
  }

  /** As {@link #split(Map, int)}, with at most {@code n / minShardRows} shards (at least one). */
  static List<Map<String, INDArray>> split(Map<String, INDArray> inputs, int workers, int minShardRows) {
    long n = -1;
    for (INDArray a : inputs.values()) {
      if (a.rank() > 0) {
        if (n == -1) {
          n = a.size(0);
        }
        if (a.size(0) != n) {
          Map<String, String> shapes = new LinkedHashMap<>();
          inputs.forEach((k, v) -> shapes.put(k, Arrays.toString(v.shape())));
          throw new IllegalArgumentException("data-parallel gradients split every input along its first axis, "
              + "which must be the batch; the inputs' first dimensions differ: " + shapes);
        }
      }
    }
    checkArgument(n > 0, "no input has a batch dimension to split: %s", inputs.keySet());
    int shards = (int) Math.max(1, Math.min(workers, n / minShardRows));
    List<Map<String, INDArray>> out = new ArrayList<>();
    long from = 0;
    for (int i = 0; i < shards; i++) {
      long size = n / shards + (i < n % shards ? 1 : 0);
      Map<String, INDArray> shard = new HashMap<>();
      for (Map.Entry<String, INDArray> e : inputs.entrySet()) {
        INDArray a = e.getValue();
        shard.put(e.getKey(), a.rank() == 0 || shards == 1 ? a : rows(a, from, from + size));
      }
      out.add(shard);
      from += size;
    }
    return out;
  }

  private static INDArray rows(INDArray a, long from, long to) {
    INDArrayIndex[] index = new INDArrayIndex[a.rank()];
    Arrays.fill(index, NDArrayIndex.all());
    index[0] = NDArrayIndex.interval(from, to);
    return a.get(index).dup('c');
  }

  private static long rowsOf(Map<String, INDArray> shard) {
    return shard.values().stream().filter(a -> a.rank() > 0).findFirst().orElseThrow().size(0);
  }

  /**
   * Waits for every one of {@code futures}, also after a failure, and returns their results in order; throws
   * {@code failure} (a failure of the caller's own share, or null) or else the first future's failure, with the later
   * failures suppressed into it.
   */
  private static <T> List<T> awaitAll(List<Future<T>> futures, RuntimeException failure) {
    List<T> results = new ArrayList<>();
    for (Future<T> f : futures) {
      try {
        results.add(await(f));
      } catch (RuntimeException e) {
        if (failure == null) {
          failure = e;
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    if (failure != null) {
      throw failure;
    }
    return results;
  }

  private static <T> T await(Future<T> f) {
    try {
      return f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while a data-parallel shard ran", e);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException r) {
        throw r;
      }
      if (e.getCause() instanceof Error err) {
        throw err;
      }
      throw new IllegalStateException(e.getCause());
    }
  }
}
