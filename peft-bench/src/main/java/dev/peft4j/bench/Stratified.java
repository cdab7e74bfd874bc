package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.bench.TextClassificationData.Example;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.TreeMap;

/**
 * Stratified random samples: each label keeps its share of the rows, so a sample of a file sorted by label or date
 * still holds every class in proportion.
 *
 * <pre>
 *   quota(c) = ⌊n · count(c) / N⌋, then the n − Σ quota leftover rows go one each to the labels with the largest
 *   remainders n · count(c) / N − quota(c) (ties: the smaller label index)
 * </pre>
 * Within a label, rows are drawn by a shuffle seeded with {@code seed}; the sample is then shuffled with the same
 * seed, so its order does not follow the labels.
 */
final class Stratified {

  /** A sample and the rows left over, both in shuffled order. */
  record Cut(List<Example> sample, List<Example> rest) {}

  private Stratified() {}

  /**
   * {@code n} of {@code rows}, stratified by label.
   *
   * @throws IllegalArgumentException if {@code n} is not in {@code [0, rows.size()]}
   */
  static Cut sample(List<Example> rows, int n, long seed) {
    checkArgument(n >= 0 && n <= rows.size(), "a sample of %s rows from %s is impossible", n, rows.size());
    TreeMap<Integer, List<Example>> byLabel = new TreeMap<>();
    rows.forEach(r -> byLabel.computeIfAbsent(r.label(), k -> new ArrayList<>()).add(r));
    int[] labels = byLabel.keySet().stream().mapToInt(Integer::intValue).toArray();
    int[] quota = quotas(labels.length, i -> byLabel.get(labels[i]).size(), rows.size(), n);
    Random random = new Random(seed);
    List<Example> sample = new ArrayList<>();
    List<Example> rest = new ArrayList<>();
    for (int i = 0; i < labels.length; i++) {
      List<Example> shuffled = new ArrayList<>(byLabel.get(labels[i]));
      Collections.shuffle(shuffled, random);
      sample.addAll(shuffled.subList(0, quota[i]));
      rest.addAll(shuffled.subList(quota[i], shuffled.size()));
    }
    Collections.shuffle(sample, random);
    Collections.shuffle(rest, random);
    return new Cut(List.copyOf(sample), List.copyOf(rest));
  }

  /** Largest-remainder quotas of {@code n} over groups of the given sizes (summing to {@code total}). */
  static int[] quotas(int groups, java.util.function.IntUnaryOperator size, int total, int n) {
    int[] quota = new int[groups];
    double[] remainder = new double[groups];
    int given = 0;
    for (int i = 0; i < groups; i++) {
      double exact = (double) n * size.applyAsInt(i) / total;
      quota[i] = (int) Math.floor(exact);
      remainder[i] = exact - quota[i];
      given += quota[i];
    }
    for (; given < n; given++) {
      int best = -1;
      for (int i = 0; i < groups; i++) {
        if (quota[i] < size.applyAsInt(i) && (best < 0 || remainder[i] > remainder[best])) {
          best = i;
        }
      }
      quota[best]++;
      remainder[best] = -1;
    }
    return quota;
  }
}
