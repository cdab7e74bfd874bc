package dev.peft4j.bench;

import dev.peft4j.bench.CompareMethods.Method;
import java.util.List;
import java.util.function.ToDoubleFunction;

/**
 * One method's row of a {@link Compare} run: its chosen setting's trials over seeds, scored on the test split. Times,
 * epochs and throughput are means over the seeds; peak memory the largest.
 *
 * @param method             the method's name in {@link CompareMethods}, or {@value #BASELINE}
 * @param description        what it trains
 * @param trainableParams    trainable scalars (adapter and classification head), counted from the arrays
 * @param allParams          all parameters of the base model (with its head), before the method is applied
 * @param trainablePercent   {@code 100 · trainable / all}
 * @param learningRate       the chosen peak learning rate (NaN for the baseline)
 * @param learningRatesTried the rates tried on validation (one without a sweep)
 * @param seeds              trials of the chosen setting
 * @param epochs             epochs run before stopping, mean
 * @param steps              optimizer steps run, mean
 * @param trainSeconds       wall time of training, mean
 * @param evalSeconds        wall time of the final test pass, mean
 * @param tokensPerSecond    real (non-padding) training tokens per second of training, mean
 * @param peakRssBytes       the largest peak resident memory of a trial's JVM; -1 if unknown
 * @param validationLoss     validation cross-entropy of the kept weights, mean
 * @param accuracy           test accuracy over the seeds
 * @param macroF1            test macro-F1 over the seeds (the ranking metric)
 * @param positiveF1         test F1 of the positive label over the seeds
 * @param rocAuc             test ROC AUC over the seeds (macro one-vs-rest for more than two labels)
 * @param adapterDir         the first seed's adapter, relative to the output directory; null for the baseline
 */
public record CompareResult(String method, String description, long trainableParams, long allParams,
    double trainablePercent, double learningRate, List<Double> learningRatesTried, int seeds, double epochs,
    double steps, double trainSeconds, double evalSeconds, double tokensPerSecond, long peakRssBytes,
    double validationLoss, MeanStd accuracy, MeanStd macroF1, MeanStd positiveF1, MeanStd rocAuc,
    String adapterDir) {

  /** The name of the majority-class row. */
  public static final String BASELINE = "majority-class";

  public CompareResult {
    learningRatesTried = List.copyOf(learningRatesTried);
  }

  /** The row of {@code method} from its learning-rate trials' rates and its chosen setting's seeds. */
  static CompareResult of(Method method, List<Double> ratesTried, List<CompareTrial.Result> seeds,
      int[] validationLabels, int[] testLabels, int positive, String adapterDir) {
    CompareTrial.Result first = seeds.get(0);
    List<Metrics.Scores> scores = seeds.stream().map(r -> Metrics.of(testLabels, r.testProbabilities(), positive))
        .toList();
    return new CompareResult(method.name(), method.description(), first.trainableParams(), first.baseParams(),
        100.0 * first.trainableParams() / first.baseParams(), first.learningRate(), ratesTried, seeds.size(),
        mean(seeds, CompareTrial.Result::epochsRun), mean(seeds, CompareTrial.Result::steps),
        mean(seeds, CompareTrial.Result::trainSeconds), mean(seeds, CompareTrial.Result::evalSeconds),
        mean(seeds, CompareTrial.Result::tokensPerSecond),
        seeds.stream().mapToLong(CompareTrial.Result::peakRssBytes).max().orElse(-1),
        mean(seeds, CompareTrial.Result::validationLoss), over(scores, Metrics.Scores::accuracy),
        over(scores, Metrics.Scores::macroF1), over(scores, Metrics.Scores::positiveF1),
        over(scores, Metrics.Scores::rocAuc), adapterDir);
  }

  /** The majority-class row: the training split's class frequencies as every row's probabilities. */
  static CompareResult baseline(List<String> labelNames, int[] trainLabels, int[] validationLabels, int[] testLabels,
      int positive) {
    int k = labelNames.size();
    double[][] test = Metrics.majorityBaseline(trainLabels, k, testLabels.length);
    double[][] validation = Metrics.majorityBaseline(trainLabels, k, validationLabels.length);
    Metrics.Scores s = Metrics.of(testLabels, test, positive);
    int majority = argMax(test.length > 0 ? test[0] : new double[k]);
    return new CompareResult(BASELINE, "always the training split's most frequent label '"
        + labelNames.get(majority) + "'", 0, 0, 0, Double.NaN, List.of(), 1, 0, 0, 0, 0, 0, -1,
        CompareTrial.crossEntropy(validationLabels, validation), MeanStd.of(s.accuracy()), MeanStd.of(s.macroF1()),
        MeanStd.of(s.positiveF1()), MeanStd.of(s.rocAuc()), null);
  }

  /** Whether this is the majority-class row. */
  public boolean isBaseline() {
    return adapterDir == null;
  }

  private static int argMax(double[] row) {
    int best = 0;
    for (int i = 1; i < row.length; i++) {
      best = row[i] > row[best] ? i : best;
    }
    return best;
  }

  private static double mean(List<CompareTrial.Result> seeds, ToDoubleFunction<CompareTrial.Result> f) {
    return seeds.stream().mapToDouble(f).average().orElseThrow();
  }

  private static MeanStd over(List<Metrics.Scores> scores, ToDoubleFunction<Metrics.Scores> f) {
    return MeanStd.of(scores.stream().mapToDouble(f).toArray());
  }
}
