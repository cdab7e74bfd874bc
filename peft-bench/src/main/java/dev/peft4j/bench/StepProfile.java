package dev.peft4j.bench;

import java.io.IOException;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.dataset.api.MultiDataSet;

/**
 * Where a MiniLM step spends its time: per phase (forward + backward, update, the memory guard) in wall time and in
 * process CPU time split into user and kernel time, and optionally per op type. CPU time stays meaningful on a busy
 * machine where wall time does not, which makes this the tool for A/B decisions; JMH
 * ({@link MiniLmTrainingBenchmark}) gives the figures to report.
 *
 * <pre>{@code
 * cd peft-bench && OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive mvn -B -q exec:exec -Dexec.executable=java \
 *     -Dexec.args="-Xmx8g -cp %classpath dev.peft4j.bench.StepProfile loraQV fullFt --steps 8 --ops"
 * }</pre>
 *
 * {@code --shapes} lists op types per input shapes instead (40 rows). {@code --per-step} also prints the set-up's and
 * every step's time and CPU time, with the JIT compilers' and the collector's time in the step (how fast the first
 * steps are, and why). {@code -Dpeft4j.bench.workers=2} profiles the
 * data-parallel step (phases only: the per-op listener times one thread).
 *
 * The first two steps are warm-up and are left out of the medians. Per-op times are measured around each op's
 * execution by a SameDiff listener (so they include the op's dispatch and output allocation, not the session's
 * bookkeeping between ops), summed over the measured steps and divided by their number.
 */
public final class StepProfile {

  private static final int WARMUP = 2;

  private StepProfile() {}

