package dev.peft4j.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The logits processing against hand-computed values of transformers' processors. */
class NextTokensTest {

  @Test
  void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOncePerToken() {
    float[] logits = {2, -2, 1, 4};
    NextTokens.penalise(logits, new long[] {0, 1, 0, 0}, 2);
    assertArrayEquals(new float[] {1, -4, 1, 4}, logits);
  }

  @Test
  void topPKeepsTheSmallestSetReachingP() {
    double[] p = {0.5, 0.3, 0.15, 0.05};
    NextTokens.topP(p, 0.7);            // ascending cumsum .05, .20 ≤ 0.3 removed; .50 > 0.3 kept
    assertArrayEquals(new double[] {0.625, 0.375, 0, 0}, p, 1e-12);
    double[] one = {0.9, 0.1};
    NextTokens.topP(one, 0.01);         // the most likely token always stays
    assertArrayEquals(new double[] {1, 0}, one, 1e-12);
  }

  @Test
  void greedyTakesTheFirstLargest() {
    assertEquals(1, NextTokens.argmax(new float[] {0, 3, 3, -1}));
  }

  @Test
  void topKSamplingDrawsOnlyTheKMostLikelyTokensInProportion() {
    long seed = 11;
    System.out.println("topKSamplingDrawsOnlyTheKMostLikelyTokensInProportion: seed " + seed);
    NextTokens next = new NextTokens(GenerationConfig.sampling(1, seed).withTopK(2));
    Map<Long, Integer> counts = new HashMap<>();
    int draws = 4000;
    for (int i = 0; i < draws; i++) {
      float[] logits = {(float) Math.log(0.2), (float) Math.log(0.5), (float) Math.log(0.1), (float) Math.log(0.2)};
      counts.merge(next.choose(logits, new long[0]), 1, Integer::sum);
    }
    // top-2 keeps id 1 (0.5) and both ties at 0.2 (HF keeps ties with the k-th score): 0.5/0.9, 0.2/0.9, 0.2/0.9
    assertEquals(null, counts.get(2L), "id 2 is outside the top k");
    assertEquals(0.5 / 0.9, counts.get(1L) / (double) draws, 0.03);
    assertEquals(0.2 / 0.9, counts.get(0L) / (double) draws, 0.03);
    assertTrue(counts.get(3L) > 0);
  }
}
