package dev.peft4j.bench;

import dev.peft4j.train.DataParallel;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.bytedeco.javacpp.Pointer;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.config.SDValue;
import org.nd4j.autodiff.samediff.internal.InferenceSession;
import org.nd4j.autodiff.samediff.internal.memory.ArrayCacheMemoryMgr;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Where a MiniLM run's memory goes: resident size ({@code VmRSS}) and its peak ({@code VmHWM}) at points through the
 * run (JVM start, ND4J's initialisation, model load, each step), beside JavaCPP's counts ({@code Pointer.totalBytes()}:
 * the off-heap buffers JavaCPP tracks; {@code physicalBytes()}: its reading of the resident size; {@code maxBytes()}),
 * the JVM heap, and, per graph (the base graph, its gradient function, the replicas of {@link DataParallel} and
 * theirs), the bytes each session's array cache holds and the bytes of the arrays a session keeps after its run
 * ({@code nodeValueOutputs}, distinct buffers).
 *
 * <pre>{@code
 * cd peft-bench && OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive mvn -B -q exec:exec -Dexec.executable=java \
 *     -Dexec.args="-Xmx8g -Dpeft4j.bench.workers=2 -cp %classpath dev.peft4j.bench.MemoryProfile loraQV --steps 6"
 * }</pre>
 *
 * {@code --gc-after-load} collects once after the model is loaded.
 *
 * One configuration per process (the peak is the process's): later configurations would start from the first's.
 */
public final class MemoryProfile {

  private static final Field SESSIONS = field(SameDiff.class, "sessions");
  private static final Field NODE_VALUES = field(
      org.nd4j.autodiff.samediff.internal.AbstractSession.class, "nodeValueOutputs");
  private static final Field REPLICA_SETS = field(DataParallel.class, "replicaSets");

  private MemoryProfile() {}

  public static void main(String[] args) throws Exception {
    String config = "inference";
    int steps = 6;
    boolean collectAfterLoad = false;
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--gc-after-load")) {
        collectAfterLoad = true;
      } else if (args[i].equals("--steps")) {
        steps = Integer.parseInt(args[++i]);
      } else {
        config = args[i];
      }
    }
    print("JVM started", null, null);
    Nd4j.create(1).addi(1); // loads the native library and its BLAS
    print("ND4J initialised", null, null);
    MiniLmTrainingBenchmark bench = new MiniLmTrainingBenchmark();
    bench.config = config;
    bench.workers = Integer.getInteger("peft4j.bench.workers", 1);
    bench.setUp();
    print("model loaded [" + config + ", " + bench.workers + " worker(s)]", bench, null);
    if (collectAfterLoad) {
      System.gc(); // the loader's garbage, before the heap's pages hold it through the run
      print("after System.gc()", bench, null);
    }
    for (int s = 1; s <= steps; s++) {
      Object out = bench.run();
      print("after step " + s, bench, out);
    }
    System.gc();
    Thread.sleep(500);
    print("after System.gc()", bench, null);
    bench.tearDown();
    System.exit(0);
  }

  private static void print(String point, MiniLmTrainingBenchmark bench, Object out) {
    MemoryUsage heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
    StringBuilder graphs = new StringBuilder();
    if (bench != null) {
      long[] totals = new long[2];
      for (SameDiff g : graphs(bench)) {
        sessionBytes(g, totals);
      }
      graphs.append(String.format(Locale.ROOT, " | array caches %d MiB, session values %d MiB",
          totals[0] >> 20, totals[1] >> 20));
    }
    System.out.printf(Locale.ROOT, "%-40s RSS %5d MiB peak %5d | JavaCPP total %5d MiB physical %5d max %5d"
            + " | heap used %4d MiB committed %4d max %5d | threads %d%s%n", point,
        PeakMemory.residentBytes() >> 20, PeakMemory.peakBytes() >> 20, Pointer.totalBytes() >> 20,
        Pointer.physicalBytes() >> 20, Pointer.maxBytes() >> 20, heap.getUsed() >> 20, heap.getCommitted() >> 20,
        heap.getMax() >> 20, Thread.activeCount(), graphs);
  }

  /** The base graph, the replicas of its data parallelism, and every graph's gradient function. */
  private static List<SameDiff> graphs(MiniLmTrainingBenchmark bench) {
    List<SameDiff> base = new ArrayList<>();
    base.add(bench.sameDiff());
    DataParallel parallel = bench.parallel();
    if (parallel != null && REPLICA_SETS != null) {
      try {
        @SuppressWarnings("unchecked")
        Map<?, List<SameDiff>> sets = (Map<?, List<SameDiff>>) REPLICA_SETS.get(parallel);
        sets.values().forEach(base::addAll);
      } catch (IllegalAccessException e) {
        throw new IllegalStateException(e);
      }
    }
    List<SameDiff> all = new ArrayList<>(base);
    for (SameDiff g : base) {
      if (g.definedFunctionNames().contains("grad")) {
        all.add(g.getFunction("grad"));
      }
    }
    return all;
  }

  /** Adds the bytes of {@code sd}'s sessions' array caches to {@code totals[0]}, of their kept values to [1]. */
  @SuppressWarnings("unchecked")
  private static void sessionBytes(SameDiff sd, long[] totals) {
    if (SESSIONS == null || NODE_VALUES == null) {
      return;
    }
    try {
      Map<Long, InferenceSession> sessions = (Map<Long, InferenceSession>) SESSIONS.get(sd);
      Map<DataBuffer, Boolean> seen = new IdentityHashMap<>();
      for (InferenceSession s : sessions.values()) {
        if (s.getMmgr() instanceof ArrayCacheMemoryMgr cache) {
          totals[0] += cache.getCurrentCacheSize();
        }
        for (SDValue v : ((Map<?, SDValue>) NODE_VALUES.get(s)).values()) {
          Collection<INDArray> arrays = switch (v.getSdValueType()) {
            case TENSOR -> List.of(v.getTensorValue());
            case LIST -> v.getListValue();
            default -> List.of();
          };
          for (INDArray a : arrays) {
            if (a != null && !a.isEmpty() && a.data() != null && seen.put(a.data(), true) == null) {
              totals[1] += a.data().length() * a.data().getElementSize();
            }
          }
        }
      }
    } catch (IllegalAccessException e) {
      throw new IllegalStateException(e);
    }
  }

  private static Field field(Class<?> owner, String name) {
    try {
      Field f = owner.getDeclaredField(name);
      f.setAccessible(true);
      return f;
    } catch (ReflectiveOperationException | RuntimeException e) {
      return null;
    }
  }
}
