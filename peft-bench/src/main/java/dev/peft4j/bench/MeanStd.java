package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.Arrays;
import java.util.Locale;

/**
 * The mean and sample standard deviation of one metric over seeds.
 *
 * <pre>
 *   mean = Σ xᵢ / n        std = √( Σ (xᵢ − mean)² / (n − 1) )     (NaN for n = 1: one run has no spread)
 * </pre>
 * NaN values (an undefined ROC AUC) make the mean and std NaN: they are not skipped, so a reader sees them.
 *
 * @param mean the mean
 * @param std  the sample standard deviation (n − 1 in the denominator), NaN when n = 1
 * @param n    how many values
 */
public record MeanStd(double mean, double std, int n) {

  /** @throws IllegalArgumentException if there are no values */
  public static MeanStd of(double... values) {
    checkArgument(values.length > 0, "no values");
    double mean = Arrays.stream(values).sum() / values.length;
    if (values.length == 1) {
      return new MeanStd(mean, Double.NaN, 1);
    }
    double squares = Arrays.stream(values).map(v -> (v - mean) * (v - mean)).sum();
    return new MeanStd(mean, Math.sqrt(squares / (values.length - 1)), values.length);
  }

  /** {@code 0.9123 ± 0.0040} over several values; the value alone for one. */
  public String format(int decimals) {
    String f = "%." + decimals + "f";
    if (Double.isNaN(mean)) {
      return "n/a";
    }
    return n == 1 ? String.format(Locale.ROOT, f, mean) : String.format(Locale.ROOT, f + " ± " + f, mean, std);
  }
}
