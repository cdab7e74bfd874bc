package dev.peft4j.bench;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.PretrainedModels;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Serving many adapters: all-MiniLM-L6-v2 with 8 LoRA adapters (r=16, alpha 32, query and value, random non-zero A
 * and B so that they differ), sequences of 128 tokens. Rows/s = rows ÷ the time of one operation.
 * <ul>
 *   <li>{@code mixedBatch}: {@link PeftModel#outputMixed} on {@code rows} rows, row i with adapter {@code i mod 8}
 *       (the gathered LoRA graph variant: the base once, each row's update beside it);
 *   <li>{@code mixedBatchGrouped}: the same batch as {@code outputMixed} ran it before (and still runs batches that
 *       name another method): rows grouped by adapter, one forward per group with that adapter switched on, under
 *       the model's write lock;
 *   <li>{@code concurrentCallers}: {@code callers} threads, each with its own adapter and its own batch of 8 rows,
 *       each calling {@code outputMixed} once (all rows one adapter) — one operation is all of them done, so rows/s
 *       = 8 · callers ÷ time;
 *   <li>{@code concurrentCallersSwitching}: the same with what {@code PeftModel} offered each caller before:
 *       {@code setAdapter} then {@code output} inside {@code exclusive()}, so callers run one at a time.
 * </ul>
 * Each configuration prints its fork's peak RSS. The Hugging Face PEFT reference, {@code model(**batch, adapter_names=[...])} at the same shapes, is
 * {@code scripts/bench_mixed_adapters.py}.
 */
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 8)
@Measurement(iterations = 3, time = 8)
@Fork(value = 1, jvmArgsAppend = {"-Dorg.nd4j.log.initialization=false", "-Xmx8g"})
public class MixedAdapterBenchmark {

  static final int ADAPTERS = 8;
  static final int SEQ = 128;
  static final int CALLER_ROWS = 8;

  /** The model with its 8 adapters, shared by every configuration of one fork. */
  @State(Scope.Benchmark)
  public static class Model {
    PeftModel model;
    List<String> names = new ArrayList<>();

    @Setup
    public void setUp() {
      model = Peft.lora(16).alpha(32).target("query", "value").apply(PretrainedModels.miniLm(SEQ).sameDiff());
      for (int i = 1; i < ADAPTERS; i++) {
        model.addAdapter("a" + i, Peft.lora(16).alpha(32).target("query", "value").build());
      }
      names.addAll(model.adapterNames());
      Nd4j.getRandom().setSeed(42);
      for (String name : names) {
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        model.adapter(name).stateDict().forEach((k, v) ->
            tensors.put(k, Nd4j.randn(v.dataType(), v.shape()).muli(0.05)));
        model.adapter(name).loadStateDict(tensors);
      }
      model.eval();
    }

    /** Each configuration runs in its own fork, so the process's peak is the configuration's. */
    @TearDown(Level.Trial)
    public void printPeakMemory() {
      System.out.printf("%npeak RSS (VmHWM): %d MiB%n", PeakMemory.peakBytes() >> 20);
    }
  }

  /** A mixed batch: {@code rows} × 128 tokens, row i with adapter {@code i mod 8}. */
  @State(Scope.Benchmark)
  public static class MixedBatch {
    @Param({"8", "32"})
    int rows;
    Map<String, INDArray> inputs;
    List<String> perRow;

    @Setup
    public void setUp(Model m) {
      inputs = batch(rows, 1);
      perRow = new ArrayList<>();
      for (int i = 0; i < rows; i++) {
        perRow.add(m.names.get(i % ADAPTERS));
      }
    }
  }

  /** {@code callers} threads, caller c with adapter {@code c} and a batch of 8 rows of its own. */
  @State(Scope.Benchmark)
  public static class Callers {
    @Param({"1", "2", "4"})
    int callers;
    ExecutorService pool;
    List<Map<String, INDArray>> batches = new ArrayList<>();

    @Setup
    public void setUp() {
      pool = Executors.newFixedThreadPool(callers);
      for (int c = 0; c < callers; c++) {
        batches.add(batch(CALLER_ROWS, 10 + c));
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      pool.shutdownNow();
    }
  }

  static Map<String, INDArray> batch(int rows, long seed) {
    Random random = new Random(seed);
    long[][] ids = new long[rows][SEQ];
    long[][] mask = new long[rows][SEQ];
    for (int b = 0; b < rows; b++) {
      for (int t = 0; t < SEQ; t++) {
        ids[b][t] = t == 0 ? 101 : t == SEQ - 1 ? 102 : 1000 + random.nextInt(28000);
        mask[b][t] = 1;
      }
    }
    return Map.of(Bert.INPUT_IDS, Nd4j.createFromArray(ids), Bert.ATTENTION_MASK, Nd4j.createFromArray(mask),
        Bert.TOKEN_TYPE_IDS, Nd4j.zeros(DataType.INT64, rows, SEQ));
  }

  @Benchmark
  public INDArray mixedBatch(Model m, MixedBatch b) {
    return m.model.outputMixed(b.inputs, b.perRow, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE);
  }

  @Benchmark
  public INDArray mixedBatchGrouped(Model m, MixedBatch b) {
    return grouped(m.model, b.inputs, b.perRow);
  }

  @Benchmark
  public Object concurrentCallers(Model m, Callers c) throws Exception {
    List<Future<INDArray>> done = new ArrayList<>();
    for (int i = 0; i < c.callers; i++) {
      Map<String, INDArray> inputs = c.batches.get(i);
      List<String> perRow = Collections.nCopies(CALLER_ROWS, m.names.get(i));
      done.add(c.pool.submit(() ->
          m.model.outputMixed(inputs, perRow, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE)));
    }
    return waitFor(done);
  }

  @Benchmark
  public Object concurrentCallersSwitching(Model m, Callers c) throws Exception {
    List<Future<INDArray>> done = new ArrayList<>();
    for (int i = 0; i < c.callers; i++) {
      Map<String, INDArray> inputs = c.batches.get(i);
      String adapter = m.names.get(i);
      done.add(c.pool.submit(() -> {
        try (var only = m.model.exclusive()) {
          m.model.setAdapter(adapter);
          return m.model.output(inputs, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE);
        }
      }));
    }
    return waitFor(done);
  }

  private static Object waitFor(List<Future<INDArray>> done) throws Exception {
    Object last = null;
    for (Future<INDArray> f : done) {
      last = f.get();
    }
    return last;
  }

  /** outputMixed's grouped path: one forward per adapter on its rows, under the write lock, rows put back in order. */
  static INDArray grouped(PeftModel model, Map<String, INDArray> inputs, List<String> perRow) {
    INDArray whole = null;
    try (var only = model.exclusive()) {
      for (String adapter : new LinkedHashSet<>(perRow)) {
        long[] members = java.util.stream.IntStream.range(0, perRow.size())
            .filter(i -> perRow.get(i).equals(adapter)).asLongStream().toArray();
        Map<String, INDArray> part = new LinkedHashMap<>();
        inputs.forEach((k, v) -> part.put(k, v.get(NDArrayIndex.indices(members), NDArrayIndex.all()).dup()));
        model.setAdapter(adapter);
        INDArray out = model.output(part, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE); // [g, s, H]
        if (whole == null) {
          whole = Nd4j.create(out.dataType(), perRow.size(), out.size(1), out.size(2));
        }
        for (int i = 0; i < members.length; i++) {
          whole.get(NDArrayIndex.point(members[i]), NDArrayIndex.all(), NDArrayIndex.all())
              .assign(out.get(NDArrayIndex.point(i), NDArrayIndex.all(), NDArrayIndex.all()));
        }
      }
      model.setAdapter(model.adapterNames().iterator().next());
    }
    return whole;
  }
}
