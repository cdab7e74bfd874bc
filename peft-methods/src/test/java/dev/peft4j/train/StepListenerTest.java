package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The trainer's per-step callback: every step, in order, with the step's gradients of the whole trainable set. */
class StepListenerTest {

  @Test
  void calledAfterEveryStepWithTheGradientsTheOptimizerUsed() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    PeftModel model = Peft.lora(2).target("fc").apply(sd);
    List<Integer> steps = new ArrayList<>();
    List<Double> norms = new ArrayList<>();
    List<Map<String, INDArray>> afterUpdate = new ArrayList<>();
    String a = model.trainableParameters().names().get(0);
    TrainingHistory history = Trainer.builder(model).steps(4).learningRate(1e-2).maxGradNorm(0).progress(null)
        .onStep((step, gradients) -> {
          steps.add(step);
          assertEquals(Set.copyOf(model.trainableParameters().names()), gradients.keySet());
          double sumSquares = gradients.values().stream()
              .mapToDouble(g -> Math.pow(g.norm2Number().doubleValue(), 2)).sum();
          norms.add(Math.sqrt(sumSquares));
          afterUpdate.add(Map.of(a, sd.getArrForVarName(a).dup()));
          assertThrows(UnsupportedOperationException.class, () -> gradients.put(a, null));
        }).build().fit(Graphs.batches(sd, 4, 2, 8));
    assertEquals(List.of(1, 2, 3, 4), steps);
    for (int i = 0; i < 4; i++) { // unclipped: the gradients' norm is the one the history records (not AdamW's g²)
      assertEquals(history.steps().get(i).gradientNorm(), norms.get(i), 1e-5 * norms.get(i));
    }
    assertEquals(sd.getArrForVarName(a), afterUpdate.get(3).get(a), "called after the optimizer updated the weights");
    assertTrue(norms.get(0) > 0);
  }

  /** The step's gradients are freed when the listeners return (not left to the collector); a dup() is the caller's. */
  @Test
  void theGradientsAreValidDuringTheCallOnly() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    PeftModel model = Peft.lora(2).target("fc").apply(sd);
    List<INDArray> seen = new ArrayList<>();
    List<INDArray> kept = new ArrayList<>();
    Trainer.builder(model).steps(3).learningRate(1e-2).progress(null).onStep((step, gradients) -> {
      gradients.values().forEach(g -> assertFalse(g.wasClosed(), "open during the call"));
      seen.addAll(gradients.values());
      kept.add(gradients.values().iterator().next().dup());
    }).build().fit(Graphs.batches(sd, 4, 2, 8));
    assertEquals(3 * model.trainableParameters().names().size(), seen.size());
    assertTrue(seen.stream().allMatch(INDArray::wasClosed), "freed after the call");
    assertTrue(kept.stream().noneMatch(INDArray::wasClosed) && kept.get(0).norm2Number().doubleValue() > 0,
        "a copy stays the listener's");
  }

  @Test
  void nullListenerIsRefused() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    PeftModel model = Peft.lora(2).target("fc").apply(sd);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Trainer.builder(model).onStep(null));
    assertTrue(e.getMessage().contains("step listener must not be null"), e.getMessage());
  }
}