  public static void main(String[] args) throws Exception {
    List<String> configs = new ArrayList<>();
    int steps = 8;
    boolean ops = false;
    boolean shapes = false;
    boolean perStep = false;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--steps" -> steps = Integer.parseInt(args[++i]);
        case "--ops" -> ops = true;
        case "--per-step" -> perStep = true;
        case "--shapes" -> {
          ops = true;
          shapes = true;
        }
        default -> configs.add(args[i]);
      }
    }
    if (configs.isEmpty()) {
      configs = List.of("inference", "loraQV", "fullFt");
    }
    for (String config : configs) {
      profile(config, steps, ops, shapes, perStep);
    }
    System.exit(0);
  }

  private static void profile(String config, int steps, boolean ops, boolean shapes, boolean perStep)
      throws IOException {
    MiniLmTrainingBenchmark bench = new MiniLmTrainingBenchmark();
    bench.config = config;
    bench.workers = Integer.getInteger("peft4j.bench.workers", 1); // -p workers=N of the JMH benchmark
    if (ops && bench.workers > 1) {
      throw new IllegalArgumentException("--ops and --shapes time the ops of one thread; profile with one worker");
    }
    Cpu setUpStart = Cpu.now();
    long setUpWall = System.nanoTime();
    bench.setUp();
    Cpu setUpEnd = Cpu.now();
    if (perStep) {
      System.out.printf(Locale.ROOT, "%-14s set-up %.0f ms, CPU %.0f ms%n", config,
          (System.nanoTime() - setUpWall) / 1e6, (setUpEnd.user - setUpStart.user + setUpEnd.system
              - setUpStart.system) * 10.0);
    }
    OpTimes opTimes = new OpTimes(shapes);
    double[][] phases = new double[steps][];
    for (int s = 0; s < steps; s++) {
      if (ops && s == WARMUP) {
        bench.sameDiff().setListeners(opTimes);
      }
      long jit0 = jitMillis();
      long gc0 = gcMillis();
      Cpu start = Cpu.now();
      long t0 = System.nanoTime();
      long t1;
      long t2;
      if (bench.training()) {
        Map<String, INDArray> g = bench.gradients();
        t1 = System.nanoTime();
        bench.update(g);
        t2 = System.nanoTime();
        bench.memory().afterStep();
      } else {
        bench.forward();
        t1 = System.nanoTime();
        t2 = t1;
      }
      long t3 = System.nanoTime();
      Cpu end = Cpu.now();
      phases[s] = new double[] {(t3 - t0) / 1e6, (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6,
          (end.user - start.user) * 10.0, (end.system - start.system) * 10.0};
      if (perStep) { // the JIT compiler's and the collector's time during the step, from the JVM's own counters
        System.out.printf(Locale.ROOT, "%-14s step %2d  %6.0f ms | fwd+bwd %6.0f | CPU user %5.0f, kernel %4.0f"
            + " | JIT %4d ms, GC %4d ms%n", config, s + 1, phases[s][0], phases[s][1], phases[s][4], phases[s][5],
            jitMillis() - jit0, gcMillis() - gc0);
      }
    }
    bench.tearDown();
    double[][] measured = Arrays.copyOfRange(phases, Math.min(WARMUP, steps - 1), steps);
    System.out.printf(Locale.ROOT, "%-14s steps %d  median ms: step %.0f | fwd+bwd %.0f | update %.0f | guard %.0f"
            + " || CPU ms: user %.0f, kernel %.0f (kernel %.0f%%)%n", config, measured.length,
        median(measured, 0), median(measured, 1), median(measured, 2), median(measured, 3), median(measured, 4),
        median(measured, 5), 100 * median(measured, 5) / (median(measured, 4) + median(measured, 5)));
    if (ops) {
      opTimes.print(measured.length);
    }
  }

  /** Time the JIT compilers have spent so far (summed over their threads). */
  private static long jitMillis() {
    return ManagementFactory.getCompilationMXBean().getTotalCompilationTime();
  }

  /** Time the garbage collectors have spent so far. */
  private static long gcMillis() {
    return ManagementFactory.getGarbageCollectorMXBeans().stream()
        .mapToLong(GarbageCollectorMXBean::getCollectionTime).sum();
  }

  private static double median(double[][] rows, int column) {
    double[] v = Arrays.stream(rows).mapToDouble(r -> r[column]).sorted().toArray();
    return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  }

  /** This process's CPU time in clock ticks (1/100 s), from {@code /proc/self/stat}. */
  private record Cpu(long user, long system) {
    static Cpu now() throws IOException {
      String stat = Files.readString(Path.of("/proc/self/stat"));
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return new Cpu(Long.parseLong(f[11]), Long.parseLong(f[12])); // fields 14 and 15 of proc(5)
    }
  }

  /** Wall time per op type, measured around each op's execution. */
  private static final class OpTimes extends BaseListener {
    private final Map<String, long[]> byType = new HashMap<>();
    private final boolean shapes;
    private long started;

    OpTimes(boolean shapes) {
      this.shapes = shapes;
    }

    @Override
    public boolean isActive(Operation operation) {
      return true;
    }

    @Override
    public void preOpExecution(SameDiff sd, At at, SameDiffOp op, OpContext opContext) {
      started = System.nanoTime();
    }

    @Override
    public void opExecution(SameDiff sd, At at, MultiDataSet batch, SameDiffOp op, OpContext opContext,
        INDArray[] outputs) {
      String key = op.getOp().opName();
      if (shapes) {
        StringBuilder b = new StringBuilder(key);
        for (INDArray in : opContext.getInputArrays()) {
          b.append(' ').append(Arrays.toString(in.shape()).replace(" ", ""));
        }
        key = b.toString();
      }
      long[] t = byType.computeIfAbsent(key, k -> new long[2]);
      t[0] += System.nanoTime() - started;
      t[1]++;
    }

    void print(int steps) {
      long total = byType.values().stream().mapToLong(t -> t[0]).sum();
      System.out.printf(Locale.ROOT, "  ops: %.0f ms a step in %d op calls%n", total / 1e6 / steps,
          byType.values().stream().mapToLong(t -> t[1]).sum() / steps);
      String row = (shapes ? "    %-64s" : "    %-28s") + " %7.1f ms %5.1f%%  %5d calls%n";
      byType.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue()[0], a.getValue()[0]))
          .limit(shapes ? 40 : 18)
          .forEach(e -> System.out.printf(Locale.ROOT, row, e.getKey(), e.getValue()[0] / 1e6 / steps,
              100.0 * e.getValue()[0] / total, e.getValue()[1] / steps));
    }
  }
}
