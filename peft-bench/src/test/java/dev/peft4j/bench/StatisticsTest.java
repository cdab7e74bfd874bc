package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.bench.TextClassificationData.Example;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The protocol's statistics with known answers: stratified samples and mean ± sample std. */
class StatisticsTest {

  /** {@code counts[c]} rows of label c, sorted by label (as a file sorted by label or date would be). */
  private static List<Example> sorted(int... counts) {
    List<Example> rows = new ArrayList<>();
    int line = 1;
    for (int c = 0; c < counts.length; c++) {
      for (int i = 0; i < counts[c]; i++) {
        rows.add(new Example("row " + line, c, null, line++));
      }
    }
    return rows;
  }

  private static int[] labelCounts(List<Example> rows, int k) {
    int[] out = new int[k];
    rows.forEach(r -> out[r.label()]++);
    return out;
  }

  @Test
  void stratifiedSampleKeepsEachLabelsShare() {
    List<Example> rows = sorted(70, 30);
    Stratified.Cut cut = Stratified.sample(rows, 10, 5);
    assertArrayEquals(new int[] {7, 3}, labelCounts(cut.sample(), 2));
    assertArrayEquals(new int[] {63, 27}, labelCounts(cut.rest(), 2));
    Set<Integer> lines = new HashSet<>();
    cut.sample().forEach(r -> lines.add(r.line()));
    cut.rest().forEach(r -> lines.add(r.line()));
    assertEquals(100, lines.size(), "sample and rest partition the rows");
    // the first 10 rows of the file are all label 0: the sample is not them
    assertNotEquals(rows.subList(0, 10), cut.sample());
    assertEquals(cut, Stratified.sample(rows, 10, 5), "seeded");
    assertNotEquals(cut.sample(), Stratified.sample(rows, 10, 6).sample());
  }

  @Test
  void leftoverRowsGoToTheLargestRemainders() {
    // 3 labels of 50, 30, 20 rows, sample 7: exact 3.5, 2.1, 1.4 → floors 3, 2, 1 and one leftover to label 0 (0.5)
    assertArrayEquals(new int[] {4, 2, 1}, labelCounts(Stratified.sample(sorted(50, 30, 20), 7, 1).sample(), 3));
    // equal remainders (1/3 each for 1 of 3 equal labels): the smaller label index wins
    assertArrayEquals(new int[] {1, 0, 0}, labelCounts(Stratified.sample(sorted(5, 5, 5), 1, 1).sample(), 3));
    // 99 and 1 rows, sample 10: exact 9.9 and 0.1 → the leftover row goes to the larger remainder, 0.9
    assertArrayEquals(new int[] {10, 0}, Stratified.quotas(2, i -> i == 0 ? 99 : 1, 100, 10));
    assertArrayEquals(new int[] {0, 0}, labelCounts(Stratified.sample(sorted(3, 2), 0, 1).sample(), 2));
    assertArrayEquals(new int[] {3, 2}, labelCounts(Stratified.sample(sorted(3, 2), 5, 1).sample(), 2));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Stratified.sample(sorted(3, 2), 6, 1));
    assertEquals("a sample of 6 rows from 5 is impossible", e.getMessage());
  }

  @Test
  void meanAndSampleStandardDeviation() {
    // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squares 32, sample variance 32/7
    MeanStd m = MeanStd.of(2, 4, 4, 4, 5, 5, 7, 9);
    assertEquals(5.0, m.mean(), 0);
    assertEquals(Math.sqrt(32.0 / 7), m.std(), 1e-12);
    assertEquals(8, m.n());
    assertEquals("5.0000 ± 2.1381", m.format(4));
    MeanStd one = MeanStd.of(0.9);
    assertTrue(Double.isNaN(one.std()), "one value has no spread");
    assertEquals("0.900", one.format(3));
    assertEquals("n/a", MeanStd.of(0.5, Double.NaN).format(2));
    assertEquals("no values", assertThrows(IllegalArgumentException.class, MeanStd::of).getMessage());
  }
}
