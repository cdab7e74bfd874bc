package dev.peft4j.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.dataset.api.MultiDataSet;

/**
 * Which arrays of a training step are alive at once: a listener records, for every buffer an op of the step writes,
 * the op that wrote it and the last op that read it; the step's live bytes after op {@code i} are the bytes of the
 * buffers written at or before {@code i} and read at or after it (or never read again but returned). Prints the peak,
 * what array-cache pools would hold (one pool per shape, as SameDiff's cache, or per byte length), what is alive at the
 * peak by writing op ({@code fwd}: an op of the graph; {@code grad}: one its gradient function added) and shape, and
 * the buffers written before the first {@code _bp} op and read after it (what the backward pass keeps);
 * {@code --buffers} lists the first 60 buffers of 6 MiB or more with the op that last read each. The last of
 * {@code --steps} steps (one worker) is recorded.
 *
 * <pre>{@code
 * mvn -o -B -q compile dependency:build-classpath -Dmdep.outputFile=/tmp/cp.txt -pl peft-bench -am
 * OMP_NUM_THREADS=2 java -Xmx8g -cp peft-bench/target/classes:$(cat /tmp/cp.txt) dev.peft4j.bench.LiveArrays loraQV --steps 3
 * }</pre>
 */
public final class LiveArrays extends BaseListener {

  private record Buffer(int written, String op, String opType, long[] shape, long bytes) {}

  // one entry per lifetime: a buffer the array cache hands out again starts a new one
  private final List<Buffer> buffers = new ArrayList<>();
  private final Map<DataBuffer, Buffer> current = new IdentityHashMap<>();
  private final Map<Buffer, Integer> lastRead = new IdentityHashMap<>();
  private final List<String> opTypes = new ArrayList<>();
  private final List<String> opNames = new ArrayList<>();
  private boolean recording;
  private Set<String> forwardOps = Set.of();

  private static boolean listBuffers;

  private LiveArrays() {}

