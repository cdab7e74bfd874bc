package dev.peft4j.train;

import com.google.common.collect.ImmutableList;
import java.util.List;
import java.util.Map;

/**
 * What a {@link Trainer#fit} run did, step by step.
 *
 * @param steps             one record per optimizer step
 * @param evaluations       what the evaluation callback returned, by step
 * @param updaterStateBytes bytes of optimizer state the run held (two moments per trainable scalar)
 * @param trainedParameters the parameters the run updated
 */
public record TrainingHistory(List<Step> steps, List<Evaluation> evaluations, long updaterStateBytes,
    List<String> trainedParameters) {

  /** One optimizer step: mean micro-batch loss, learning rate, gradient norm before clipping, tokens, seconds. */
  public record Step(int step, double loss, double learningRate, double gradientNorm, long tokens, double seconds) {}

  /** The metrics the evaluation callback returned after {@code step}. */
  public record Evaluation(int step, Map<String, Double> metrics) {}

  public TrainingHistory {
    steps = ImmutableList.copyOf(steps);
    evaluations = ImmutableList.copyOf(evaluations);
    trainedParameters = ImmutableList.copyOf(trainedParameters);
  }

  public double firstLoss() {
    return steps.get(0).loss();
  }

  public double lastLoss() {
    return steps.get(steps.size() - 1).loss();
  }

  /** Mean loss of the first {@code n} steps. */
  public double meanLossOfFirst(int n) {
    return steps.subList(0, Math.min(n, steps.size())).stream().mapToDouble(Step::loss).average().orElse(Double.NaN);
  }

  /** Mean loss of the last {@code n} steps. */
  public double meanLossOfLast(int n) {
    return steps.subList(Math.max(0, steps.size() - n), steps.size()).stream().mapToDouble(Step::loss).average()
        .orElse(Double.NaN);
  }

  /** Tokens per second over the whole run. */
  public double tokensPerSecond() {
    double seconds = steps.stream().mapToDouble(Step::seconds).sum();
    long tokens = steps.stream().mapToLong(Step::tokens).sum();
    return seconds == 0 ? 0 : tokens / seconds;
  }
}
