package dev.peft4j.selective;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import dev.peft4j.train.Batch;
import dev.peft4j.train.LearningRateSchedule;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** LP-FT runs the head-only phase, then the second phase from the trained head, with the ordinary trainer twice. */
class LpFtTest {

  private static final String[] BASE = {"layers.0.fc.weight", "layers.0.fc.bias", "layers.1.fc.weight",
      "layers.1.fc.bias"};

  @Test
  void secondPhaseStartsFromTheHeadTheProbeTrained() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    List<Batch> data = Graphs.batches(sd, 3, 2, 8);
    Map<String, INDArray> initial = Graphs.parameters(sd);

    // the same probe alone, on a second copy of the model: what phase 1 must produce
    SameDiff reference = ToyModels.mlp(DataType.FLOAT);
    PeftModel probe = Peft.linearProbe().apply(reference);
    Trainer.builder(probe).steps(20).learningRate(5e-2).schedule(LearningRateSchedule.CONSTANT).progress(null)
        .build().fit(Graphs.batches(reference, 3, 2, 8));
    Map<String, INDArray> probed = Graphs.parameters(probe.mergeAndUnload());

    LpFt.Result r = LpFt.builder(Peft.fullFineTuning().build())
        .probe(t -> t.steps(20).learningRate(5e-2).schedule(LearningRateSchedule.CONSTANT).progress(null))
        .fineTune(t -> t.steps(1).learningRate(1e-12).schedule(LearningRateSchedule.CONSTANT).progress(null))
        .fit(sd, data);
    assertEquals(20, r.probe().steps().size());
    assertEquals(1, r.fineTune().steps().size());
    assertTrue(r.probe().lastLoss() < r.probe().firstLoss(), "the probe trains the head");
    Map<String, INDArray> now = Graphs.parameters(sd);
    for (String p : BASE) {
      assertEquals(initial.get(p), now.get(p), p + ": the body is the pre-trained one until phase 2 trains it");
    }
    for (String p : List.of("head.weight", "head.bias")) {
      assertNotEquals(initial.get(p), now.get(p), p + " was trained by the probe");
      assertEquals(probed.get(p), now.get(p), p + ": phase 2 starts from exactly the probe's head");
    }
    assertEquals(r.fineTune().firstLoss(), r.probe().lastLoss(), 0.05,
        "phase 2 starts where phase 1 ended, not from a random head");
    assertTrue(r.model().trainableParameters().names().stream()
        .anyMatch(n -> n.endsWith("layers.0.fc.weight")), "phase 2 is full fine-tuning");
  }

  @Test
  void loraSecondPhaseTrainsTheBodyWithTheHeadInModulesToSave() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    List<Batch> data = Graphs.batches(sd, 4, 2, 8);
    LpFt.Result r = LpFt.builder(Peft.lora(4).alpha(8).target("q_proj", "v_proj").modulesToSave("lm_head").build())
        .probe(t -> t.steps(15).learningRate(5e-2).progress(null))
        .fineTune(t -> t.steps(25).learningRate(2e-2).progress(null))
        .fit(sd, data);
    TrainingHistory ft = r.fineTune();
    assertTrue(r.probe().lastLoss() < r.probe().firstLoss());
    assertTrue(ft.meanLossOfLast(3) < ft.meanLossOfFirst(3), ft.meanLossOfFirst(3) + " → " + ft.meanLossOfLast(3));
    assertEquals(2L * 2 * 4 * (ToyModels.D + ToyModels.D) + (long) ToyModels.D * ToyModels.CLASSES
        + ToyModels.CLASSES, r.model().trainableParameters().count());
  }

  @Test
  void aSecondPhaseThatDoesNotFitIsRefusedBeforeAnyTraining() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    Map<String, INDArray> before = Graphs.parameters(sd);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> LpFt.builder(Peft.lora(4).target("q_proj").build())
            .probe(t -> t.steps(5).progress(null)).fineTune(t -> t.steps(5).progress(null))
            .fit(sd, Graphs.batches(sd, 1, 1, 4)));
    assertTrue(e.getMessage().contains("[q_proj] not found"), e.getMessage());
    assertEquals(before, Graphs.parameters(sd), "nothing trained");
    assertEquals(Graphs.types(ToyModels.mlp(DataType.FLOAT)), Graphs.types(sd));
    assertThrows(IllegalStateException.class, () -> LpFt.builder(Peft.fullFineTuning().build())
        .probe(t -> t.steps(5)).fit(sd, Graphs.batches(sd, 1, 1, 4)));
  }
}
