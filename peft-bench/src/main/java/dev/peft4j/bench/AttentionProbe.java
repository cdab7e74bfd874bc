package dev.peft4j.bench;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.CustomOp;
import org.nd4j.linalg.api.ops.Op;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Why attention's ops (and LayerNorm's, and the mask add) run slower inside a MiniLM step than alone: a probe, not a
 * benchmark. It runs LoRA q,v steps (one worker) with a listener that times every attention op (any op with a rank-4
 * input) and every LayerNorm op (inputs of shape {@code [n, 1]}, or a mean over rows) where the graph runs it, and,
 * in alternate steps, replays the same op right after it on the very same arrays in four settings:
 * <ul>
 *   <li>{@code again}: at once, a second time (warm caches, nothing else ran in between);</li>
 *   <li>{@code afterGemm}: after an OpenBLAS GEMM {@code [1024,384]·[384,384]} (what the graph runs a few ops
 *       earlier: the q, k, v projections) — OpenBLAS's worker threads spin after each GEMM;</li>
 *   <li>{@code afterStream}: after an ND4J element-wise pass over 32 MB (the caches flushed, no BLAS call);</li>
 *   <li>{@code contiguous}: on 'c'-ordered copies of the inputs (custom ops only), to see what views and strides cost.</li>
 * </ul>
 * Steps rotate through four thread settings, set between steps as {@code DataParallel} sets them: ND4J's and
 * OpenBLAS's defaults; OpenBLAS on one thread; ND4J's ops on one master thread; both on one thread (as inside
 * {@code DataParallel}). {@code Gradients} runs attention's batched matmuls on one BLAS thread in every setting
 * ({@code BatchedMatmulBlasThreads}); before that change DEFAULT was the library's behaviour. Each setting alternates a clean step (its per-op times are the in-graph figures and its
 * wall and process CPU time the step's) with a replay step. Per-call medians are printed, which hold up on a loaded
 * machine better than sums; the layout (shape, strides, order, view) of every probed op's inputs is printed once.
 *
 * <pre>{@code
 * cd peft-bench && OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive mvn -B -q exec:exec -Dexec.executable=java \
 *     -Dexec.args="-Xmx8g -cp %classpath dev.peft4j.bench.AttentionProbe --rounds 4"
 * }</pre>
 */
public final class AttentionProbe {

  /** The thread settings a step runs under. */
  enum Threads {
    DEFAULT(-1, -1), BLAS_1(-1, 1), ND4J_1(1, -1), BOTH_1(1, 1);

    final int masterThreads;
    final int blasThreads;

    Threads(int masterThreads, int blasThreads) {
      this.masterThreads = masterThreads;
      this.blasThreads = blasThreads;
    }
  }

  /** Where an op's time was taken. */
  enum Where { GRAPH, AGAIN, AFTER_GEMM, AFTER_STREAM, CONTIGUOUS }

  private AttentionProbe() {}

