package dev.peft4j.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.MergeableAdapter;
import dev.peft4j.PeftModel;
import dev.peft4j.TrainableParameterSet;
import dev.peft4j.contract.Cases.Capability;
import dev.peft4j.contract.Cases.Case;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import dev.peft4j.train.GradientFunction;
import dev.peft4j.train.LearningRateSchedule;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Properties every PEFT method must have, over the whole table of {@link Cases}. */
class AdapterContractTest {

  private static final String ALL = "dev.peft4j.contract.Cases#all";

  private static PeftModel apply(Case c, SameDiff sd) {
    PeftModel model = c.config().get().apply(sd);
    GraphRewriter.of(sd).requireConsistentLinks();
    return model;
  }

  private static TrainingHistory train(PeftModel model, List<Batch> data, int steps) {
    return Trainer.builder(model).steps(steps).learningRate(2e-2).schedule(LearningRateSchedule.CONSTANT)
        .progress(null).build().fit(data);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource(ALL)
  void outputEqualsBaseAtInit(Case c) {
    assumeTrue(c.capabilities().contains(Capability.IDENTITY_AT_INIT));
    SameDiff sd = c.base();
    Batch batch = Graphs.batches(sd, 1, 1, 5).get(0);
    INDArray before = Graphs.logits(sd, batch);
    apply(c, sd);
    assertEquals(before, Graphs.logits(sd, batch), "adapted output at init must equal the base output exactly");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource(ALL)
  void onlyAdapterParametersChangeAndLossFalls(Case c) {
    SameDiff sd = c.base();
    PeftModel model = apply(c, sd);
    Set<String> trainable = new HashSet<>(model.trainableParameters().names());
    Map<String, INDArray> before = Graphs.parameters(sd);
    TrainingHistory history = train(model, Graphs.batches(sd, 2, 3, 8), 40);
    Map<String, INDArray> after = Graphs.parameters(sd);
    assertEquals(before.keySet(), after.keySet());
    for (String name : before.keySet()) {
      if (trainable.contains(name)) {
        assertNotEquals(before.get(name), after.get(name), name + " is trainable but did not change");
      } else {
        assertEquals(before.get(name), after.get(name), name + " is not trainable but changed");
      }
    }
    assertEquals(trainable, Set.copyOf(history.trainedParameters()));
    assertTrue(history.meanLossOfLast(5) < history.meanLossOfFirst(5) * 0.95,
        "loss did not fall: " + history.meanLossOfFirst(5) + " -> " + history.meanLossOfLast(5));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource(ALL)
  void trainableCountEqualsArraysAndFormula(Case c) {
    SameDiff sd = c.base();
    long allBefore = TrainableParameterSet.parameterCount(sd);
    AdapterConfig config = c.config().get();
    PeftModel model = config.apply(sd);
    TrainableParameterSet set = model.trainableParameters();
    long fromArrays = set.names().stream().mapToLong(n -> sd.getArrForVarName(n).length()).sum();
    assertEquals(c.expectedParams(), set.count(), "closed-form count from the model's dimensions");
    assertEquals(c.expectedParams(), config.parameterCount(c.base()), "the config's own closed-form count");
    assertEquals(fromArrays, set.count(), "count from the arrays");
    assertEquals(allBefore + set.count(), set.allParameters(), "all params = base + adapter");
    for (String n : set.names()) {
      assertEquals(VariableType.VARIABLE, sd.getVariable(n).getVariableType(), n);
      assertTrue(n.startsWith("peft/default/"), n + " is outside the adapter's name scope");
    }
    long otherTrainable = sd.variables().stream()
        .filter(v -> v.getVariableType() == VariableType.VARIABLE && !set.names().contains(v.name())).count();
    assertEquals(0, otherTrainable, "every base variable must be frozen");
    assertTrue(set.toString().matches("trainable params: [\\d,]+ \\|\\| all params: [\\d,]+ \\|\\| trainable%: [\\d.]+"),
        set.toString());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource(ALL)
  void updaterStateOnlyForTrainableSet(Case c) {
    SameDiff sd = c.base();
    PeftModel model = apply(c, sd);
    long count = model.trainableParameters().count();
    TrainingHistory history = train(model, Graphs.batches(sd, 3, 1, 4), 2);
    assertEquals(2 * count * 4, history.updaterStateBytes(), "two float moments per trainable scalar, no more");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource(ALL)
  void mergedEqualsUnmerged(Case c) {
    assumeTrue(c.capabilities().contains(Capability.MERGEABLE));
    SameDiff sd = c.base();
    PeftModel model = apply(c, sd);
    Batch batch = Graphs.batches(sd, 4, 1, 6).get(0);
    train(model, Graphs.batches(sd, 5, 2, 8), 15);
    INDArray unmerged = Graphs.logits(sd, batch);
    MergeableAdapter adapter = (MergeableAdapter) model.adapter(PeftModel.DEFAULT_ADAPTER);
    adapter.merge();
    GraphRewriter.of(sd).requireConsistentLinks();
    assertTrue(adapter.isMerged());
    INDArray merged = Graphs.logits(sd, batch);
    assertTrue(Graphs.relativeError(merged, unmerged) <= 1e-5, "merged vs unmerged: "
        + Graphs.relativeError(merged, unmerged));
    assertTrue(model.trainableParameters().isEmpty(), "a merged adapter does not train");
    adapter.unmerge();
    GraphRewriter.of(sd).requireConsistentLinks();
    assertTrue(Graphs.relativeError(Graphs.logits(sd, batch), unmerged) <= 1e-5);
    SameDiff result = model.mergeAndUnload();
    GraphRewriter.of(result).requireConsistentLinks();
    assertTrue(Graphs.relativeError(Graphs.logits(result, batch), unmerged) <= 1e-5);
    assertNoAdapterLeft(result);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource(ALL)
  void unloadRestoresTheBaseExactly(Case c) {
    SameDiff sd = c.base();
    Batch batch = Graphs.batches(sd, 6, 1, 6).get(0);
    INDArray baseOutput = Graphs.logits(sd, batch);
    Map<String, VariableType> types = Graphs.types(sd);
    Set<String> ops = Set.copyOf(sd.getOps().keySet());
    PeftModel model = apply(c, sd);
    train(model, Graphs.batches(sd, 7, 2, 8), 5);
    assertNotEquals(baseOutput, Graphs.logits(sd, batch), "training should have moved the output");
    SameDiff result = model.unload();
    GraphRewriter.of(result).requireConsistentLinks();
    assertEquals(baseOutput, Graphs.logits(result, batch), "unload must restore the base output bit for bit");
    assertEquals(types, Graphs.types(result), "same variables with the same types (base trainable again)");
    assertEquals(ops, Set.copyOf(result.getOps().keySet()));
    assertNoAdapterLeft(result);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource(ALL)
  void disableIsNonDestructive(Case c) {
    SameDiff sd = c.base();
    Batch batch = Graphs.batches(sd, 8, 1, 6).get(0);
    INDArray baseOutput = Graphs.logits(sd, batch);
    PeftModel model = apply(c, sd);
    train(model, Graphs.batches(sd, 9, 2, 8), 5);
    INDArray adapted = Graphs.logits(sd, batch);
    Map<String, INDArray> weights = Graphs.parameters(sd);
    Adapter adapter = model.adapter(PeftModel.DEFAULT_ADAPTER);
    try (var scope = model.disableAdapters()) {
      GraphRewriter.of(sd).requireConsistentLinks();
      assertFalse(adapter.isEnabled());
      assertEquals(baseOutput, Graphs.logits(sd, batch), "disabled gives the base output");
      assertTrue(model.trainableParameters().isEmpty());
    }
    GraphRewriter.of(sd).requireConsistentLinks();
    assertTrue(adapter.isEnabled());
    assertEquals(adapted, Graphs.logits(sd, batch), "re-enabled gives the adapted output again");
    assertEquals(weights, Graphs.parameters(sd), "no weight changed");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource(ALL)
  void sameSeedSameRun(Case c) {
    double[] losses = new double[2];
    INDArray[] outputs = new INDArray[2];
    for (int run = 0; run < 2; run++) {
      SameDiff sd = c.base();
      PeftModel model = apply(c, sd);
      TrainingHistory h = train(model, Graphs.batches(sd, 10, 2, 8), 6);
      losses[run] = h.lastLoss();
      outputs[run] = Graphs.logits(sd, Graphs.batches(sd, 11, 1, 4).get(0));
    }
    assertEquals(losses[0], losses[1], "same seed, same data: same losses");
    assertEquals(outputs[0], outputs[1]);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource(ALL)
  void gradientsMatchFiniteDifferences(Case c) {
    assumeFalse(c.capabilities().contains(Capability.STOPPED_GRADIENT));
    SameDiff sd = c.model().apply(DataType.DOUBLE);
    PeftModel model = c.config().get().apply(sd);
    List<String> params = model.trainableParameters().names();
    java.util.Random random = new java.util.Random(17);
    for (String p : params) { // move every parameter off its initial value so no gradient is trivially zero
      INDArray a = sd.getArrForVarName(p);
      for (long i = 0; i < a.length(); i++) {
        a.putScalar(i, a.getDouble(i) + 0.3 * (random.nextDouble() - 0.5));
      }
    }
    Batch batch = Graphs.batches(sd, 12, 1, 5).get(0);
    GradientFunction.prepare(sd);
    Map<String, INDArray> grads = sd.calculateGradients(batch.inputs(), params);
    double eps = 1e-6;
    for (String p : params) {
      INDArray a = sd.getArrForVarName(p);
      for (long i = 0; i < a.length(); i += Math.max(1, a.length() / 6)) {
        double original = a.getDouble(i);
        a.putScalar(i, original + eps);
        double plus = sd.output(batch.inputs(), "loss").get("loss").getDouble(0);
        a.putScalar(i, original - eps);
        double minus = sd.output(batch.inputs(), "loss").get("loss").getDouble(0);
        a.putScalar(i, original);
        double numeric = (plus - minus) / (2 * eps);
        double analytic = grads.get(p).getDouble(i);
        assertTrue(Math.abs(numeric - analytic) <= 1e-6 * Math.max(1, Math.abs(numeric)),
            p + "[" + i + "]: analytic " + analytic + " vs numeric " + numeric);
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource(ALL)
  void savedThenLoadedGivesIdenticalOutputs(Case c, @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
      throws java.io.IOException {
    SameDiff sd = c.base();
    PeftModel model = apply(c, sd);
    train(model, Graphs.batches(sd, 13, 2, 8), 5);
    Batch batch = Graphs.batches(sd, 14, 1, 6).get(0);
    INDArray trained = Graphs.logits(sd, batch);
    model.save(dir);
    assertTrue(java.nio.file.Files.isRegularFile(dir.resolve("adapter_config.json")));

    SameDiff fresh = c.base();
    PeftModel loaded = dev.peft4j.methods.Peft.load(fresh, dir);
    GraphRewriter.of(fresh).requireConsistentLinks();
    assertEquals(trained, Graphs.logits(fresh, batch), "a saved-then-loaded adapter gives identical outputs");
    if (!c.capabilities().contains(Capability.REPARAMETERISED)) {
      assertEquals(model.trainableParameters().count(), loaded.trainableParameters().count());
    }
    assertEquals(c.config().get().toHfConfig(), loaded.adapter(PeftModel.DEFAULT_ADAPTER).config().toHfConfig());
  }

  /**
   * Every linear module's weight a file holds (a modules_to_save head, full fine-tuning's copies) is in PyTorch's
   * {@code [out, in]}, as Hugging Face PEFT loads it; it used to be written {@code [in, out]} for modules_to_save.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource(ALL)
  void linearWeightsAreSavedOutIn(Case c, @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
      throws java.io.IOException {
    Map<String, long[]> inOut = new java.util.HashMap<>();
    GraphRewriter.of(c.base()).linearModules().forEach(m -> inOut.put(m.weight(), new long[] {m.inFeatures(), m.outFeatures()}));
    apply(c, c.base()).save(dir);
    int checked = 0;
    try (dev.peft4j.io.SafetensorsFile f =
        dev.peft4j.io.SafetensorsFile.open(dir.resolve(dev.peft4j.io.AdapterFiles.WEIGHTS))) {
      for (String key : f.names()) {
        String module = key.substring(dev.peft4j.io.AdapterFiles.PREFIX.length());
        long[] shape = inOut.get(module);
        if (shape != null) {
          assertEquals(List.of(shape[1], shape[0]), java.util.Arrays.stream(f.read(key).shape()).boxed().toList(),
              key + " as [out, in]");
          checked++;
        }
      }
    }
    if (c.config().get().modulesToSave().isEmpty()) {
      assumeTrue(checked > 0, "this case saves no linear weight");
    } else {
      assertTrue(checked > 0, "every case's modules_to_save head is a linear layer, saved whole");
    }
  }

  static void assertNoAdapterLeft(SameDiff sd) {
    sd.getVariables().keySet().forEach(n -> assertFalse(n.startsWith("peft/"), "left over variable " + n));
    sd.getOps().keySet().forEach(n -> assertFalse(n.startsWith("peft/"), "left over op " + n));
  }
}
