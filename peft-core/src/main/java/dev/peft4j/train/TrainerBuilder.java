package dev.peft4j.train;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

/**
 * The options every trainer's builder shares ({@link Trainer}'s, peft-spark's {@code SparkTrainer}'s): the number of
 * optimizer steps, the {@link OptimizerSettings} and the dropout seed, each settable once. Self-typed, so that a
 * trainer's own options chain in any order:
 * {@code Trainer.builder(model).learningRate(3e-4).gradientAccumulation(2).steps(100)}.
 *
 * @param <B> the builder itself
 */
public abstract class TrainerBuilder<B extends TrainerBuilder<B>> {

  private int steps = -1;
  private double learningRate = Double.NaN;
  private double weightDecay = Double.NaN;
  private double beta1 = Double.NaN;
  private double beta2 = Double.NaN;
  private double epsilon = Double.NaN;
  private int warmupSteps = -1;
  private LearningRateSchedule schedule;
  private double maxGradNorm = Double.NaN;
  private Long seed;

  protected TrainerBuilder() {}

  /** Optimizer steps to run (required, &gt; 0). */
  public B steps(int steps) {
    checkState(this.steps == -1, "steps was already set to %s", this.steps);
    checkArgument(steps > 0, "steps must be > 0, got %s", steps);
    this.steps = steps;
    return self();
  }

  /** Peak learning rate; default 1e-3. */
  public B learningRate(double lr) {
    checkState(Double.isNaN(learningRate), "learning rate was already set to %s", learningRate);
    OptimizerSettings.checkLearningRate(lr);
    this.learningRate = lr;
    return self();
  }

  /** Decoupled weight decay λ; default 0. */
  public B weightDecay(double wd) {
    checkState(Double.isNaN(weightDecay), "weight decay was already set to %s", weightDecay);
    OptimizerSettings.checkWeightDecay(wd);
    this.weightDecay = wd;
    return self();
  }

  /** Adam's β₁ and β₂; default 0.9 and 0.999. */
  public B betas(double b1, double b2) {
    checkState(Double.isNaN(beta1), "betas were already set to (%s, %s)", beta1, beta2);
    OptimizerSettings.checkBetas(b1, b2);
    this.beta1 = b1;
    this.beta2 = b2;
    return self();
  }

  /** Adam's ε; default 1e-8. */
  public B epsilon(double eps) {
    checkState(Double.isNaN(epsilon), "epsilon was already set to %s", epsilon);
    OptimizerSettings.checkEpsilon(eps);
    this.epsilon = eps;
    return self();
  }

  /** Steps of linear warm-up from 0 to the peak learning rate; default 0. */
  public B warmupSteps(int warmup) {
    checkState(warmupSteps == -1, "warm-up steps were already set to %s", warmupSteps);
    OptimizerSettings.checkWarmupSteps(warmup);
    this.warmupSteps = warmup;
    return self();
  }

  /** Decay after warm-up; default {@link LearningRateSchedule#LINEAR}, as Hugging Face's Trainer. */
  public B schedule(LearningRateSchedule s) {
    checkState(schedule == null, "schedule was already set to %s", schedule);
    checkArgument(s != null, "schedule must not be null");
    this.schedule = s;
    return self();
  }

  /** Clip gradients to this global L2 norm; 0 turns clipping off; default 1.0, as Hugging Face's Trainer. */
  public B maxGradNorm(double norm) {
    checkState(Double.isNaN(maxGradNorm), "max grad norm was already set to %s", maxGradNorm);
    OptimizerSettings.checkMaxGradNorm(norm);
    this.maxGradNorm = norm;
    return self();
  }

  /**
   * Seed of the dropout masks (each step, micro-batch, data-parallel shard and module draws its own, reproducibly);
   * default 42.
   */
  public B seed(long s) {
    checkState(seed == null, "seed was already set to %s", seed);
    this.seed = s;
    return self();
  }

  /**
   * The steps given.
   *
   * @throws IllegalStateException if they were not set
   */
  protected final int steps() {
    checkState(steps > 0, "steps must be set");
    return steps;
  }

  /**
   * The settings given, the others at their {@link OptimizerSettings#DEFAULTS}.
   *
   * @throws IllegalStateException if the steps were not set, or the warm-up is longer than the run
   */
  protected final OptimizerSettings optimizerSettings() {
    int total = steps();
    OptimizerSettings d = OptimizerSettings.DEFAULTS;
    int warmup = warmupSteps == -1 ? d.warmupSteps() : warmupSteps;
    checkState(warmup <= total, "warm-up steps (%s) exceed steps (%s)", warmup, total);
    return new OptimizerSettings(Double.isNaN(learningRate) ? d.learningRate() : learningRate,
        Double.isNaN(weightDecay) ? d.weightDecay() : weightDecay,
        Double.isNaN(beta1) ? d.beta1() : beta1, Double.isNaN(beta1) ? d.beta2() : beta2,
        Double.isNaN(epsilon) ? d.epsilon() : epsilon, warmup, schedule == null ? d.schedule() : schedule,
        Double.isNaN(maxGradNorm) ? d.maxGradNorm() : maxGradNorm);
  }

  /** The seed given, or 42. */
  protected final long seed() {
    return seed == null ? 42L : seed;
  }

  @SuppressWarnings("unchecked")
  protected final B self() {
    return (B) this;
  }
}