  public static void main(String[] args) throws Exception {
    int rounds = 4;
    String config = "loraQV";
    int reps = 40;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--rounds" -> rounds = Integer.parseInt(args[++i]);
        case "--config" -> config = args[++i];
        case "--reps" -> reps = Integer.parseInt(args[++i]);
        default -> throw new IllegalArgumentException("unknown argument " + args[i]
            + "; expected --rounds N, --reps N or --config NAME");
      }
    }
    System.out.println("load average at start: " + loadAverage());
    System.out.printf(Locale.ROOT, "ND4J master threads %d, max threads %d, BLAS threads %d, BLAS vendor %s%n",
        Nd4j.getEnvironment().maxMasterThreads(), Nd4j.getEnvironment().maxThreads(),
        Nd4j.factory().blas().getMaxThreads(), Nd4j.factory().blas().getBlasVendor());
    MiniLmTrainingBenchmark bench = new MiniLmTrainingBenchmark();
    bench.config = config;
    bench.workers = 1;
    bench.setUp();
    int defaultMaster = Nd4j.getEnvironment().maxMasterThreads();
    int defaultBlas = Nd4j.factory().blas().getMaxThreads();
    Probe probe = new Probe();
    for (int s = 0; s < 2; s++) { // warm-up
      step(bench);
    }
    bench.sameDiff().setListeners(probe);
    for (int r = 0; r < rounds; r++) {
      for (Threads t : Threads.values()) {
        Nd4j.getEnvironment().setMaxMasterThreads(t.masterThreads > 0 ? t.masterThreads : defaultMaster);
        Nd4j.factory().blas().setMaxThreads(t.blasThreads > 0 ? t.blasThreads : defaultBlas);
        for (boolean replay : new boolean[] {false, true}) {
          probe.threads = t;
          probe.replay = replay;
          long cpu0 = processCpuNanos();
          long t0 = System.nanoTime();
          step(bench);
          long wall = System.nanoTime() - t0;
          long cpu = processCpuNanos() - cpu0;
          if (!replay) {
            probe.steps.computeIfAbsent(t, k -> new ArrayList<>()).add(new long[] {wall, cpu});
          }
        }
      }
      System.out.printf(Locale.ROOT, "round %d done, load average %s%n", r + 1, loadAverage());
    }
    Nd4j.getEnvironment().setMaxMasterThreads(defaultMaster);
    Nd4j.factory().blas().setMaxThreads(defaultBlas);
    bench.tearDown();
    probe.print();
    isolated(probe.captured, reps);
    System.out.println("load average at end: " + loadAverage());
    System.exit(0);
  }

  private static void step(MiniLmTrainingBenchmark bench) {
    bench.update(bench.gradients());
    bench.memory().afterStep();
  }

  static long processCpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  static String loadAverage() {
    try {
      return Files.readString(Path.of("/proc/loadavg")).trim();
    } catch (java.io.IOException e) {
      return "unknown (" + e.getMessage() + ")";
    }
  }

  /** The attention ops replayed alone after the steps. */
  private static final java.util.Set<String> ISOLATED = java.util.Set.of("matmul", "matmul_bp", "softmax",
      "softmax_bp");

  /** An op's function and copies of its inputs and arguments, to run it again outside the graph. */
  private record Captured(CustomOp op, List<INDArray> inputs, List<INDArray> outputs, long[] iArgs, double[] tArgs,
      boolean[] bArgs, DataType[] dArgs) {
    static Captured of(CustomOp op, OpContext ctx, List<INDArray> inputs, INDArray[] outputs) {
      return new Captured(op, inputs.stream().map(INDArray::dup).toList(),
          Arrays.stream(outputs).map(INDArray::ulike).toList(),
          ctx.getIArguments().stream().mapToLong(Long::longValue).toArray(),
          ctx.getTArguments().stream().mapToDouble(Double::doubleValue).toArray(), Probe.toBooleans(ctx.getBArguments()),
          ctx.getDArguments().toArray(new DataType[0]));
    }

    /** Runs the op once; returns its wall time in ns. */
    long run() {
      try (OpContext c = Nd4j.getExecutioner().buildContext()) {
        c.setInputArrays(inputs);
        c.setOutputArrays(outputs);
        c.setIArguments(iArgs);
        c.setTArguments(tArgs);
        c.setBArguments(bArgs);
        c.setDArguments(dArgs);
        long t0 = System.nanoTime();
        Nd4j.getExecutioner().exec(op, c);
        return System.nanoTime() - t0;
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }
  }

  /** The states an op runs in alone, outside the graph. */
  enum Before { ITSELF, IDLE_300MS, GEMM_BLAS_2, GEMM_BLAS_1, BLAS_1_DURING, ND4J_1_DURING }

  /**
   * The captured attention ops alone, in rotation: right after themselves; after 300 ms idle (OpenBLAS's workers
   * asleep: they spin for {@code 2^OPENBLAS_THREAD_TIMEOUT} cycles after a GEMM, then sleep); right after a GEMM on
   * two BLAS threads (workers spinning); after 300 ms idle and a GEMM on one BLAS thread (workers not woken); right
   * after themselves with OpenBLAS set to one thread during the op; the same with ND4J's ops on one master thread.
   */
  private static void isolated(Map<String, Captured> captured, int reps) throws InterruptedException {
    INDArray a = Nd4j.rand(DataType.FLOAT, 1024, 384);
    INDArray b = Nd4j.rand(DataType.FLOAT, 384, 384);
    INDArray c = Nd4j.create(DataType.FLOAT, 1024, 384);
    int blas = Nd4j.factory().blas().getMaxThreads();
    int master = Nd4j.getEnvironment().maxMasterThreads();
    System.out.printf(Locale.ROOT, "%nAlone (%d reps each, rotated; load average %s): median wall ms per call, and"
        + " process CPU ms per call (mean)%n", reps, loadAverage());
    for (Map.Entry<String, Captured> e : captured.entrySet()) {
      Map<Before, List<long[]>> t = new EnumMap<>(Before.class);
      for (int r = 0; r < reps; r++) {
        for (int i = 0; i < Before.values().length; i++) {
          Before before = Before.values()[(i + r) % Before.values().length];
          switch (before) {
            case ITSELF, BLAS_1_DURING, ND4J_1_DURING -> e.getValue().run();
            case IDLE_300MS -> Thread.sleep(300);
            case GEMM_BLAS_2 -> Nd4j.gemm(a, b, c, false, false, 1.0, 0.0);
            case GEMM_BLAS_1 -> {
              Thread.sleep(300);
              Nd4j.factory().blas().setMaxThreads(1);
              Nd4j.gemm(a, b, c, false, false, 1.0, 0.0);
              Nd4j.factory().blas().setMaxThreads(blas);
            }
          }
          if (before == Before.BLAS_1_DURING) {
            Nd4j.factory().blas().setMaxThreads(1);
          } else if (before == Before.ND4J_1_DURING) {
            Nd4j.getEnvironment().setMaxMasterThreads(1);
          }
          long c0 = processCpuNanos();
          long wall = e.getValue().run();
          Nd4j.factory().blas().setMaxThreads(blas);
          Nd4j.getEnvironment().setMaxMasterThreads(master);
          t.computeIfAbsent(before, x -> new ArrayList<>()).add(new long[] {wall, processCpuNanos() - c0});
        }
      }
      StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "    %-62s", e.getKey()));
      t.forEach((before, v) -> row.append(String.format(Locale.ROOT, "  %s %6.2f (%5.2f)", before,
          median(v, 0) / 1e6, v.stream().mapToLong(x -> x[1]).average().orElse(0) / 1e6)));
      System.out.println(row);
    }
  }

  /** Times probed ops in the graph and replays them. */
  private static final class Probe extends BaseListener {
    final Map<Threads, List<long[]>> steps = new EnumMap<>(Threads.class);
    /** key → thread setting → where → per-call wall ns, and the same for process CPU ns. */
    private final Map<String, Map<Threads, Map<Where, List<long[]>>>> times = new TreeMap<>();
    private final Map<String, String> layouts = new LinkedHashMap<>();
    final Map<String, Captured> captured = new LinkedHashMap<>();
    private final INDArray gemmA = Nd4j.rand(DataType.FLOAT, 1024, 384);
    private final INDArray gemmB = Nd4j.rand(DataType.FLOAT, 384, 384);
    private final INDArray gemmC = Nd4j.create(DataType.FLOAT, 1024, 384);
    private final INDArray stream = Nd4j.rand(DataType.FLOAT, 8 * 1024 * 1024);
    Threads threads = Threads.DEFAULT;
    boolean replay;
    private long started;
    private long startedCpu;
    private int rotation;

    @Override
    public boolean isActive(Operation operation) {
      return true;
    }

    @Override
    public void preOpExecution(SameDiff sd, At at, SameDiffOp op, OpContext opContext) {
      startedCpu = processCpuNanos();
      started = System.nanoTime();
    }

    @Override
    public void opExecution(SameDiff sd, At at, MultiDataSet batch, SameDiffOp op, OpContext ctx,
        INDArray[] outputs) {
      long wall = System.nanoTime() - started;
      long cpu = processCpuNanos() - startedCpu;
      DifferentialFunction f = op.getOp();
      String name = f.opName();
      List<INDArray> inputs = ctx.getInputArrays();
      if (!probed(name, inputs)) {
        return;
      }
      StringBuilder key = new StringBuilder(name);
      for (INDArray in : inputs) {
        key.append(' ').append(Arrays.toString(in.shape()).replace(" ", ""));
      }
      String k = key.toString();
      layouts.computeIfAbsent(k, x -> layout(inputs, outputs));
      if (f instanceof CustomOp custom && inputs.get(0).rank() == 4 && ISOLATED.contains(name)) {
        captured.computeIfAbsent(k, x -> Captured.of(custom, ctx, inputs, outputs));
      }
      if (!replay) {
        record(k, Where.GRAPH, wall, cpu);
        return;
      }
      // the replays run in a rotating order so that none always follows another
      Where[] order = {Where.AGAIN, Where.AFTER_GEMM, Where.AFTER_STREAM, Where.CONTIGUOUS};
      rotation++;
      for (int i = 0; i < order.length; i++) {
        Where w = order[(i + rotation) % order.length];
        if (w == Where.CONTIGUOUS && !(f instanceof CustomOp)) {
          continue;
        }
        OpContext runCtx = ctx;
        if (w == Where.CONTIGUOUS) {
          runCtx = Nd4j.getExecutioner().buildContext();
          runCtx.setInputArrays(inputs.stream().map(a -> a.dup('c')).toList());
          runCtx.setOutputArrays(Arrays.stream(outputs).map(INDArray::ulike).toList());
          runCtx.setIArguments(ctx.getIArguments().stream().mapToLong(Long::longValue).toArray());
          runCtx.setTArguments(ctx.getTArguments().stream().mapToDouble(Double::doubleValue).toArray());
          runCtx.setBArguments(toBooleans(ctx.getBArguments()));
          runCtx.setDArguments(ctx.getDArguments().toArray(new DataType[0]));
        } else if (w == Where.AFTER_GEMM) {
          Nd4j.gemm(gemmA, gemmB, gemmC, false, false, 1.0, 0.0);
        } else if (w == Where.AFTER_STREAM) {
          stream.addi(1e-9);
        }
        long c0 = processCpuNanos();
        long t0 = System.nanoTime();
        if (f instanceof CustomOp custom) {
          Nd4j.getExecutioner().exec(custom, runCtx);
        } else {
          Nd4j.getExecutioner().exec((Op) f, runCtx);
        }
        record(k, w, System.nanoTime() - t0, processCpuNanos() - c0);
        if (runCtx != ctx) {
          runCtx.purge();
        }
      }
    }

    private static boolean[] toBooleans(List<Boolean> values) {
      boolean[] b = new boolean[values.size()];
      for (int i = 0; i < b.length; i++) {
        b[i] = values.get(i);
      }
      return b;
    }

    /** Attention: a rank-4 input. LayerNorm: a {@code [n, 1]} input (mean, variance, 1/σ) or a mean over rows. */
    private static boolean probed(String name, List<INDArray> inputs) {
      if (name.contains("random") || name.contains("dropout") || name.contains("bernoulli") || inputs.isEmpty()) {
        return false;
      }
      for (INDArray in : inputs) {
        if (in.rank() == 4 && in.length() > 1024) {
          return true;
        }
        if (in.rank() == 2 && in.size(1) == 1 && in.size(0) > 1) {
          return true;
        }
      }
      return name.startsWith("reduce_mean") && inputs.get(0).rank() == 2;
    }

    private static String layout(List<INDArray> inputs, INDArray[] outputs) {
      StringBuilder b = new StringBuilder();
      for (INDArray in : inputs) {
        b.append("\n        in  ").append(describe(in));
      }
      for (INDArray out : outputs) {
        b.append("\n        out ").append(describe(out));
      }
      return b.toString();
    }

    private static String describe(INDArray a) {
      return String.format(Locale.ROOT, "%s strides %s order %c ews %d view %b offset %d",
          Arrays.toString(a.shape()), Arrays.toString(a.stride()), a.ordering(), a.elementWiseStride(), a.isView(),
          a.offset());
    }

    private void record(String key, Where where, long wall, long cpu) {
      times.computeIfAbsent(key, k -> new EnumMap<>(Threads.class))
          .computeIfAbsent(threads, t -> new EnumMap<>(Where.class))
          .computeIfAbsent(where, w -> new ArrayList<>()).add(new long[] {wall, cpu});
    }

    void print() {
      System.out.println("\nLayouts of the probed ops' arrays (first call):");
      layouts.forEach((k, v) -> System.out.println("    " + k + v));
      System.out.println("\nClean steps (no replays), median per thread setting:");
      steps.forEach((t, rows) -> System.out.printf(Locale.ROOT, "    %-8s step wall %6.0f ms  process CPU %6.0f ms"
          + "  (%d steps)%n", t, median(rows, 0) / 1e6, median(rows, 1) / 1e6, rows.size()));
      for (Threads t : Threads.values()) {
        System.out.printf(Locale.ROOT, "%nPer op, threads %s: median wall ms per call (process CPU ms) and calls a"
            + " step; graph = in the clean steps%n", t);
        System.out.printf(Locale.ROOT, "    %-62s %5s %15s %15s %15s %15s %15s%n", "op and input shapes", "calls",
            "graph", "again", "afterGemm", "afterStream", "contiguous");
        double[] totals = new double[Where.values().length];
        for (Map.Entry<String, Map<Threads, Map<Where, List<long[]>>>> e : times.entrySet()) {
          Map<Where, List<long[]>> byWhere = e.getValue().get(t);
          if (byWhere == null || !byWhere.containsKey(Where.GRAPH)) {
            continue;
          }
          int rounds = steps.get(t).size();
          double calls = byWhere.get(Where.GRAPH).size() / (double) rounds;
          StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "    %-62s %5.0f", e.getKey(), calls));
          for (Where w : Where.values()) {
            List<long[]> v = byWhere.get(w);
            if (v == null) {
              row.append(String.format(Locale.ROOT, " %15s", "-"));
              continue;
            }
            double wall = median(v, 0) / 1e6;
            totals[w.ordinal()] += wall * calls;
            row.append(String.format(Locale.ROOT, " %6.2f (%6.2f)", wall, median(v, 1) / 1e6));
          }
          System.out.println(row);
        }
        System.out.printf(Locale.ROOT, "    %-62s %5s", "sum of medians × calls (ms a step)", "");
        for (double total : totals) {
          System.out.printf(Locale.ROOT, " %15.1f", total);
        }
        System.out.println();
      }
    }
  }

  private static double median(List<long[]> rows, int column) {
    long[] v = rows.stream().mapToLong(r -> r[column]).sorted().toArray();
    return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2.0;
  }
}
