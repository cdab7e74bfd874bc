package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * Classification metrics from labels and predicted class probabilities {@code [n][k]}.
 *
 * <pre>
 *   accuracy    = mean(argmax(p) == y)
 *   F1(c)       = 2·TP / (2·TP + FP + FN) of class c (0 when c is neither true nor predicted anywhere)
 *   macro-F1    = mean over the k classes of F1(c)
 *   positive F1 = F1(positive): the class the caller names (compare: --positive-label, default the minority class)
 *   ROC AUC     = (Σ ranks of the positives − n₊(n₊+1)/2) / (n₊·n₋)       ranks 1..n of the scores, ties averaged
 *                 (Mann–Whitney U; equals the area under the ROC curve, ties counted one half). k = 2: scores
 *                 p[·][positive]; k &gt; 2: the macro one-vs-rest mean of the k classes' AUCs ({@link #aucName}).
 * </pre>
 * A class with no positive (or no negative) example has no AUC: the result is then NaN.
 */
public final class Metrics {

  private Metrics() {}

  /** Accuracy, macro-F1, F1 of the positive class and ROC AUC of one evaluation. */
  public record Scores(double accuracy, double macroF1, double positiveF1, double rocAuc) {}

  /** What {@link Scores#rocAuc} is for {@code k} classes. */
  public static String aucName(int k) {
    return k == 2 ? "ROC AUC" : "ROC AUC (macro one-vs-rest)";
  }

  /**
   * @throws IllegalArgumentException if the lengths differ, the set is empty, a label or {@code positive} is outside
   *     {@code [0, k)}
   */
  public static Scores of(int[] labels, double[][] probabilities, int positive) {
    checkArgument(labels.length == probabilities.length, "%s labels but %s rows of probabilities", labels.length,
        probabilities.length);
    checkArgument(labels.length > 0, "no examples");
    int k = probabilities[0].length;
    checkArgument(positive >= 0 && positive < k, "positive class %s is outside [0, %s)", positive, k);
    for (int i = 0; i < labels.length; i++) {
      checkArgument(probabilities[i].length == k, "row %s has %s probabilities, row 0 has %s", i,
          probabilities[i].length, k);
      checkArgument(labels[i] >= 0 && labels[i] < k, "label %s of row %s is outside [0, %s)", labels[i], i, k);
    }
    int[] predicted = Arrays.stream(probabilities).mapToInt(Metrics::argMax).toArray();
    double accuracy = IntStream.range(0, labels.length).filter(i -> predicted[i] == labels[i]).count()
        / (double) labels.length;
    double macroF1 = IntStream.range(0, k).mapToDouble(c -> f1(labels, predicted, c)).average().orElseThrow();
    double auc = k == 2 ? rocAuc(labels, column(probabilities, positive), positive)
        : IntStream.range(0, k).mapToDouble(c -> rocAuc(labels, column(probabilities, c), c)).average()
            .orElseThrow();
    return new Scores(accuracy, macroF1, f1(labels, predicted, positive), auc);
  }

  /**
   * The majority-class baseline: every row gets the class frequencies of {@code trainLabels} as its probabilities,
   * so it predicts the training split's most frequent class (ties: the smaller index) and ranks nothing (ROC AUC 0.5
   * when both classes are present).
   */
  public static double[][] majorityBaseline(int[] trainLabels, int k, int rows) {
    checkArgument(trainLabels.length > 0, "no training labels");
    double[] frequency = new double[k];
    for (int y : trainLabels) {
      checkArgument(y >= 0 && y < k, "label %s is outside [0, %s)", y, k);
      frequency[y] += 1.0 / trainLabels.length;
    }
    double[][] out = new double[rows][];
    Arrays.fill(out, frequency);
    return out;
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
