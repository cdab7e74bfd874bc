package dev.peft4j.train;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.BackendCheck;
import dev.peft4j.PeftModel;
import dev.peft4j.TrainableParameterSet;
import dev.peft4j.model.ModelInputs;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Trains the trainable set of a {@link PeftModel} and nothing else.
 *
 * <pre>{@code
 * TrainingHistory h = Trainer.builder(model)
 *     .steps(200).learningRate(3e-4).warmupSteps(20).schedule(LearningRateSchedule.COSINE)
 *     .gradientAccumulation(2).maxGradNorm(1.0).seed(7)
 *     .evaluateEvery(50, (step, m) -> Map.of("accuracy", accuracy(m)))
 *     .build()
 *     .fit(batches);
 * }</pre>
 *
 * <p>One optimizer step averages the gradients of {@code gradientAccumulation} micro-batches, clips them to a global L2
 * norm of {@code maxGradNorm}, and applies AdamW with the scheduled learning rate ({@link OptimizerSettings}). The
 * graph must have exactly one loss variable. The data is cycled when it runs out. The model is in training mode
 * (dropout on) while it trains and in inference mode while the evaluation callback runs and after {@code fit} returns.
 * With the same seed, data and initial weights, two runs give the same losses.
 *
 * <p>Options that change how a step runs, each described on its builder method: {@code gradientCheckpointing}
 * ({@link CheckpointedGradients}: less activation memory for about one more forward pass, the same updates),
 * {@code dataParallel} ({@link DataParallel}: shards of each micro-batch on every core, gradients averaged by rows;
 * on by default over all cores, {@code dataParallel(1)} turns it off) and {@code nativeMemoryGuard} ({@link NativeMemoryGuard}, on by default: {@code System.gc()} when resident memory
 * grew by 256 MiB, and once per JVM glibc's {@code mallopt}; both process-wide, turned off by the option or by the
 * system property {@value #MEMORY_GUARD_PROPERTY}{@code =false}).
 */
public final class Trainer {

  /** System property: {@code false} makes {@link Builder#nativeMemoryGuard} default to off. */
  public static final String MEMORY_GUARD_PROPERTY = "peft4j.nativeMemoryGuard";

  /** Called every {@code evaluateEvery} steps and after the last step, with the model in inference mode. */
  @FunctionalInterface
  public interface Evaluator {
    Map<String, Double> evaluate(int step, PeftModel model);
  }

  private final PeftModel model;
  private final int steps;
  private final OptimizerSettings optimizerSettings;
  private final int accumulation;
  private final long seed;
  private final int evaluateEvery;
  private final Evaluator evaluator;
  private final PrintStream progress;
  private final List<StepListener> stepListeners;
  private final boolean checkpointing;
  private final int dataParallel;
  private final boolean workersAuto; // the default: shards of at least two rows (DataParallel.of(sd, n, 2))
  private final boolean memoryGuard;

  private Trainer(Builder b, int steps, OptimizerSettings optimizerSettings) {
    this.model = b.model;
    this.steps = steps;
    this.optimizerSettings = optimizerSettings;
    this.accumulation = b.accumulation;
    this.seed = b.seed();
    this.evaluateEvery = b.evaluateEvery;
    this.evaluator = b.evaluator;
    this.progress = b.progress;
    this.stepListeners = List.copyOf(b.stepListeners);
    this.checkpointing = Boolean.TRUE.equals(b.checkpointing);
    this.dataParallel = b.dataParallel;
    this.workersAuto = b.workersAuto;
    this.memoryGuard = b.memoryGuard;
  }

  /** The data-parallel workers {@link #fit} runs each micro-batch on (1: none). */
  int dataParallelWorkers() {
    return dataParallel;
  }

  /** Whether {@link #fit} runs a {@link NativeMemoryGuard}. */
  boolean nativeMemoryGuard() {
    return memoryGuard;
  }

  /**
   * Runs {@code steps} optimizer steps over {@code data} (cycled). Holds the model's exclusive access
   * ({@link PeftModel#exclusive()}) for the whole run: other threads' {@code output} calls and changes wait until it
   * returns (the evaluation callback runs on this thread and may call the model; it must not wait for other threads
   * that do).
   *
   * @throws IllegalStateException if nothing is trainable (every adapter disabled or merged), the graph does not
   *     have exactly one loss variable, or gradient checkpointing is on and the graph declares no layer outputs
   * @throws IllegalArgumentException if {@code data} is empty
   */
  public TrainingHistory fit(Iterable<Batch> data) {
    // for the whole run rather than per step: between steps the model is in training mode (dropout on), which no
    // other thread's inference should see
    try (var exclusive = model.exclusive()) {
      return fitExclusively(data);
    }
  }

  private TrainingHistory fitExclusively(Iterable<Batch> data) {
    SameDiff sd = model.sameDiff();
    TrainableParameterSet trainable = model.trainableParameters();
    checkState(!trainable.isEmpty(), "nothing to train: every adapter is disabled or merged (%s)", model);
    List<String> losses = sd.getLossVariables();
    checkState(losses.size() == 1, "the graph needs exactly one loss variable, has %s", losses);
    String loss = losses.get(0);
    checkArgument(data.iterator().hasNext(), "no training data");
    CheckpointedGradients checkpointed = checkpointing ? CheckpointedGradients.atLayers(sd) : null;

    List<String> names = trainable.names();
    // the adapters' listeners first, so that the caller's see their result
    List<StepListener> listeners = new ArrayList<>(model.activeAdapters().stream().map(model::adapter)
        .filter(StepListener.class::isInstance).map(StepListener.class::cast).toList());
    listeners.addAll(stepListeners);
    AdamW optimizer = optimizerSettings.adamW(sd, names);
    ProgressBar bar = progress == null ? null : new ProgressBar(progress, steps, System.console() != null);
    List<TrainingHistory.Step> history = new ArrayList<>();
    List<TrainingHistory.Evaluation> evaluations = new ArrayList<>();
    long[] microBatch = {0}; // counts the micro-batches: it seeds each one's random ops
    var cursor = new Object() { Iterator<Batch> batches = data.iterator(); }; // cycles through the data
    // the steps run through Gradients; without the guard nothing here touches the allocator or the collector
    NativeMemoryGuard memory = memoryGuard ? NativeMemoryGuard.forReusingSteps() : null;
    model.train();
    try (var seeding = RandomOps.seed(sd, () -> seed * 0x9E3779B97F4A7C15L + microBatch[0]);
        DataParallel parallel = dataParallel > 1 ? DataParallel.of(sd, dataParallel, workersAuto ? 2 : 1) : null) {
      for (int step = 1; step <= steps; step++) {
        long start = System.nanoTime();
        if (checkpointed == null && parallel == null) { // segments and replicas build their own gradient functions
          GradientFunction.prepare(sd); // again after an evaluation, whose mode switch rewires the graph
        }
        StepGradients g = StepGradients.accumulate(accumulation, names, loss, optimizerSettings.maxGradNorm(), () -> {
          if (!cursor.batches.hasNext()) {
            cursor.batches = data.iterator();
          }
          microBatch[0]++;
          return cursor.batches.next();
        }, batch -> lossAndGradients(sd, batch, loss, names, checkpointed, parallel), memory);
        double lr = optimizerSettings.learningRate(step, steps);
        optimizer.step(g.gradients(), lr); // leaves the gradients as they are
        Map<String, INDArray> view = Collections.unmodifiableMap(g.gradients());
        for (StepListener l : listeners) {
          l.afterStep(step, view);
        }
        StepGradients.free(g.gradients().values()); // the listeners' gradients are valid during their call only
        history.add(new TrainingHistory.Step(step, g.meanLoss(), lr, g.norm(), g.tokens(),
            (System.nanoTime() - start) / 1e9));
        if (bar != null) {
          bar.update(step, g.meanLoss(), g.tokens());
        }
        if (evaluator != null && (step % evaluateEvery == 0 || step == steps)) {
          model.eval();
          evaluations.add(new TrainingHistory.Evaluation(step, Map.copyOf(evaluator.evaluate(step, model))));
          model.train();
        }
      }
    } finally {
      model.eval();
    }
    return new TrainingHistory(history, evaluations, optimizer.stateBytes(), optimizer.parameters());
  }

  /** One micro-batch's loss and gradients: through checkpointed segments, data-parallel replicas, or in one pass. */
  private static OutAndGrad lossAndGradients(SameDiff sd, Batch batch, String loss, List<String> names,
      CheckpointedGradients checkpointed, DataParallel parallel) {
    Map<String, INDArray> inputs = ModelInputs.complete(sd, batch.inputs()); // transformers' defaults, length check
    if (checkpointed != null) {
      return checkpointed.compute(inputs, loss, names);
    }
    if (parallel != null) {
      return parallel.gradients(inputs, loss, names);
    }
    return Gradients.of(sd, inputs, List.of(loss), names);
  }

  /**
   * The options of a trainer for {@code model}, which must not be null; {@link Builder#steps} is required.
   *
   * @throws IllegalStateException naming the ND4J backend artifacts to add, if none is on the classpath
   *     ({@link BackendCheck})
   */
  public static Builder builder(PeftModel model) {
    return new Builder(model);
  }

  /**
   * Options of a {@link Trainer}, made by {@link #builder}; each can be set once. The steps, the seed and the
   * optimizer's options are {@link TrainerBuilder}'s.
   */
  public static final class Builder extends TrainerBuilder<Builder> {
    private final PeftModel model;
    private int accumulation = -1;
    private int evaluateEvery = -1;
    private Evaluator evaluator;
    private PrintStream progress;
    private boolean progressSet;
    private final List<StepListener> stepListeners = new ArrayList<>();
    private Boolean checkpointing;
    private int dataParallel = -1;
    private boolean workersAuto;
    private Boolean memoryGuard;

    private Builder(PeftModel model) {
      checkArgument(model != null, "model must not be null");
      BackendCheck.requireBackend();
      this.model = model;
    }

    /** Micro-batches per optimizer step; default 1. */
    public Builder gradientAccumulation(int microBatches) {
      checkState(accumulation == -1, "gradient accumulation was already set to %s", accumulation);
      checkArgument(microBatches > 0, "gradient accumulation must be > 0, got %s", microBatches);
      this.accumulation = microBatches;
      return this;
    }

    /** Calls {@code evaluator} every {@code everySteps} steps and after the last one. */
    public Builder evaluateEvery(int everySteps, Evaluator eval) {
      checkState(evaluator == null, "an evaluator was already set");
      checkArgument(everySteps > 0, "evaluation interval must be > 0, got %s", everySteps);
      checkArgument(eval != null, "evaluator must not be null");
      this.evaluateEvery = everySteps;
      this.evaluator = eval;
      return this;
    }

    /** Where the progress bar goes; {@code null} for none; default standard error. */
    public Builder progress(PrintStream out) {
      checkState(!progressSet, "progress output was already set");
      this.progress = out;
      this.progressSet = true;
      return this;
    }

    /**
     * Also calls {@code listener} after every optimizer step, after the active adapters that are listeners
     * themselves (AdaLoRA); may be called several times.
     */
    public Builder onStep(StepListener listener) {
      checkArgument(listener != null, "step listener must not be null");
      stepListeners.add(listener);
      return this;
    }

    /**
     * Gradient checkpointing (default off): keep only the hidden state after every k-th layer (k = round(√layers))
     * during the forward pass and recompute each segment's activations in the backward pass, trading about one more
     * forward pass per step for activation memory; worth it at long sequences or large batches.
     */
    public Builder gradientCheckpointing(boolean on) {
      checkState(checkpointing == null, "gradient checkpointing was already set to %s", checkpointing);
      this.checkpointing = on;
      return this;
    }

    /**
     * Data parallelism over {@code workers} cores: each micro-batch is split row-wise into that many shards (at most
     * one per row), which run forward and backward at the same time with single-threaded ops, and their gradients are
     * averaged by rows ({@link DataParallel}); 1 turns it off. Worth it on machines with few cores, where ND4J's
     * per-op threading leaves them idle between ops. Default: every core ({@code
     * Runtime.getRuntime().availableProcessors()}), with shards of at least two rows (a batch of two or three rows
     * runs whole: ND4J fails on the gradient of a one-row batch in some graphs), or 1 when gradient checkpointing is
     * on, with which it is not combined. Dropout draws other masks per shard, so a run's losses depend on the number of workers (see
     * {@link DataParallel}); without randomness they agree to float rounding.
     */
    public Builder dataParallel(int workers) {
      checkState(dataParallel == -1, "data parallelism was already set to %s workers", dataParallel);
      checkArgument(workers >= 1, "data-parallel workers must be >= 1, got %s", workers);
      this.dataParallel = workers;
      return this;
    }

    /**
     * Whether {@link #fit} runs a {@link NativeMemoryGuard} (default on, unless the system property
     * {@value Trainer#MEMORY_GUARD_PROPERTY} is {@code false}). The guard changes process-wide state: it calls
     * {@code System.gc()} when resident memory grew by more than 256 MiB since its last collection, and sets glibc's
     * {@code mallopt} thresholds once per JVM (also off alone with {@code -D}{@value
     * NativeMemoryGuard#KEEP_FREED_PROPERTY}{@code =false}). Off, ND4J's off-heap memory is freed only when the
     * collector runs by itself, which a training loop, making little Java garbage, seldom triggers: resident
     * memory may then grow well beyond the model's needs (what was measured is in {@link NativeMemoryGuard}).
     */
    public Builder nativeMemoryGuard(boolean on) {
      checkState(memoryGuard == null, "the native memory guard was already set to %s", memoryGuard);
      this.memoryGuard = on;
      return this;
    }

    /**
     * @throws IllegalStateException if {@code steps} was not set, warm-up is longer than the run, or both gradient
     *     checkpointing and data parallelism over more than one worker were asked for
     */
    public Trainer build() {
      OptimizerSettings optimizer = optimizerSettings(); // checks the steps and the warm-up first
      accumulation = accumulation == -1 ? 1 : accumulation;
      progress = progressSet ? progress : System.err;
      memoryGuard = memoryGuard == null ? !"false".equalsIgnoreCase(System.getProperty(MEMORY_GUARD_PROPERTY))
          : memoryGuard;
      checkState(!(Boolean.TRUE.equals(checkpointing) && dataParallel > 1),
          "gradient checkpointing and data parallelism (%s workers) cannot be combined: choose one", dataParallel);
      if (dataParallel == -1) { // the default follows the cores, as compare's --workers auto; checkpointing excludes it
        dataParallel = Boolean.TRUE.equals(checkpointing) ? 1 : Runtime.getRuntime().availableProcessors();
        workersAuto = true;
      }
      return new Trainer(this, steps(), optimizer);
    }
  }
}
