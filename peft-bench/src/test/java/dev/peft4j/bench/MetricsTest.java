package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * Accuracy, macro-F1, positive-class F1, ROC AUC and the majority baseline against values computed by hand, and AUC
 * against its pairwise definition.
 */
class MetricsTest {

  private static double[][] binary(double... p1) {
    double[][] p = new double[p1.length][];
    for (int i = 0; i < p1.length; i++) {
      p[i] = new double[] {1 - p1[i], p1[i]};
    }
    return p;
  }

  @Test
  void binaryAgainstHandComputedValues() {
    int[] labels = {1, 0, 1, 1, 0, 0};
    // predicted 1,1,1,0,0,0: TP 2 (rows 0, 2), FP 1 (row 1), FN 1 (row 3), correct rows 0, 2, 4, 5
    // AUC: positives 0.9, 0.7, 0.3 vs negatives 0.8, 0.2, 0.3 → pairs won 3 + 2 + 1.5 (a tie) = 6.5 of 9
    Metrics.Scores s = Metrics.of(labels, binary(0.9, 0.8, 0.7, 0.3, 0.2, 0.3), 1);
    assertEquals(4.0 / 6, s.accuracy(), 1e-12);
    assertEquals(2.0 * 2 / (2 * 2 + 1 + 1), s.positiveF1(), 1e-12);
    // class 0: predicted rows 3, 4, 5; TP 2 (rows 4, 5), FP 1 (row 3), FN 1 (row 1) → 2/3 as well
    assertEquals(2.0 / 3, s.macroF1(), 1e-12);
    assertEquals(6.5 / 9, s.rocAuc(), 1e-12);
  }

  @Test
  void aucIsOneForAPerfectRankingZeroForAnInvertedOneAndHalfForConstantScores() {
    int[] labels = {0, 0, 1, 1};
    assertEquals(1.0, Metrics.rocAuc(labels, new double[] {0.1, 0.2, 0.3, 0.4}, 1), 0);
    assertEquals(0.0, Metrics.rocAuc(labels, new double[] {0.4, 0.3, 0.2, 0.1}, 1), 0);
    assertEquals(0.5, Metrics.rocAuc(labels, new double[] {0.5, 0.5, 0.5, 0.5}, 1), 0);
    assertTrue(Double.isNaN(Metrics.rocAuc(new int[] {1, 1}, new double[] {0.2, 0.3}, 1)));
  }

  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = {1, 2, 3})
  void rankAucEqualsPairwiseCount(long seed) {
    Random random = new Random(seed);
    int n = 200;
    int[] labels = new int[n];
    double[] scores = new double[n];
    for (int i = 0; i < n; i++) {
      labels[i] = random.nextInt(2);
      scores[i] = Math.round((random.nextDouble() + 0.3 * labels[i]) * 20) / 20.0; // coarse: many ties
    }
    double won = 0;
    long pairs = 0;
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        if (labels[i] == 1 && labels[j] == 0) {
          pairs++;
          won += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
        }
      }
    }
    assertEquals(won / pairs, Metrics.rocAuc(labels, scores, 1), 1e-12);
  }

  @Test
  void multiClassUsesMacroF1AndOneVsRestAuc() {
    int[] labels = {0, 1, 2, 2};
    double[][] p = {{0.7, 0.2, 0.1}, {0.1, 0.3, 0.6}, {0.2, 0.2, 0.6}, {0.1, 0.8, 0.1}};
    // predicted 0, 2, 2, 1: F1 class 0 = 1, class 1 = 0 (TP 0), class 2 = 2·1/(2 + 1 + 1) = 0.5
    // AUC class 0: 0.7 above all → 1; class 1: positive 0.3 vs 0.2, 0.2, 0.8 → 2/3;
    // class 2: positives 0.6, 0.1 vs negatives 0.1, 0.6 → (0.5 + 1 + 0 + 0.5) / 4 = 0.5
    Metrics.Scores s = Metrics.of(labels, p, 2);
    assertEquals(0.5, s.accuracy(), 1e-12);
    assertEquals((1 + 0 + 0.5) / 3, s.macroF1(), 1e-12);
    assertEquals(0.5, s.positiveF1(), 1e-12);
    assertEquals((1 + 2.0 / 3 + 0.5) / 3, s.rocAuc(), 1e-12);
    assertEquals("ROC AUC (macro one-vs-rest)", Metrics.aucName(3));
    assertEquals("ROC AUC", Metrics.aucName(2));
  }

  @Test
  void positiveClassChoosesTheF1AndTheAucScores() {
    // 8 rows, label 1 the majority (6 of 8); the model predicts 1 everywhere but ranks the rows perfectly
    int[] labels = {1, 1, 1, 1, 1, 1, 0, 0};
    double[][] p = binary(0.9, 0.9, 0.8, 0.8, 0.7, 0.7, 0.6, 0.55);
    Metrics.Scores asOne = Metrics.of(labels, p, 1);
    Metrics.Scores asZero = Metrics.of(labels, p, 0);
    assertEquals(2.0 * 6 / (2 * 6 + 2), asOne.positiveF1(), 1e-12); // TP 6, FP 2: 12/14
    assertEquals(0.0, asZero.positiveF1(), 0);                       // class 0 is never predicted
    assertEquals((12.0 / 14 + 0) / 2, asOne.macroF1(), 1e-12);
    assertEquals(asOne.macroF1(), asZero.macroF1(), 0);
    assertEquals(1.0, asOne.rocAuc(), 0);
    assertEquals(1.0, asZero.rocAuc(), 0); // p[0] ranks the zeros first: the same ranking seen from class 0
  }

  @Test
  void majorityBaselinePredictsTheTrainingMajorityAndRanksNothing() {
    int[] train = {0, 1, 1, 1, 2};
    double[][] p = Metrics.majorityBaseline(train, 3, 4);
    assertEquals(4, p.length);
    for (double[] row : p) {
      assertArrayEquals(new double[] {0.2, 0.6, 0.2}, row, 1e-12);
    }
    int[] test = {1, 1, 0, 2};
    Metrics.Scores s = Metrics.of(test, p, 0);
    assertEquals(0.5, s.accuracy(), 0);
    // class 1: TP 2, FP 2 → 4/6; classes 0 and 2 never predicted → 0
    assertEquals((4.0 / 6) / 3, s.macroF1(), 1e-12);
    assertEquals(0.0, s.positiveF1(), 0);
    assertEquals(0.5, s.rocAuc(), 0); // constant scores: every pair a tie
    // a tie between the most frequent labels goes to the smaller index, as argmax does
    Metrics.Scores tie = Metrics.of(new int[] {0, 1}, Metrics.majorityBaseline(new int[] {1, 0}, 2, 2), 1);
    assertEquals(0.5, tie.accuracy(), 0);
    assertEquals(0.0, tie.positiveF1(), 0);
  }

  @Test
  void badInputIsNamed() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Metrics.of(new int[] {0, 2}, binary(0.1, 0.2), 1));
    assertEquals("label 2 of row 1 is outside [0, 2)", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> Metrics.of(new int[] {0}, binary(0.1, 0.2), 1));
    assertEquals("1 labels but 2 rows of probabilities", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> Metrics.of(new int[] {0}, binary(0.1), 2));
    assertEquals("positive class 2 is outside [0, 2)", e.getMessage());
  }
}
