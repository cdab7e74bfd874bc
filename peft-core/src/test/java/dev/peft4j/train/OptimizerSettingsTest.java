package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import org.junit.jupiter.api.Test;

class OptimizerSettingsTest {

  /** The smallest trainer builder: the shared options alone. */
  private static final class Options extends TrainerBuilder<Options> {
    OptimizerSettings settings() {
      return optimizerSettings();
    }
  }

  @Test
  void unsetOptionsTakeTheDefaults() {
    Options o = new Options().steps(10);
    assertEquals(new OptimizerSettings(1e-3, 0, 0.9, 0.999, 1e-8, 0, LearningRateSchedule.LINEAR, 1.0), o.settings());
    assertEquals(OptimizerSettings.DEFAULTS, o.settings());
    assertEquals(42L, o.seed());
  }

  @Test
  void givenOptionsAreKept() {
    Options o = new Options().learningRate(3e-4).weightDecay(0.01).betas(0.8, 0.99).epsilon(1e-6).warmupSteps(4)
        .schedule(LearningRateSchedule.COSINE).maxGradNorm(0).seed(7).steps(10);
    assertEquals(new OptimizerSettings(3e-4, 0.01, 0.8, 0.99, 1e-6, 4, LearningRateSchedule.COSINE, 0), o.settings());
    assertEquals(10, o.steps());
    assertEquals(7L, o.seed());
  }

  @Test
  void eachOptionCanBeSetOnceAndIsChecked() {
    Options o = new Options().learningRate(1e-2);
    assertEquals("learning rate was already set to 0.01",
        assertThrows(IllegalStateException.class, () -> o.learningRate(1e-3)).getMessage());
    assertEquals("betas must be in [0, 1), got (0.9, 1.0)",
        assertThrows(IllegalArgumentException.class, () -> o.betas(0.9, 1.0)).getMessage());
    o.betas(0.5, 0.5); // the refused call changed nothing
    assertEquals("steps must be set", assertThrows(IllegalStateException.class, o::settings).getMessage());
    o.steps(3).warmupSteps(4);
    assertEquals("warm-up steps (4) exceed steps (3)",
        assertThrows(IllegalStateException.class, o::settings).getMessage());
  }

  @Test
  void theRecordRefusesWhatTheBuilderRefuses() {
    assertEquals("learning rate must be > 0 and finite, got Infinity", assertThrows(IllegalArgumentException.class,
        () -> new OptimizerSettings(Double.POSITIVE_INFINITY, 0, 0.9, 0.999, 1e-8, 0, LearningRateSchedule.LINEAR, 1))
        .getMessage());
    assertEquals("epsilon must be > 0, got NaN", assertThrows(IllegalArgumentException.class,
        () -> new OptimizerSettings(1e-3, 0, 0.9, 0.999, Double.NaN, 0, LearningRateSchedule.LINEAR, 1))
        .getMessage());
    assertEquals("schedule must not be null", assertThrows(IllegalArgumentException.class,
        () -> new OptimizerSettings(1e-3, 0, 0.9, 0.999, 1e-8, 0, null, 1)).getMessage());
    assertEquals("max grad norm must be >= 0, got -1.0", assertThrows(IllegalArgumentException.class,
        () -> new OptimizerSettings(1e-3, 0, 0.9, 0.999, 1e-8, 0, LearningRateSchedule.LINEAR, -1)).getMessage());
  }

  @Test
  void theScheduledLearningRateIsThePeakTimesTheFactorOfTheZeroBasedStep() {
    OptimizerSettings s = new OptimizerSettings(2e-3, 0, 0.9, 0.999, 1e-8, 4, LearningRateSchedule.LINEAR, 1);
    assertEquals(0.0, s.learningRate(1, 10), 1e-15);      // factor(0, 4, 10) = 0
    assertEquals(1e-3, s.learningRate(3, 10), 1e-15);     // 2/4 of the peak
    assertEquals(1e-3, s.learningRate(8, 10), 1e-15);     // (10 − 7)/(10 − 4) of it
  }

  @Test
  void survivesJavaSerialisationAsSparkShipsIt() throws Exception {
    OptimizerSettings s = new OptimizerSettings(3e-4, 0.01, 0.8, 0.99, 1e-6, 2, LearningRateSchedule.COSINE, 0.5);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(s);
    }
    try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
      assertEquals(s, in.readObject());
    }
  }
}
