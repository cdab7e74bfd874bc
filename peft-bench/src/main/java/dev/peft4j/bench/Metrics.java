package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * Classification metrics from labels and predicted class probabilities {@code [n][k]}.
 *
 * <pre>
 *   accuracy = mean(argmax(p) == y)
 *   F1       = 2·TP / (2·TP + FP + FN) of class 1 when k = 2; the mean over classes (macro F1) when k &gt; 2
 *   ROC AUC  = (Σ ranks of the positives − n₊(n₊+1)/2) / (n₊·n₋)       ranks 1..n of the scores, ties averaged
 *              (Mann–Whitney U; equals the area under the ROC curve, ties counted one half); scores p[·][1] when
 *              k = 2; the mean of the one-vs-rest AUCs when k &gt; 2
 * </pre>
 * A class with no positive (or no negative) example has no AUC: the result is then NaN.
 */
public final class Metrics {

  private Metrics() {}

  /** Accuracy, F1 and ROC AUC of one evaluation. */
  public record Scores(double accuracy, double f1, double rocAuc) {}

  /**
   * @throws IllegalArgumentException if the lengths differ, the set is empty, or a label is outside {@code [0, k)}
   */
  public static Scores of(int[] labels, double[][] probabilities) {
    checkArgument(labels.length == probabilities.length, "%s labels but %s rows of probabilities", labels.length,
        probabilities.length);
    checkArgument(labels.length > 0, "no examples");
    int k = probabilities[0].length;
    for (int i = 0; i < labels.length; i++) {
      checkArgument(probabilities[i].length == k, "row %s has %s probabilities, row 0 has %s", i,
          probabilities[i].length, k);
      checkArgument(labels[i] >= 0 && labels[i] < k, "label %s of row %s is outside [0, %s)", labels[i], i, k);
    }
    int[] predicted = Arrays.stream(probabilities).mapToInt(Metrics::argMax).toArray();
    double accuracy = IntStream.range(0, labels.length).filter(i -> predicted[i] == labels[i]).count()
        / (double) labels.length;
    double f1;
    double auc;
    if (k == 2) {
      f1 = f1(labels, predicted, 1);
      auc = rocAuc(labels, column(probabilities, 1), 1);
    } else {
      f1 = IntStream.range(0, k).mapToDouble(c -> f1(labels, predicted, c)).average().orElseThrow();
      auc = IntStream.range(0, k).mapToDouble(c -> rocAuc(labels, column(probabilities, c), c)).average()
          .orElseThrow();
    }
    return new Scores(accuracy, f1, auc);
  }

  /** F1 of class {@code positive}; 0 when it is never predicted and never true (no TP, FP or FN gives 0/0). */
  public static double f1(int[] labels, int[] predicted, int positive) {
    checkArgument(labels.length == predicted.length, "%s labels but %s predictions", labels.length,
        predicted.length);
    long tp = 0;
    long fp = 0;
    long fn = 0;
    for (int i = 0; i < labels.length; i++) {
      boolean isPositive = labels[i] == positive;
      boolean saysPositive = predicted[i] == positive;
      tp += isPositive && saysPositive ? 1 : 0;
      fp += !isPositive && saysPositive ? 1 : 0;
      fn += isPositive && !saysPositive ? 1 : 0;
    }
    return tp == 0 ? 0 : 2.0 * tp / (2.0 * tp + fp + fn);
  }

  /** ROC AUC of {@code scores} for class {@code positive} by rank statistics (ties get their mean rank). */
  public static double rocAuc(int[] labels, double[] scores, int positive) {
    checkArgument(labels.length == scores.length, "%s labels but %s scores", labels.length, scores.length);
    int n = labels.length;
    Integer[] order = IntStream.range(0, n).boxed().toArray(Integer[]::new);
    Arrays.sort(order, Comparator.comparingDouble(i -> scores[i]));
    double[] ranks = new double[n];
    for (int start = 0; start < n; ) {
      int end = start;
      while (end + 1 < n && scores[order[end + 1]] == scores[order[start]]) {
        end++;
      }
      double mean = (start + end) / 2.0 + 1;       // ranks start + 1 … end + 1, averaged
      for (int j = start; j <= end; j++) {
        ranks[order[j]] = mean;
      }
      start = end + 1;
    }
    long positives = 0;
    double rankSum = 0;
    for (int i = 0; i < n; i++) {
      if (labels[i] == positive) {
        positives++;
        rankSum += ranks[i];
      }
    }
    long negatives = n - positives;
    if (positives == 0 || negatives == 0) {
      return Double.NaN;
    }
    return (rankSum - positives * (positives + 1) / 2.0) / ((double) positives * negatives);
  }

  private static double[] column(double[][] p, int c) {
    return Arrays.stream(p).mapToDouble(row -> row[c]).toArray();
  }

  private static int argMax(double[] row) {
    int best = 0;
    for (int i = 1; i < row.length; i++) {
      if (row[i] > row[best]) {
        best = i;
      }
    }
    return best;
  }
}
