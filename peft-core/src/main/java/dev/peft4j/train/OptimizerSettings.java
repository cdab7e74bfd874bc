package dev.peft4j.train;

import static com.google.common.base.Preconditions.checkArgument;

import java.io.Serializable;
import java.util.List;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The optimizer's settings every trainer shares: AdamW's hyper-parameters, the learning-rate schedule and gradient
 * clipping. One optimizer step with the gradient {@code g} of the trainable parameters {@code p}, at step {@code t}
 * (1-based) of {@code T}:
 * <pre>
 *   g  ← g · maxGradNorm / (‖g‖₂ + 10⁻⁶)   if ‖g‖₂ &gt; maxGradNorm &gt; 0     (‖g‖₂ over all parameters)
 *   lr = learningRate · schedule.factor(t − 1, warmupSteps, T)      ({@link LearningRateSchedule})
 *   p  ← p · (1 − lr·weightDecay)
 *   m  ← β₁m + (1 − β₁)g        v ← β₂v + (1 − β₂)g²
 *   p  ← p − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)              ({@link AdamW}, as torch.optim.AdamW)
 * </pre>
 * Defaults ({@link #DEFAULTS}) as Hugging Face's Trainer, but for the learning rate: 1e-3, no weight decay,
 * β = (0.9, 0.999), ε = 1e-8, no warm-up, {@link LearningRateSchedule#LINEAR} decay, clipping at norm 1.0.
 * Serializable, so that distributed trainers can ship it to their workers.
 *
 * @param learningRate peak learning rate, &gt; 0 and finite
 * @param weightDecay decoupled weight decay λ, &gt;= 0 and finite
 * @param beta1 Adam's β₁, in [0, 1)
 * @param beta2 Adam's β₂, in [0, 1)
 * @param epsilon Adam's ε, &gt; 0
 * @param warmupSteps steps of linear warm-up from 0 to the peak learning rate, &gt;= 0
 * @param schedule decay after warm-up, not null
 * @param maxGradNorm global L2 norm the gradients are clipped to, &gt;= 0; 0 turns clipping off
 */
public record OptimizerSettings(double learningRate, double weightDecay, double beta1, double beta2, double epsilon,
    int warmupSteps, LearningRateSchedule schedule, double maxGradNorm) implements Serializable {

  /** The defaults of every trainer's builder. */
  public static final OptimizerSettings DEFAULTS =
      new OptimizerSettings(1e-3, 0, 0.9, 0.999, 1e-8, 0, LearningRateSchedule.LINEAR, 1.0);

  /** @throws IllegalArgumentException naming the value out of its range */
  public OptimizerSettings {
    checkLearningRate(learningRate);
    checkWeightDecay(weightDecay);
    checkBetas(beta1, beta2);
    checkEpsilon(epsilon);
    checkWarmupSteps(warmupSteps);
    checkArgument(schedule != null, "schedule must not be null");
    checkMaxGradNorm(maxGradNorm);
  }

  /** The scheduled learning rate of optimizer step {@code step} (1-based) of {@code steps}. */
  public double learningRate(int step, int steps) {
    return learningRate * schedule.factor(step - 1, warmupSteps, steps);
  }

  /** A fresh AdamW (zero moments) for {@code parameters}, variables of {@code sd}, with these β₁, β₂, ε and λ. */
  public AdamW adamW(SameDiff sd, List<String> parameters) {
    return new AdamW(sd, parameters, beta1, beta2, epsilon, weightDecay);
  }

  // each range checked in one place: here and by TrainerBuilder's setters, which fail as soon as a value is given

  static void checkLearningRate(double lr) {
    checkArgument(lr > 0 && Double.isFinite(lr), "learning rate must be > 0 and finite, got %s", lr);
  }

  static void checkWeightDecay(double wd) {
    checkArgument(wd >= 0 && Double.isFinite(wd), "weight decay must be >= 0, got %s", wd);
  }

  static void checkBetas(double b1, double b2) {
    checkArgument(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1, "betas must be in [0, 1), got (%s, %s)", b1, b2);
  }

  static void checkEpsilon(double eps) {
    checkArgument(eps > 0, "epsilon must be > 0, got %s", eps);
  }

  static void checkWarmupSteps(int warmup) {
    checkArgument(warmup >= 0, "warm-up steps must be >= 0, got %s", warmup);
  }

  static void checkMaxGradNorm(double norm) {
    checkArgument(norm >= 0, "max grad norm must be >= 0, got %s", norm);
  }
}