  public static void main(String[] args) throws Exception {
    String config = "loraQV";
    int steps = 3;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--steps" -> steps = Integer.parseInt(args[++i]);
        case "--buffers" -> listBuffers = true;
        default -> config = args[i];
      }
    }
    MiniLmTrainingBenchmark bench = new MiniLmTrainingBenchmark();
    bench.config = config;
    bench.workers = 1;
    bench.setUp();
    LiveArrays live = new LiveArrays();
    bench.sameDiff().addListeners(live);
    for (int s = 1; s < steps; s++) {
      bench.run();
    }
    live.forwardOps = new HashSet<>(bench.sameDiff().getOps().keySet());
    live.recording = true;
    bench.run();
    live.recording = false;
    live.report();
    bench.tearDown();
    System.exit(0);
  }

  @Override
  public boolean isActive(Operation operation) {
    return true;
  }

  @Override
  public void opExecution(SameDiff sd, At at, MultiDataSet batch, SameDiffOp op, OpContext opContext,
      INDArray[] outputs) {
    if (!recording) {
      return;
    }
    int index = opTypes.size();
    String type = op.getOp().opName();
    opTypes.add(type);
    opNames.add(op.getName());
    for (INDArray in : opContext.getInputArrays()) {
      if (in != null && !in.isEmpty()) {
        Buffer b = current.get(root(in));
        if (b != null) {
          lastRead.put(b, index);
        }
      }
    }
    for (INDArray out : outputs) {
      if (out == null || out.isEmpty()) {
        continue;
      }
      DataBuffer root = root(out);
      Buffer known = current.get(root);
      if (known == null || known.written() != index) {
        Buffer b = new Buffer(index, op.getName(), (forwardOps.contains(op.getName()) ? "fwd " : "grad ") + type,
            out.shape(), root.length() * root.getElementSize());
        buffers.add(b);
        current.put(root, b);
      }
    }
  }

  /**
   * Σ over keys of (the most buffers of that key alive at once × their bytes): what a pool per key holds; {@code end}:
   * each buffer's last op (see {@link #ends}).
   */
  private long pooled(int n, Map<Buffer, Integer> end, Function<Buffer, String> key) {
    Map<String, long[]> deltas = new HashMap<>();
    Map<String, Long> size = new HashMap<>();
    for (Buffer b : buffers) {
      String k = key.apply(b) + "/" + b.bytes();
      long[] d = deltas.computeIfAbsent(k, x -> new long[n + 1]);
      d[b.written()]++;
      d[end.get(b) + 1]--;
      size.put(k, b.bytes());
    }
    long total = 0;
    for (Map.Entry<String, long[]> e : deltas.entrySet()) {
      long live = 0;
      long most = 0;
      for (int i = 0; i < n; i++) {
        live += e.getValue()[i];
        most = Math.max(most, live);
      }
      total += most * size.get(e.getKey());
    }
    return total;
  }

  /**
   * The last op of each buffer's lifetime among {@code n}: its last reader; for one never read, the step's last op if
   * it is still its buffer's lifetime (returned, or kept), else the op that wrote it.
   */
  private Map<Buffer, Integer> ends(int n) {
    Set<Buffer> open = Collections.newSetFromMap(new IdentityHashMap<>());
    open.addAll(current.values());
    Map<Buffer, Integer> end = new IdentityHashMap<>();
    for (Buffer b : buffers) {
      end.put(b, lastRead.getOrDefault(b, open.contains(b) ? n - 1 : b.written()));
    }
    return end;
  }

  private static DataBuffer root(INDArray a) {
    DataBuffer b = a.data();
    return b.originalDataBuffer() != null ? b.originalDataBuffer() : b;
  }

  private void report() {
    int n = opTypes.size();
    int firstBackward = n;
    for (int i = 0; i < n; i++) {
      if (opTypes.get(i).endsWith("_bp")) {
        firstBackward = i;
        break;
      }
    }
    Map<Buffer, Integer> end = ends(n);
    long[] delta = new long[n + 1];
    for (Buffer b : buffers) {
      delta[b.written()] += b.bytes();
      delta[end.get(b) + 1] -= b.bytes();
    }
    long liveBytes = 0;
    long peak = 0;
    int peakAt = 0;
    for (int i = 0; i < n; i++) {
      liveBytes += delta[i];
      if (liveBytes > peak) {
        peak = liveBytes;
        peakAt = i;
      }
    }
    long written = buffers.stream().mapToLong(Buffer::bytes).sum();
    System.out.printf(Locale.ROOT, "ops %d (first _bp op at %d); buffers written %d, %d MiB; peak live %d MiB after op %d"
        + " (%s)%n", n, firstBackward, buffers.size(), written >> 20, peak >> 20, peakAt, opTypes.get(peakAt));
    System.out.printf(Locale.ROOT, "cache pools that serve every request, summed over keys of each key's peak: by shape %d MiB,"
        + " by length %d MiB%n", pooled(n, end, b -> Arrays.toString(b.shape())) >> 20,
        pooled(n, end, b -> Long.toString(b.bytes())) >> 20);
    Map<String, long[]> atPeak = new TreeMap<>();
    Map<String, long[]> kept = new TreeMap<>();
    for (Buffer b : buffers) {
      int last = end.get(b);
      String key = String.format(Locale.ROOT, "%-22s %s", b.opType(), Arrays.toString(b.shape()));
      if (b.written() <= peakAt && last >= peakAt) {
        long[] c = atPeak.computeIfAbsent(key, k -> new long[2]);
        c[0]++;
        c[1] += b.bytes();
      }
      if (b.written() < firstBackward && last >= firstBackward) {
        long[] c = kept.computeIfAbsent(key, k -> new long[2]);
        c[0]++;
        c[1] += b.bytes();
      }
    }
    if (listBuffers) {
      buffers.stream().filter(b -> b.bytes() >= 6 << 20).limit(60) // in the order written
          .forEach(b -> System.out.printf(Locale.ROOT, "  %4d %-40s %-22s -> %4d %s (%s)%n", b.written(), b.op(),
              Arrays.toString(b.shape()), end.get(b), opNames.get(end.get(b)), opTypes.get(end.get(b))));
    }
    print("alive at the peak, by writing op and shape", atPeak);
    print("written in the forward pass, read in the backward pass", kept);
  }

  private static void print(String title, Map<String, long[]> groups) {
    long total = groups.values().stream().mapToLong(c -> c[1]).sum();
    System.out.printf(Locale.ROOT, "%n%s: %.1f MiB%n", title, total / 1048576.0);
    groups.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue()[1], a.getValue()[1])).limit(40)
        .forEach(e -> System.out.printf(Locale.ROOT, "  %8.1f MiB  %4d × %s%n", e.getValue()[1] / 1048576.0,
            e.getValue()[0], e.getKey()));
  }
}
