package dev.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Hooks;
import dev.peft4j.model.Mlp;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * {@code outputMixed} over plain LoRA adapters runs one forward on a graph variant (base once, each row's update
 * gathered beside it): every row must equal that row run alone with its adapter, on a token model with padding.
 */
class MixedLoraBatchTest {

  private static final String[] OUTPUTS = {Mlp.LOGITS, Hooks.LAST_HIDDEN_STATE};
  private static final int ROWS = 7;
  private static final int SEQ = 6;

  /** Four LoRA adapters of different ranks, scalings and modules, each with random non-zero A and B. */
  private static PeftModel fourAdapters(long seed) {
    PeftModel model = Peft.lora(4).alpha(8).target("q_proj", "v_proj").apply(ToyModels.tokens(DataType.FLOAT));
    model.addAdapter("q_only", Peft.lora(2).alpha(2).target("q_proj").build());
    model.addAdapter("wide", Peft.lora(8).alpha(4).rsLora().target("v_proj", "o_proj").build());
    model.addAdapter("head_too", Peft.lora(3).alpha(6).target("q_proj", "classifier").build());
    long s = seed;
    for (String name : model.adapterNames()) {
      randomise(model, name, s++);
    }
    return model;
  }

  private static void randomise(PeftModel model, String adapter, long seed) {
    Nd4j.getRandom().setSeed(seed);
    Map<String, INDArray> tensors = new LinkedHashMap<>();
    model.adapter(adapter).stateDict().forEach((k, v) -> tensors.put(k, Nd4j.randn(v.dataType(), v.shape()).muli(0.5)));
    model.adapter(adapter).loadStateDict(tensors);
  }

  /** ROWS × SEQ ids in [1, VOCAB), 3..SEQ real tokens a row. */
  private static Map<String, INDArray> inputs(Random random) {
    long[][] ids = new long[ROWS][SEQ];
    long[][] mask = new long[ROWS][SEQ];
    for (int b = 0; b < ROWS; b++) {
      int real = 3 + random.nextInt(SEQ - 2);
      for (int t = 0; t < SEQ; t++) {
        ids[b][t] = 1 + random.nextInt(ToyModels.VOCAB - 1);
        mask[b][t] = t < real ? 1 : 0;
      }
    }
    return Map.of(ToyModels.INPUT_IDS, Nd4j.createFromArray(ids), ToyModels.ATTENTION_MASK,
        Nd4j.createFromArray(mask));
  }

  private static List<String> randomRows(Random random, List<String> names) {
    List<String> rows = new ArrayList<>();
    for (int i = 0; i < ROWS; i++) {
      int k = random.nextInt(names.size() + 1);
      rows.add(k == names.size() ? null : names.get(k));
    }
    return rows;
  }

  /** Asserts each row of {@code mixed} equals the row run alone with its adapter (the base for null), ≤ 1e-5. */
  private static void assertEachRowAsAlone(PeftModel model, Map<String, INDArray> inputs, List<String> perRow,
      Map<String, INDArray> mixed, String context) {
    List<String> active = model.activeAdapters();
    for (int r = 0; r < perRow.size(); r++) {
      Map<String, INDArray> one = new HashMap<>();
      int row = r;
      inputs.forEach((k, v) -> one.put(k, v.getRow(row).reshape(1, v.size(1))));
      Map<String, INDArray> alone;
      if (perRow.get(r) == null) {
        try (var base = model.disableAdapters()) {
          alone = model.output(one, OUTPUTS);
        }
      } else {
        model.setAdapter(perRow.get(r));
        alone = model.output(one, OUTPUTS);
      }
      for (String o : OUTPUTS) {
        INDArray got = mixed.get(o).get(org.nd4j.linalg.indexing.NDArrayIndex.point(r)).reshape(alone.get(o).shape());
        double error = Graphs.relativeError(got, alone.get(o));
        assertTrue(error <= 1e-5, context + ": row " + r + " (" + perRow.get(r) + "), " + o + ": relative error "
            + error);
      }
    }
    model.setAdapter(active);
  }

