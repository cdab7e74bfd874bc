package dev.peft4j.prefix;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.gson.JsonObject;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.ModulesToSave;
import dev.peft4j.Targets;
import dev.peft4j.io.JsonFields;
import dev.peft4j.model.Hooks;
import dev.peft4j.prompt.PromptLearning;
import dev.peft4j.prompt.VirtualTokens;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of prefix tuning; built by {@code Peft.prefixTuning(n)}.
 *
 * <pre>{@code
 * PeftModel m = Peft.prefixTuning(10).projection(512).apply(llama);   // trained through an MLP, saved folded
 * }</pre>
 *
 * @param encoderHiddenSize the MLP's hidden width; null for the model's key/value width (HF's default)
 * @param projection        whether the prefix is trained through the MLP (HF's {@code prefix_projection})
 * @param zeroInit          whether the table (or the MLP's last layer) starts at zero (HF's {@code init_weights="zero"})
 * @param tokenDim          HF's {@code token_dim} read from a file, checked against the model; null otherwise
 * @param inferenceMode     whether this config describes a saved adapter (read from a file): the prefix is then the
 *                          plain, folded {@code [n, layers·2·kv]} table, starting at zero until its weights are loaded,
 *                          as Hugging Face PEFT builds it in inference mode
 * @param seed              seed of the initial values
 * @see PrefixTuning
 */
public record PrefixTuningConfig(int numVirtualTokens, Integer encoderHiddenSize, boolean projection, boolean zeroInit,
    Integer tokenDim, boolean inferenceMode, List<String> modulesToSave, long seed) implements AdapterConfig {

  /** @throws IllegalArgumentException if {@code numVirtualTokens < 1} */
  public PrefixTuningConfig {
    PromptLearning.checkNumVirtualTokens(numVirtualTokens);
    modulesToSave = List.copyOf(modulesToSave);
  }

  /** @throws IllegalArgumentException if {@code numVirtualTokens < 1} */
  public static Builder builder(int numVirtualTokens) {
    return new Builder(numVirtualTokens);
  }

  @Override
  public String peftType() {
    return "PREFIX_TUNING";
  }

  /** @throws UnsupportedOperationException always: prefix tuning adapts no module */
  @Override
  public Targets targets() {
    throw new UnsupportedOperationException("prefix tuning adapts no module: its " + numVirtualTokens
        + " virtual tokens enter every layer's keys and values");
  }

  /** Whether the MLP is built: projection on, and not a saved (folded) adapter. */
  boolean reparameterised() {
    return projection && !inferenceMode;
  }

  /**
   * The scalars that train: {@code n · layers · 2 · kv} for the plain table; with the projection (while training)
   * {@code n·kv + kv·E + E + E·L2kv + L2kv} for the embedding and the MLP, {@code L2kv = layers · 2 · kv}; plus the
   * modules to save.
   */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    Hooks.Dims dims = check(sameDiff);
    long kv = dims.kvDim();
    long table = (long) dims.layers() * 2 * kv;
    long e = encoderHidden(dims);
    long own = reparameterised() ? numVirtualTokens * kv + kv * e + e + e * table + table : numVirtualTokens * table;
    return own + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  int encoderHidden(Hooks.Dims dims) {
    return encoderHiddenSize == null ? dims.kvDim() : encoderHiddenSize;
  }

  /** Checks the config against the graph; called before anything is built. */
  Hooks.Dims check(SameDiff sd) {
    Hooks.Dims dims = VirtualTokens.check(sd, numVirtualTokens, "prefix tuning");
    checkArgument(tokenDim == null || tokenDim == dims.kvDim(), "token_dim %s does not match the model's key/value "
        + "width %s (%s kv heads × %s)", tokenDim, dims.kvDim(), dims.kvHeads(), dims.headDim());
    return dims;
  }

  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = PromptLearning.toHf(peftType(), numVirtualTokens, tokenDim, modulesToSave);
    hf.put("encoder_hidden_size", encoderHiddenSize);
    hf.put("prefix_projection", projection);
    hf.put("init_weights", zeroInit ? "zero" : null);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("encoder_hidden_size", "prefix_projection", "init_weights");

  /**
   * A config from Hugging Face PEFT's {@code adapter_config.json} for prefix tuning, in inference mode (the folded
   * table is loaded); unknown fields are returned in {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field, for a value of the wrong JSON type or one peft4j lacks
   */
  public static PrefixTuningConfig fromHf(JsonObject json, Set<String> ignored) {
    JsonFields f = PromptLearning.read(json, ignored, KNOWN_FIELDS);
    Builder b = builder(PromptLearning.numVirtualTokens(f)).readHf(f);
    b.projection = f.bool("prefix_projection", false);
    b.encoderHiddenSize = f.optionalInteger("encoder_hidden_size");
    String init = f.string("init_weights", null);
    checkArgument(init == null || init.equals("zero"), "init_weights: '%s' is not supported; null or \"zero\"", init);
    b.zeroInit = init != null;
    return b.build();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new PrefixTuning(adapterName, this);
  }

  /** Builds a {@link PrefixTuningConfig}; each option can be set once. */
  public static final class Builder extends PromptLearning.Builder<PrefixTuningConfig, Builder> {
    private Integer encoderHiddenSize;
    private boolean projection;
    private boolean zeroInit;

    private Builder(int numVirtualTokens) {
      super(numVirtualTokens);
    }

    /**
     * Trains the prefix through HF's reparameterisation: an embedding {@code [n, kv]}, then
     * {@code Linear(kv, encoderHiddenSize) → tanh → Linear(encoderHiddenSize, layers·2·kv)}; saving folds it into
     * the plain table. Default: off (the table trains directly).
     *
     * @throws IllegalArgumentException if {@code encoderHiddenSize < 1}
     * @throws IllegalStateException if the projection was already set
     */
    public Builder projection(int encoderHiddenSize) {
      checkState(!projection, "projection was already set");
      checkArgument(encoderHiddenSize >= 1, "encoder_hidden_size must be ≥ 1, got %s", encoderHiddenSize);
      this.projection = true;
      this.encoderHiddenSize = encoderHiddenSize;
      return this;
    }

    /** Starts the table (or the projection's last layer) at zero: HF's {@code init_weights="zero"}. Default off. */
    public Builder zeroInit() {
      checkState(!zeroInit, "zeroInit was already set");
      this.zeroInit = true;
      return this;
    }

    @Override
    public PrefixTuningConfig build() {
      return new PrefixTuningConfig(numVirtualTokens(), encoderHiddenSize, projection, zeroInit, tokenDim(),
          inferenceMode(), modulesToSave(), seed());
    }
  }
}
