package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Mlp;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The training loop over a LoRA model. */
class TrainerTest {

  private static PeftModel lora(SameDiff sd) {
    return Peft.lora(4).alpha(8).target("fc", "head").apply(sd);
  }

  @Test
  void accumulatingTwoHalvesEqualsOneFullBatch() {
    SameDiff full = ToyModels.mlp(DataType.DOUBLE);
    SameDiff halves = ToyModels.mlp(DataType.DOUBLE);
    PeftModel fullModel = lora(full);
    PeftModel halfModel = lora(halves);
    Batch batch = Graphs.batches(full, 3, 1, 8).get(0);
    INDArray x = batch.inputs().get(Mlp.INPUT);
    INDArray y = batch.inputs().get(Mlp.LABELS);
    List<Batch> split = List.of(
        Batch.of(Map.of(Mlp.INPUT, x.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 4)).dup(),
            Mlp.LABELS, y.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 4)).dup()), Mlp.INPUT),
        Batch.of(Map.of(Mlp.INPUT, x.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(4, 8)).dup(),
            Mlp.LABELS, y.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(4, 8)).dup()), Mlp.INPUT));
    TrainingHistory a = Trainer.builder(fullModel).steps(5).learningRate(1e-2).maxGradNorm(0).progress(null)
        .build().fit(List.of(batch));
    TrainingHistory b = Trainer.builder(halfModel).steps(5).learningRate(1e-2).maxGradNorm(0)
        .gradientAccumulation(2).progress(null).build().fit(split);
    for (String p : fullModel.trainableParameters().names()) {
      assertTrue(Graphs.relativeError(halves.getArrForVarName(p), full.getArrForVarName(p)) < 1e-9, p);
    }
    assertEquals(a.steps().get(4).loss(), b.steps().get(4).loss(), 1e-9);
    assertEquals(8, b.steps().get(0).tokens(), "two micro-batches of four");
  }

  @Test
  void clippingBoundsTheUpdateOfPlainSignedSteps() {
    // with β₁ = β₂ = 0 and ε huge, AdamW's update is lr·g/ε: proportional to the (clipped) gradient
    double[] moved = new double[2];
    double[] norms = new double[2];
    for (int run = 0; run < 2; run++) {
      SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
      PeftModel model = lora(sd);
      sd.getArrForVarName("peft/default/lora/head/lora_B").assign(0.3);
      Map<String, INDArray> before = Graphs.parameters(sd);
      Trainer.Builder builder = Trainer.builder(model).steps(1).learningRate(1).betas(0, 0).epsilon(1e6)
          .schedule(LearningRateSchedule.CONSTANT).progress(null);
      builder.maxGradNorm(run == 0 ? 0 : 1e-3);
      TrainingHistory h = builder.build().fit(Graphs.batches(sd, 4, 1, 8));
      norms[run] = h.steps().get(0).gradientNorm();
      double squares = 0;
      for (String p : model.trainableParameters().names()) {
        double d = sd.getArrForVarName(p).sub(before.get(p)).norm2Number().doubleValue();
        squares += d * d;
      }
      moved[run] = Math.sqrt(squares);
    }
    assertEquals(norms[0], norms[1], 1e-12, "the recorded norm is the norm before clipping");
    assertTrue(norms[0] > 1e-3);
    assertEquals(norms[0] * 1e-6, moved[0], 1e-9 * norms[0], "unclipped: lr·‖g‖/ε");
    assertEquals(1e-3 * 1e-6, moved[1], 1e-12, "clipped to ‖g‖ = 1e-3");
  }

  @Test
  void warmupAndScheduleDriveTheRecordedLearningRate() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    TrainingHistory h = Trainer.builder(lora(sd)).steps(10).learningRate(0.1).warmupSteps(4)
        .schedule(LearningRateSchedule.COSINE).progress(null).build().fit(Graphs.batches(sd, 1, 2, 4));
    for (int i = 0; i < 10; i++) {
      assertEquals(0.1 * LearningRateSchedule.COSINE.factor(i, 4, 10), h.steps().get(i).learningRate(), 1e-15);
    }
  }

  @Test
  void evaluationRunsInInferenceModeOnSchedule() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    PeftModel model = Peft.lora(4).dropout(0.2).target("head").apply(sd);
    List<Integer> steps = new ArrayList<>();
    List<Boolean> training = new ArrayList<>();
    TrainingHistory h = Trainer.builder(model).steps(7).progress(null)
        .evaluateEvery(3, (step, m) -> {
          steps.add(step);
          training.add(m.isTraining());
          return Map.of("step", (double) step);
        })
        .build().fit(Graphs.batches(sd, 1, 2, 4));
    assertEquals(List.of(3, 6, 7), steps);
    assertEquals(List.of(false, false, false), training);
    assertEquals(7.0, h.evaluations().get(2).metrics().get("step"));
    assertTrue(!model.isTraining(), "inference mode after fit");
  }

  @Test
  void progressBarReportsStepLossThroughputAndEta() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Trainer.builder(lora(sd)).steps(20).progress(new PrintStream(out, true, StandardCharsets.UTF_8)).build()
        .fit(Graphs.batches(sd, 1, 2, 4));
    List<String> lines = out.toString(StandardCharsets.UTF_8).lines().toList();
    assertEquals(11, lines.size(), "first step, every tenth, and the last: " + lines);
    assertTrue(lines.get(lines.size() - 1).matches("\\[#{24}] 20/20 loss \\d+\\.\\d{4} [\\d,]+ tok/s ETA 0:00"),
        lines.get(lines.size() - 1));
  }

  @Test
  void refusesToTrainNothing() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    PeftModel model = lora(sd);
    model.adapter("default").disable();
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> Trainer.builder(model).steps(1).progress(null).build().fit(Graphs.batches(sd, 1, 1, 4)));
    assertTrue(e.getMessage().contains("nothing to train"), e.getMessage());
    assertThrows(IllegalArgumentException.class,
        () -> { model.adapter("default").enable(); Trainer.builder(model).steps(1).build().fit(List.of()); });
  }

  @Test
  void theNativeMemoryGuardIsOnByDefaultAndTheOptionOrThePropertyTurnsItOff() {
    SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
    PeftModel model = lora(sd);
    assertTrue(Trainer.builder(model).steps(1).build().nativeMemoryGuard());
    assertEquals(false, Trainer.builder(model).steps(1).nativeMemoryGuard(false).build().nativeMemoryGuard());
    String before = System.getProperty(Trainer.MEMORY_GUARD_PROPERTY);
    try {
      System.setProperty(Trainer.MEMORY_GUARD_PROPERTY, "false");
      assertEquals(false, Trainer.builder(model).steps(1).build().nativeMemoryGuard());
      assertTrue(Trainer.builder(model).steps(1).nativeMemoryGuard(true).build().nativeMemoryGuard(),
          "the builder's option wins over the property");
    } finally {
      if (before == null) {
        System.clearProperty(Trainer.MEMORY_GUARD_PROPERTY);
      } else {
        System.setProperty(Trainer.MEMORY_GUARD_PROPERTY, before);
      }
    }
    IllegalStateException twice = assertThrows(IllegalStateException.class,
        () -> Trainer.builder(model).nativeMemoryGuard(false).nativeMemoryGuard(true));
    assertTrue(twice.getMessage().contains("already set to false"), twice.getMessage());
  }

  @Test
  void trainingWithoutTheNativeMemoryGuardGivesTheSameLosses() {
    double[][] losses = new double[2][];
    for (int run = 0; run < 2; run++) {
      SameDiff sd = ToyModels.mlp(DataType.DOUBLE);
      PeftModel model = lora(sd);
      TrainingHistory h = Trainer.builder(model).steps(3).learningRate(1e-2).progress(null)
          .nativeMemoryGuard(run == 0).build().fit(Graphs.batches(sd, 4, 1, 8));
      losses[run] = h.steps().stream().mapToDouble(TrainingHistory.Step::loss).toArray();
    }
    assertEquals(3, losses[1].length);
    for (int i = 0; i < 3; i++) {
      assertEquals(losses[0][i], losses[1][i], 1e-12, "step " + (i + 1));
    }
  }

  @Test
  void builderValidatesAndSetsOnce() {
    PeftModel model = lora(ToyModels.mlp(DataType.FLOAT));
    assertThrows(IllegalStateException.class, () -> Trainer.builder(model).build(), "steps required");
    assertThrows(IllegalArgumentException.class, () -> Trainer.builder(model).steps(0));
    assertThrows(IllegalArgumentException.class, () -> Trainer.builder(model).learningRate(-1));
    assertThrows(IllegalStateException.class, () -> Trainer.builder(model).steps(2).steps(3));
    assertThrows(IllegalStateException.class, () -> Trainer.builder(model).steps(2).warmupSteps(3).build());
  }
}
