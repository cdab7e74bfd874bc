package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class LearningRateScheduleTest {

  @Test
  void warmupRisesLinearlyFromZero() {
    for (LearningRateSchedule s : LearningRateSchedule.values()) {
      assertEquals(0.0, s.factor(0, 4, 10), 1e-12);
      assertEquals(0.5, s.factor(2, 4, 10), 1e-12);
      assertEquals(1.0, s.factor(4, 4, 10), 1e-12);
    }
  }

  @Test
  void linearDecaysToZero() {
    assertEquals(0.5, LearningRateSchedule.LINEAR.factor(7, 4, 10), 1e-12);
    assertEquals(0.0, LearningRateSchedule.LINEAR.factor(10, 4, 10), 1e-12);
  }

  @Test
  void cosineFollowsHalfACosine() {
    assertEquals(0.5, LearningRateSchedule.COSINE.factor(7, 4, 10), 1e-12);
    assertEquals(0.5 * (1 + Math.cos(Math.PI / 6)), LearningRateSchedule.COSINE.factor(5, 4, 10), 1e-12);
    assertEquals(0.0, LearningRateSchedule.COSINE.factor(10, 4, 10), 1e-12);
  }

  @Test
  void constantStaysAtOne() {
    assertEquals(1.0, LearningRateSchedule.CONSTANT.factor(9, 0, 10), 1e-12);
  }
}
