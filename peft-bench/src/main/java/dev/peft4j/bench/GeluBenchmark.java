package dev.peft4j.bench;

import java.lang.management.ManagementFactory;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Exact GELU on MiniLM's feed-forward activation {@code [1024, 1536]} (8 × 128 tokens), forward and forward +
 * backward, three ways:
 * <ul>
 *   <li>{@code nd4jErf}: {@code ½x(1 + erf(x/√2))} with ND4J's {@code erf}, the graph {@code Layers.gelu} builds;
 *   <li>{@code rationalErf}: erf as {@link RationalGelu#graph}, Eigen's rational approximation from element-wise ops;
 *   <li>{@code java}: {@link RationalGelu#forward} / {@link RationalGelu#backward}, one thread, including the copies
 *       out of and back into an {@code INDArray} that a kernel run between graph segments would make.
 * </ul>
 * The graphs' forward + backward is {@code calculateGradients} of {@code Σ GELU(x) ⊙ g} for x (a variable), so it
 * includes the forward, a multiply and a sum; the {@code java} variant's is its forward plus its backward.
 * Inputs are uniform in [−2, 2], where ND4J's {@code erf} takes its slow branch as it does on real activations.
 * Results and the decision they led to: peft-bench/HISTORY.md, round 5, "GELU / erf".
 *
 * <pre>{@code
 * cd peft-bench && OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive \
 *   mvn -B -q exec:exec -Dexec.executable=java -Dexec.args="-cp %classpath org.openjdk.jmh.Main GeluBenchmark"
 * # the three alternated in one process, process CPU time and wall time: rounds
 * cd peft-bench && OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive mvn -B -q exec:exec -Dexec.executable=java \
 *   -Dexec.args="-cp %classpath dev.peft4j.bench.GeluBenchmark 20"
 * }</pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Dorg.nd4j.log.initialization=false", "-Xmx2g"})
public class GeluBenchmark {

  static final long ROWS = 1024;
  static final long COLS = 1536;
  static final long SEED = 24;

  @Param({"nd4jErf", "rationalErf", "java"})
  public String variant;

  private SameDiff sd;
  private INDArray x;      // [1024, 1536]
  private INDArray g;      // [1024, 1536], the upstream gradient
  // the java variant's scratch, reused as a kernel would (a fresh 6 MiB array is a humongous allocation for G1)
  private final float[][] scratch = new float[4][];

  @Setup
  public void setUp() {
    Nd4j.getRandom().setSeed(SEED);
    x = Nd4j.rand(DataType.FLOAT, ROWS, COLS).muli(4).subi(2);
    g = Nd4j.rand(DataType.FLOAT, ROWS, COLS);
    if (variant.equals("java")) {
      for (int i = 0; i < scratch.length; i++) {
        scratch[i] = new float[(int) x.length()];
      }
    } else {
      sd = graph(variant, x, g);
    }
  }

  /** {@code y = GELU(x)} and the loss {@code Σ y ⊙ g}, x a variable; {@code variant} nd4jErf or rationalErf. */
  static SameDiff graph(String variant, INDArray x, INDArray g) {
    SameDiff sd = SameDiff.create();
    SDVariable in = sd.var("x", x.dup());
    SDVariable y = switch (variant) {
      case "nd4jErf" -> in.mul(0.5).mul(sd.math.erf(in.mul(1 / Math.sqrt(2))).add(1.0)); // as Layers.gelu
      case "rationalErf" -> RationalGelu.graph(sd, in);
      default -> throw new IllegalArgumentException("variant '" + variant + "': expected nd4jErf or rationalErf");
    };
    y.rename("y");
    y.mul(sd.constant("g", g)).sum().rename("loss");
    sd.setLossVariables("loss");
    return sd;
  }

  @Benchmark
  public INDArray forward() {
    if (sd == null) {
      RationalGelu.forward(read(x, scratch[0]), scratch[1]);
      return write(scratch[1], x.shape());
    }
    return sd.output(Map.of(), "y").get("y");
  }

  @Benchmark
  public INDArray forwardAndBackward() {
    if (sd == null) {
      float[] in = read(x, scratch[0]);
      RationalGelu.forward(in, scratch[1]);
      write(scratch[1], x.shape());
      RationalGelu.backward(in, read(g, scratch[2]), scratch[3]);
      return write(scratch[3], x.shape());
    }
    return sd.calculateGradients(Map.of(), "x").get("x");
  }

  /**
   * A contiguous FLOAT array's values, by one bulk copy from its native buffer: 0.8 ms for {@code [1024, 1536]},
   * where {@code data().asFloat()} took 4.8 ms (thread CPU time, loaded machine).
   */
  static float[] read(INDArray a, float[] v) {
    a.data().asNio().order(ByteOrder.nativeOrder()).asFloatBuffer().get(v);
    return v;
  }

  /** A new FLOAT array of {@code shape} holding {@code v}, by one bulk copy (0.6 ms; {@code Nd4j.create}: 10 ms). */
  static INDArray write(float[] v, long... shape) {
    INDArray a = Nd4j.createUninitialized(DataType.FLOAT, shape);
    a.data().asNio().order(ByteOrder.nativeOrder()).asFloatBuffer().put(v);
    return a;
  }

  /**
   * The three variants in one process, alternating (rotating the order each round), so that a drifting load hits
   * them alike: process CPU time and wall time per call, means over the rounds after 3 of warm-up. Argument: rounds
   * (default 20).
   */
  public static void main(String[] args) throws Exception {
    int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 20;
    List<String> variants = List.of("nd4jErf", "rationalErf", "java");
    GeluBenchmark[] b = new GeluBenchmark[variants.size()];
    for (int v = 0; v < b.length; v++) {
      b[v] = new GeluBenchmark();
      b[v].variant = variants.get(v);
      b[v].setUp();
    }
    double[][] sums = new double[b.length][4];   // forward CPU, wall; forward + backward CPU, wall (ms)
    for (int r = 0; r < rounds + 3; r++) {
      for (int k = 0; k < b.length; k++) {
        int v = (k + r) % b.length;
        long c0 = cpuNanos();
        long w0 = System.nanoTime();
        b[v].forward();
        long c1 = cpuNanos();
        long w1 = System.nanoTime();
        b[v].forwardAndBackward();
        long c2 = cpuNanos();
        long w2 = System.nanoTime();
        if (r >= 3) {
          double[] s = sums[v];
          s[0] += (c1 - c0) / 1e6;
          s[1] += (w1 - w0) / 1e6;
          s[2] += (c2 - c1) / 1e6;
          s[3] += (w2 - w1) / 1e6;
        }
      }
    }
    System.out.printf(Locale.ROOT, "GELU on [%d, %d], %d alternated rounds, mean ms per call (CPU = process CPU time)%n",
        ROWS, COLS, rounds);
    for (int v = 0; v < b.length; v++) {
      double[] m = Arrays.stream(sums[v]).map(s -> s / rounds).toArray();
      System.out.printf(Locale.ROOT, "  %-12s forward CPU %6.1f wall %6.1f | forward + backward CPU %6.1f wall %6.1f%n",
          variants.get(v), m[0], m[1], m[2], m[3]);
    }
    System.out.println("  load average " + Files.readString(Path.of("/proc/loadavg")).trim());
    System.exit(0);
  }

  private static long cpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }
}