  @Test
  void randomMixedBatchesEqualEachRowAloneAndRunBesideOtherReaders() throws Exception {
    long seed = System.nanoTime();
    System.out.println("MixedLoraBatchTest seed " + seed);
    Random random = new Random(seed);
    PeftModel model = fourAdapters(seed);
    List<String> names = List.copyOf(model.adapterNames());
    for (int trial = 0; trial < 3; trial++) {
      Map<String, INDArray> inputs = inputs(random);
      List<String> perRow = randomRows(random, names);
      Map<String, INDArray> mixed = model.outputMixed(inputs, perRow, OUTPUTS);
      assertEquals(List.of("default"), model.activeAdapters(), "the active adapter is unchanged");
      assertEachRowAsAlone(model, inputs, perRow, mixed, "seed " + seed + ", rows " + perRow);
    }
    // a second batch of plain LoRA rows runs while another thread reads: the grouped path would wait for it
    Map<String, INDArray> inputs = inputs(random);
    List<String> perRow = randomRows(random, names);
    model.outputMixed(inputs, perRow, OUTPUTS); // the variant exists
    ExecutorService other = Executors.newSingleThreadExecutor();
    Map<String, INDArray> besideReader;
    try (var reading = model.shared()) {
      besideReader = other.submit(() -> model.outputMixed(inputs, perRow, OUTPUTS)).get(120, TimeUnit.SECONDS);
    } finally {
      other.shutdownNow();
    }
    assertEachRowAsAlone(model, inputs, perRow, besideReader, "beside a reader");
  }

  @Test
  void adaptersAddedRemovedOrReloadedBetweenCallsAreSeen() {
    long seed = System.nanoTime();
    System.out.println("MixedLoraBatchTest seed " + seed);
    Random random = new Random(seed);
    PeftModel model = fourAdapters(seed);
    Map<String, INDArray> inputs = inputs(random);
    List<String> perRow = Arrays.asList("default", "q_only", null, "wide", "head_too", "q_only", "default");
    assertEachRowAsAlone(model, inputs, perRow, model.outputMixed(inputs, perRow, OUTPUTS), "first call");

    randomise(model, "q_only", seed + 100); // new weights, same graph
    assertEachRowAsAlone(model, inputs, perRow, model.outputMixed(inputs, perRow, OUTPUTS), "after a reload");

    model.addAdapter("late", Peft.lora(16).alpha(16).target("o_proj").build());
    randomise(model, "late", seed + 200);
    List<String> withLate = Arrays.asList("late", "q_only", null, "wide", "late", "default", "head_too");
    assertEachRowAsAlone(model, inputs, withLate, model.outputMixed(inputs, withLate, OUTPUTS), "after an add");

    model.deleteAdapter("q_only");
    List<String> without = Arrays.asList("late", "wide", null, "wide", "late", "default", "head_too");
    assertEachRowAsAlone(model, inputs, without, model.outputMixed(inputs, without, OUTPUTS), "after a delete");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> model.outputMixed(inputs, perRow, OUTPUTS));
    assertTrue(e.getMessage().contains("no adapter named 'q_only'"), e.getMessage());
  }

  @Test
  void batchNamingAnotherMethodFallsBackToGroupsWithTheSameResult() {
    long seed = System.nanoTime();
    System.out.println("MixedLoraBatchTest seed " + seed);
    Random random = new Random(seed);
    PeftModel model = fourAdapters(seed);
    model.addAdapter("dora", Peft.dora(4).target("q_proj", "v_proj").build());
    randomise(model, "dora", seed + 300);
    Map<String, INDArray> inputs = inputs(random);
    List<String> perRow = Arrays.asList("dora", "q_only", null, "wide", "dora", "default", "head_too");
    assertEachRowAsAlone(model, inputs, perRow, model.outputMixed(inputs, perRow, OUTPUTS), "with DoRA rows");
    List<String> loraOnly = Arrays.asList("wide", "q_only", null, "wide", "default", "default", "head_too");
    assertEachRowAsAlone(model, inputs, loraOnly, model.outputMixed(inputs, loraOnly, OUTPUTS), "DoRA in the model");
  }
}
