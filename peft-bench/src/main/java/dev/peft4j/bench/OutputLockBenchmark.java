package dev.peft4j.bench;

import dev.peft4j.PeftModel;
import dev.peft4j.graph.RowMajorArrayCache;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Mlp;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
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
 * What PeftModel's thread-safety costs an uncontended caller: {@code PeftModel.output} (the read lock around the run)
 * against the same run without the lock ({@code RowMajorArrayCache.install} + {@code SameDiff.output}, which is what
 * {@code PeftModel.output} did before it took the lock), on one graph in one fork.
 * <pre>
 *   input [batch, 512] → 4 × (linear 512→512 + LoRA r=16, tanh) → linear 512→10
 * </pre>
 * Batch 1 makes the fixed per-call costs (the lock's among them) as large a share of a call as they get.
 * {@code readLockAlone} times the lock by itself.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 2, jvmArgsAppend = {"-Dorg.nd4j.log.initialization=false", "-Xmx2g"})
public class OutputLockBenchmark {

  private static final int WIDTH = 512;

  @Param({"1", "32"})
  public int batch;

  private PeftModel model;
  private SameDiff sd;
  private Map<String, INDArray> inputs;
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock(); // the kind PeftModel holds

  @Setup
  public void setUp() {
    sd = Mlp.classifier(WIDTH, WIDTH, 4, 10, DataType.FLOAT, 1);
    model = Peft.lora(16).alpha(32).target("fc").apply(sd);
    inputs = Map.of(Mlp.INPUT, Mlp.uniform(new Random(3), 1, DataType.FLOAT, batch, WIDTH));
  }

  @Benchmark
  public INDArray peftModelOutput() {
    return model.output(inputs, Mlp.LOGITS).get(Mlp.LOGITS);
  }

  @Benchmark
  public INDArray withoutLock() {
    RowMajorArrayCache.install(sd);
    return sd.output(inputs, Mlp.LOGITS).get(Mlp.LOGITS);
  }

  /**
   * The same comparison as {@code peftModelOutput} / {@code withoutLock}, robust to a machine whose load drifts: the two
   * calls alternate (in alternating order), and the median of the per-pair ratios is printed with both medians.
   * Arguments: batch (default 1), pairs (default 2000); 200 pairs of warm-up first.
   */
  public static void main(String[] args) {
    OutputLockBenchmark b = new OutputLockBenchmark();
    b.batch = args.length > 0 ? Integer.parseInt(args[0]) : 1;
    int pairs = args.length > 1 ? Integer.parseInt(args[1]) : 2000;
    b.setUp();
    long[] locked = new long[pairs];
    long[] unlocked = new long[pairs];
    double[] ratio = new double[pairs];
    for (int i = -200; i < pairs; i++) {
      long a;
      long u;
      if ((i & 1) == 0) {
        a = time(b::peftModelOutput);
        u = time(b::withoutLock);
      } else {
        u = time(b::withoutLock);
        a = time(b::peftModelOutput);
      }
      if (i >= 0) {
        locked[i] = a;
        unlocked[i] = u;
        ratio[i] = (double) a / u;
      }
    }
    java.util.Arrays.sort(locked);
    java.util.Arrays.sort(unlocked);
    java.util.Arrays.sort(ratio);
    System.out.printf("batch %d, %d interleaved pairs: PeftModel.output median %.1f us, without lock %.1f us, "
        + "ratio of medians %.4f, median of pair ratios %.4f%n", b.batch, pairs, locked[pairs / 2] / 1e3,
        unlocked[pairs / 2] / 1e3, (double) locked[pairs / 2] / unlocked[pairs / 2], ratio[pairs / 2]);
  }

  private static long time(java.util.function.Supplier<INDArray> call) {
    long start = System.nanoTime();
    call.get();
    return System.nanoTime() - start;
  }

  /**
   * The lock alone: acquiring and releasing an uncontended read lock, as {@code output} does once a call. Measured
   * apart because on a loaded machine the forward pass's own spread hides a difference this small.
   */
  @Benchmark
  @BenchmarkMode(Mode.AverageTime)
  @OutputTimeUnit(TimeUnit.NANOSECONDS)
  public int readLockAlone() {
    lock.readLock().lock();
    try {
      return batch;
    } finally {
      lock.readLock().unlock();
    }
  }
}
