package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.testing.Graphs;
import java.util.List;

/** Two training runs of one method that must agree: step by step, then weight by weight. */
final class SameRuns {

  private SameRuns() {}

  /**
   * Asserts that the runs' losses and gradient norms agree to 1e-5 (relative) at every step, that the first run
   * trained, and that every trainable weight agrees to {@code weightTolerance} (relative); prints the largest weight
   * difference under {@code name}.
   */
  static void assertSame(String name, TrainingHistory[] runs, PeftModel[] models, double weightTolerance) {
    int steps = runs[0].steps().size();
    assertEquals(steps, runs[1].steps().size(), "steps");
    for (int step = 0; step < steps; step++) {
      assertEquals(runs[0].steps().get(step).loss(), runs[1].steps().get(step).loss(),
          1e-5 * Math.abs(runs[0].steps().get(step).loss()), "loss of step " + (step + 1));
      // AdamW's update barely moves when every gradient is scaled alike; the norm does
      assertEquals(runs[0].steps().get(step).gradientNorm(), runs[1].steps().get(step).gradientNorm(),
          1e-5 * runs[0].steps().get(step).gradientNorm(), "gradient norm of step " + (step + 1));
    }
    assertTrue(runs[0].steps().get(steps - 1).loss() != runs[0].steps().get(0).loss(), "the runs trained");
    List<String> names = models[0].trainableParameters().names();
    assertEquals(names, models[1].trainableParameters().names());
    double worst = 0;
    for (String p : names) {
      double error = Graphs.relativeError(models[1].sameDiff().getArrForVarName(p),
          models[0].sameDiff().getArrForVarName(p));
      worst = Math.max(worst, error);
      assertTrue(error < weightTolerance, p + ": relative error " + error);
    }
    System.out.println(name + ": largest relative weight difference " + worst);
  }
}
