package dev.peft4j.selective;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.util.List;
import java.util.function.UnaryOperator;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * LP-FT (Kumar et al. 2022): linear probing, then fine-tuning from the trained head, in one call. Phase 1 trains
 * only the head ({@link LinearProbeConfig}) and folds it into the graph ({@code mergeAndUnload}); phase 2 applies
 * the fine-tuning config — {@code Peft.fullFineTuning()}, or LoRA and the like — to the graph that now holds the
 * trained head, and trains it. Each phase runs the ordinary {@link Trainer}.
 *
 * <pre>{@code
 * LpFt.Result r = LpFt.builder(Peft.lora(8).target("query", "value").modulesToSave("classifier").build())
 *     .probe(t -> t.steps(100).learningRate(1e-2))
 *     .fineTune(t -> t.steps(300).learningRate(2e-4).warmupSteps(30))
 *     .fit(sameDiff, batches);
 * r.model().mergeAndUnload();     // the fine-tuned graph
 * }</pre>
 *
 * <p>With a LoRA-style second phase, name the head in its {@code modulesToSave(...)} to keep training it; otherwise
 * the head stays at its linear-probing values (still a better start than a random head, which is the paper's point:
 * fine-tuning behind a random head distorts the pre-trained features).
 *
 * @see <a href="https://arxiv.org/abs/2202.10054">Kumar et al., Fine-Tuning can Distort Pretrained Features and
 *     Underperform Out-of-Distribution</a>
 */
public final class LpFt {

  /**
   * What {@link Builder#fit} returns.
   *
   * @param model    the graph with the second phase's adapter (the head of phase 1 merged into its weights)
   * @param probe    phase 1's history (head only)
   * @param fineTune phase 2's history
   */
  public record Result(PeftModel model, TrainingHistory probe, TrainingHistory fineTune) {}

  private LpFt() {}

  /** LP-FT whose second phase applies {@code fineTune} (full fine-tuning, LoRA, …). */
  public static Builder builder(AdapterConfig fineTune) {
    checkArgument(fineTune != null, "the fine-tuning config must not be null");
    return new Builder(fineTune);
  }

  /** Options of LP-FT; each can be set once. */
  public static final class Builder {
    private final AdapterConfig fineTune;
    private LinearProbeConfig probe;
    private UnaryOperator<Trainer.Builder> probeTrainer;
    private UnaryOperator<Trainer.Builder> fineTuneTrainer;

    private Builder(AdapterConfig fineTune) {
      this.fineTune = fineTune;
    }

    /** The head of phase 1; default {@code Peft.linearProbe()} (the graph's output heads). */
    public Builder head(LinearProbeConfig head) {
      checkState(probe == null, "the head was already set to %s", probe);
      this.probe = head;
      return this;
    }

    /** Phase 1's trainer options, e.g. {@code t -> t.steps(100).learningRate(1e-2)} (required: steps). */
    public Builder probe(UnaryOperator<Trainer.Builder> options) {
      checkState(probeTrainer == null, "the probing options were already set");
      this.probeTrainer = options;
      return this;
    }

    /** Phase 2's trainer options, e.g. {@code t -> t.steps(300).learningRate(2e-4)} (required: steps). */
    public Builder fineTune(UnaryOperator<Trainer.Builder> options) {
      checkState(fineTuneTrainer == null, "the fine-tuning options were already set");
      this.fineTuneTrainer = options;
      return this;
    }

    /**
     * Runs both phases on {@code sameDiff} (modified in place) with {@code data}.
     *
     * @throws IllegalStateException if a phase's trainer options are missing
     * @throws IllegalArgumentException if the head or the fine-tuning config does not fit the graph; a config that
     *     does not fit is refused before any training
     */
    public Result fit(SameDiff sameDiff, List<Batch> data) {
      checkState(probeTrainer != null && fineTuneTrainer != null,
          "both phases need trainer options: probe(t -> t.steps(...)) and fineTune(t -> t.steps(...))");
      checkArgument(data != null && !data.isEmpty(), "no training data");
      LinearProbeConfig head = probe == null ? LinearProbeConfig.builder().build() : probe;
      fineTune.parameterCount(sameDiff); // validates the second phase before anything trains
      PeftModel probing = head.apply(sameDiff);
      TrainingHistory probeHistory = probeTrainer.apply(Trainer.builder(probing)).build().fit(data);
      SameDiff withTrainedHead = probing.mergeAndUnload();
      PeftModel model = fineTune.apply(withTrainedHead);
      TrainingHistory fineTuneHistory = fineTuneTrainer.apply(Trainer.builder(model)).build().fit(data);
      return new Result(model, probeHistory, fineTuneHistory);
    }
  }
}
