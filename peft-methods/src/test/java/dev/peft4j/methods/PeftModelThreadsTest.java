package dev.peft4j.methods;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.model.Mlp;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import dev.peft4j.train.Batch;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * PeftModel's thread-safety contract: inference threads calling {@code output} and {@code outputMixed} while another
 * thread switches, disables, adds, deletes, merges and unmerges adapters and toggles train/eval get exactly what a
 * single thread gets — each {@code output} one of the single-threaded results for the adapters that could be active,
 * each {@code outputMixed} its single-threaded result — and no exception but the documented refusals (a mixed batch
 * naming the adapter just deleted; a mixed batch while an adapter is merged).
 */
@org.junit.jupiter.api.Timeout(120) // a deadlock fails the test instead of hanging the build
class PeftModelThreadsTest {

  private static final int READERS = 3;
  private static final int CALLS = 100;
  /** Merged outputs differ from unmerged ones by float rounding; everything else is exact. */
  private static final double TOLERANCE = 1e-5;
  private static final String ADDED = "d";

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of("mlp", (Supplier<SameDiff>) () -> ToyModels.mlp(DataType.FLOAT), 5, List.<AdapterConfig>of(
            Peft.lora(4).target("fc", "head").build(),
            Peft.lora(2).target("head").build(),
            Peft.ia3().target("fc").build(),
            Peft.lora(2).target("fc").build())),
        Arguments.of("tokens", (Supplier<SameDiff>) () -> ToyModels.tokens(DataType.FLOAT), 4, List.<AdapterConfig>of(
            Peft.lora(4).target("q_proj", "v_proj").build(),
            Peft.ia3().target("k_proj", "v_proj").build(),
            Peft.lora(2).target("o_proj", "classifier").build(),
            Peft.lora(2).target("q_proj").build())));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void inferenceWhileAnotherThreadChangesTheModelGivesSingleThreadedResults(String name, Supplier<SameDiff> graph,
      int rows, List<AdapterConfig> configs) throws Exception {
    long seed = Long.getLong("peft4j.threadsTestSeed", System.nanoTime()); // -D… repeats a run's data and choices
    System.out.println("PeftModelThreadsTest " + name + " seed " + seed);
    Random random = new Random(seed);
    Nd4j.getRandom().setSeed(seed);
    SameDiff sd = graph.get();
    PeftModel model = PeftModel.wrap(sd).addAdapter(PeftModel.DEFAULT_ADAPTER, configs.get(0));
    randomise(model, PeftModel.DEFAULT_ADAPTER);
    model.addAdapter("b", configs.get(1));
    randomise(model, "b");
    model.addAdapter("c", configs.get(2));
    randomise(model, "c");
    model.addAdapter(ADDED, configs.get(3));
    Map<String, INDArray> addedTensors = randomise(model, ADDED);

    // single-threaded references: every batch under every adapter (null: the base), and one mixed batch per batch
    List<Map<String, INDArray>> batches = new ArrayList<>();
    for (Batch b : Graphs.batches(sd, random.nextLong(), 4, rows)) {
      Map<String, INDArray> in = new HashMap<>(b.inputs());
      in.remove(Mlp.LABELS);
      batches.add(in);
    }
    int batchRows = (int) batches.get(0).values().iterator().next().size(0);
    List<String> states = Arrays.asList(null, PeftModel.DEFAULT_ADAPTER, "b", "c", ADDED);
    List<Map<String, INDArray>> expected = new ArrayList<>(); // batch → state → logits
    for (Map<String, INDArray> in : batches) {
      Map<String, INDArray> byState = new HashMap<>();
      for (String s : states) {
        if (s == null) {
          try (var base = model.disableAdapters()) {
            byState.put("base", logits(model, in));
          }
        } else {
          model.setAdapter(s);
          byState.put(s, logits(model, in));
        }
      }
      expected.add(byState);
    }
    List<List<String>> mixedRows = new ArrayList<>();
    List<INDArray> mixedExpected = new ArrayList<>();
    for (Map<String, INDArray> in : batches) {
      List<String> perRow = new ArrayList<>();
      for (int r = 0; r < batchRows; r++) {
        perRow.add(states.get(random.nextInt(states.size())));
      }
      mixedRows.add(perRow);
      mixedExpected.add(model.outputMixed(in, perRow, Mlp.LOGITS).get(Mlp.LOGITS));
    }
    model.setAdapter(PeftModel.DEFAULT_ADAPTER);
    model.deleteAdapter(ADDED);
    for (Map<String, INDArray> byState : expected) { // the adapters differ: a match names one state
      assertTrue(Graphs.relativeError(byState.get("b"), byState.get(PeftModel.DEFAULT_ADAPTER)) > 1e-3);
    }

    AtomicBoolean readersDone = new AtomicBoolean();
    List<Throwable> failures = new CopyOnWriteArrayList<>();
    Map<String, AtomicInteger> outcomes = new ConcurrentHashMap<>();
    Runnable mutator = () -> {
      Random r = new Random(seed ^ 0x5DEECE66DL);
      List<String> names = List.of(PeftModel.DEFAULT_ADAPTER, "b", "c");
      try {
        while (!readersDone.get()) {
          switch (r.nextInt(6)) {
            case 0 -> model.setAdapter(names.get(r.nextInt(names.size())));
            case 1 -> {
              try (var base = model.disableAdapters()) {
                Thread.sleep(1);
              }
            }
            case 2 -> {
              if (model.adapterNames().contains(ADDED)) {
                if (model.activeAdapters().contains(ADDED)) {
                  model.setAdapter(names.get(r.nextInt(names.size())));
                }
                model.deleteAdapter(ADDED);
              } else {
                model.addAdapter(ADDED, configs.get(3), addedTensors);
              }
            }
            case 3 -> {
              if (model.adapterNames().contains(ADDED)) {
                model.setAdapter(ADDED);
              }
            }
            case 4 -> {
              model.merge();
              Thread.sleep(1);
              model.unmerge();
            }
            default -> {
              model.train();
              model.eval();
            }
          }
          outcomes.computeIfAbsent("mutations", k -> new AtomicInteger()).incrementAndGet();
        }
      } catch (Throwable t) {
        failures.add(t);
      }
    };
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < READERS; t++) {
      long readerSeed = seed + 1 + t;
      threads.add(new Thread(() -> {
        Random r = new Random(readerSeed);
        for (int call = 0; call < CALLS; call++) {
          int k = r.nextInt(batches.size());
          try {
            if (r.nextBoolean()) {
              INDArray got = logits(model, batches.get(k));
              String match = expected.get(k).entrySet().stream()
                  .filter(e -> Graphs.relativeError(got, e.getValue()) <= TOLERANCE).map(Map.Entry::getKey)
                  .findFirst().orElse(null);
              if (match == null) {
                failures.add(new AssertionError("output of batch " + k + " matches no single-threaded result: "
                    + got));
              }
              outcomes.computeIfAbsent("output as " + match, key -> new AtomicInteger()).incrementAndGet();
            } else {
              INDArray got = model.outputMixed(batches.get(k), mixedRows.get(k), Mlp.LOGITS).get(Mlp.LOGITS);
              double error = Graphs.relativeError(got, mixedExpected.get(k));
              if (error > TOLERANCE) {
                failures.add(new AssertionError("mixed batch " + k + " is off by " + error));
              }
              outcomes.computeIfAbsent("outputMixed", key -> new AtomicInteger()).incrementAndGet();
            }
          } catch (IllegalArgumentException e) {
            documented(e, "no adapter named '" + ADDED + "'", outcomes, failures);
          } catch (IllegalStateException e) {
            documented(e, "is merged into the base weights; unmerge it for mixed batches", outcomes, failures);
          } catch (Throwable e) {
            failures.add(e);
          }
        }
      }, "reader-" + t));
    }
    Thread mutatorThread = new Thread(mutator, "mutator");
    mutatorThread.start();
    threads.forEach(Thread::start);
    for (Thread t : threads) {
      t.join();
    }
    readersDone.set(true);
    mutatorThread.join();
    System.out.println("PeftModelThreadsTest " + name + " outcomes " + new java.util.TreeMap<>(outcomes));

    failures.stream().limit(3).forEach(Throwable::printStackTrace);
    assertEquals(List.of(), failures.stream().map(String::valueOf).limit(5).toList(), "seed " + seed);
    long statesSeen = outcomes.keySet().stream().filter(k -> k.startsWith("output as ")).count();
    assertTrue(statesSeen >= 2, "the readers saw the switches (seed " + seed + "): " + outcomes);
    assertTrue(outcomes.get("outputMixed").get() > 0, outcomes.toString());
    assertTrue(outcomes.get("mutations").get() > 10, outcomes.toString());
  }

  @org.junit.jupiter.api.Test
  void aDisableAdaptersScopeKeepsOtherThreadsWaitingUntilItsThreadClosesIt() throws Exception {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    Map<String, INDArray> in = Map.of(Mlp.INPUT, Graphs.batches(sd, 3, 1, 4).get(0).inputs().get(Mlp.INPUT));
    PeftModel model = Peft.lora(2).target("head").apply(sd);
    Nd4j.getRandom().setSeed(3);
    randomise(model, PeftModel.DEFAULT_ADAPTER);
    INDArray adapted = logits(model, in);
    java.util.concurrent.ExecutorService other = java.util.concurrent.Executors.newFixedThreadPool(2);
    try {
      INDArray base;
      java.util.concurrent.Future<INDArray> waiting;
      try (var scope = model.disableAdapters()) {
        base = logits(model, in);
        waiting = other.submit(() -> logits(model, in));
        assertThrows(java.util.concurrent.TimeoutException.class,
            () -> waiting.get(300, java.util.concurrent.TimeUnit.MILLISECONDS), "another thread waits for the scope");
        IllegalStateException e = assertThrows(java.util.concurrent.ExecutionException.class,
            () -> other.submit(scope::close).get(30, java.util.concurrent.TimeUnit.SECONDS)).getCause() instanceof IllegalStateException ise ? ise : null;
        assertTrue(e != null && e.getMessage().contains("close it on the thread that opened it"), String.valueOf(e));
      }
      assertTrue(Graphs.relativeError(base, adapted) > 1e-3, "the scope's thread saw the base model");
      assertEquals(adapted, waiting.get(30, java.util.concurrent.TimeUnit.SECONDS),
          "the waiting thread ran after the scope closed, with the adapter");
      try (var only = model.exclusive()) {
        assertEquals(adapted, logits(model, in), "the write lock's holder may run the model");
      }
    } finally {
      other.shutdownNow();
    }
  }

  private static void documented(RuntimeException e, String expected, Map<String, AtomicInteger> outcomes,
      List<Throwable> failures) {
    if (String.valueOf(e.getMessage()).contains(expected)) {
      outcomes.computeIfAbsent("refused: " + expected, k -> new AtomicInteger()).incrementAndGet();
    } else {
      failures.add(e);
    }
  }

  private static INDArray logits(PeftModel model, Map<String, INDArray> inputs) {
    return model.output(inputs, Mlp.LOGITS).get(Mlp.LOGITS);
  }

  /** Gives the adapter's tensors random values near their initial ones, so that every adapter changes the output. */
  private static Map<String, INDArray> randomise(PeftModel model, String adapter) {
    Map<String, INDArray> tensors = new LinkedHashMap<>();
    model.adapter(adapter).stateDict().forEach((k, v) ->
        tensors.put(k, v.add(Nd4j.randn(v.dataType(), v.shape()).muli(0.3))));
    model.adapter(adapter).loadStateDict(tensors);
    return tensors;
  }
}
