package dev.peft4j.train;

/**
 * The learning-rate multiplier at each optimizer step, with a linear warm-up, as Hugging Face's
 * {@code get_linear_schedule_with_warmup} and {@code get_cosine_schedule_with_warmup} define it:
 * <pre>
 *   step &lt; warmup:  step / warmup
 *   afterwards:     CONSTANT 1 · LINEAR (total − step) / (total − warmup) · COSINE ½(1 + cos(π · progress))
 *                   with progress = (step − warmup) / (total − warmup)
 * </pre>
 * {@code step} counts optimizer steps from 0.
 */
public enum LearningRateSchedule {
  CONSTANT,
  LINEAR,
  COSINE;

  /** The multiplier of the peak learning rate at optimizer step {@code step} (0-based) of {@code total}. */
  public double factor(int step, int warmup, int total) {
    if (step < warmup) {
      return (double) step / Math.max(1, warmup);
    }
    double progress = (double) (step - warmup) / Math.max(1, total - warmup);
    return switch (this) {
      case CONSTANT -> 1.0;
      case LINEAR -> Math.max(0.0, 1.0 - progress);
      case COSINE -> Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * progress)));
    };
  }
}
