package dev.peft4j.ptuning;

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
import java.util.Objects;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of P-tuning; built by {@code Peft.pTuning(n)}.
 *
 * <pre>{@code
 * PeftModel m = Peft.pTuning(20).encoderHiddenSize(128).apply(llama);
 * }</pre>
 *
 * @param encoder           the prompt encoder (default {@link Encoder#MLP})
 * @param encoderHiddenSize the encoder's hidden width; null for the model's hidden size (HF's default)
 * @param encoderNumLayers  the LSTM encoder's layers (HF's {@code encoder_num_layers}, default 2)
 * @param encoderDropout    HF's {@code encoder_dropout}, kept from a file and written back (0 otherwise)
 * @param tokenDim          HF's {@code token_dim} read from a file, checked against the model; null otherwise
 * @param inferenceMode     whether this config describes a saved adapter (read from a file): the prompt is then the
 *                          plain {@code [n, H]} table of the encoder's output, loaded next, as HF builds it
 * @param seed              seed of the initial values
 * @see PTuning
 */
public record PTuningConfig(int numVirtualTokens, Encoder encoder, Integer encoderHiddenSize, int encoderNumLayers,
    double encoderDropout, Integer tokenDim, boolean inferenceMode, List<String> modulesToSave, long seed)
    implements AdapterConfig {

  /** The prompt encoder (Hugging Face's {@code encoder_reparameterization_type}). */
  public enum Encoder {
    /** Linear → ReLU → Linear → ReLU → Linear (HF's default and recommendation). */
    MLP,
    /**
     * A bidirectional LSTM ({@code encoder_num_layers} layers, width e per direction) and an MLP
     * {@code Linear(2e, 2e) → ReLU → Linear(2e, H)}, as HF's; each LSTM direction has one bias where PyTorch has two
     * (their sum is what acts), so it has {@code 4e} fewer scalars per direction and layer than HF's.
     */
    LSTM
  }

  /** HF's default {@code encoder_num_layers} (used by its LSTM only). */
  static final int DEFAULT_ENCODER_LAYERS = 2;

  /**
   * @throws IllegalArgumentException for fewer than one virtual token, or if encoder_num_layers differs from 2 for
   *     the MLP (HF ignores it with a warning; peft4j refuses what it would ignore) unless read from a file
   */
  public PTuningConfig {
    PromptLearning.checkNumVirtualTokens(numVirtualTokens);
    Objects.requireNonNull(encoder, "encoder");
    checkArgument(encoder != Encoder.MLP || encoderNumLayers == DEFAULT_ENCODER_LAYERS || inferenceMode,
        "encoder_num_layers %s: the MLP prompt encoder always has its fixed layers (as in HF)", encoderNumLayers);
    modulesToSave = List.copyOf(modulesToSave);
  }

  /** @throws IllegalArgumentException if {@code numVirtualTokens < 1} */
  public static Builder builder(int numVirtualTokens) {
    return new Builder(numVirtualTokens);
  }

  @Override
  public String peftType() {
    return "P_TUNING";
  }

  /** @throws UnsupportedOperationException always: P-tuning adapts no module */
  @Override
  public Targets targets() {
    throw new UnsupportedOperationException("P-tuning adapts no module: its " + numVirtualTokens
        + " virtual tokens enter at the input embeddings");
  }

  int encoderHidden(Hooks.Dims dims) {
    return encoderHiddenSize == null ? dims.hidden() : encoderHiddenSize;
  }

  /**
   * While training: the embedding {@code n·H} and the encoder: MLP {@code H·e + e + e·e + e + e·H + H}; LSTM
   * {@code Σ_layers 2·(in·4e + e·4e + 4e)} (in = H, then 2e) {@code + 2e·2e + 2e + 2e·H + H}. A saved adapter
   * ({@link #inferenceMode()}): {@code n·H}. Plus the modules to save.
   */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    Hooks.Dims dims = check(sameDiff);
    long h = dims.hidden();
    long own = numVirtualTokens * h;
    if (!inferenceMode) {
      long e = encoderHidden(dims);
      if (encoder == Encoder.MLP) {
        own += h * e + e + e * e + e + e * h + h;
      } else {
        for (int layer = 0; layer < encoderNumLayers; layer++) {
          long in = layer == 0 ? h : 2 * e;
          own += 2 * (in * 4 * e + e * 4 * e + 4 * e);
        }
        own += 2 * e * 2 * e + 2 * e + 2 * e * h + h;
      }
    }
    return own + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /** Checks the config against the graph; called before anything is built. */
  Hooks.Dims check(SameDiff sd) {
    return VirtualTokens.check(sd, numVirtualTokens, tokenDim, "P-tuning");
  }

  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = PromptLearning.toHf(peftType(), numVirtualTokens, tokenDim, modulesToSave);
    hf.put("encoder_reparameterization_type", encoder.name());
    hf.put("encoder_hidden_size", encoderHiddenSize);
    hf.put("encoder_num_layers", encoderNumLayers);
    hf.put("encoder_dropout", encoderDropout);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("encoder_reparameterization_type", "encoder_hidden_size",
      "encoder_num_layers", "encoder_dropout");

  /**
   * A config from Hugging Face PEFT's {@code adapter_config.json} for P-tuning, in inference mode (the encoder's saved
   * output is loaded as the prompt); unknown fields are returned in {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field, for a value of the wrong JSON type or one peft4j lacks
   */
  public static PTuningConfig fromHf(JsonObject json, Set<String> ignored) {
    JsonFields f = PromptLearning.read(json, ignored, KNOWN_FIELDS);
    Builder b = builder(PromptLearning.numVirtualTokens(f)).readHf(f);
    b.encoder = f.constant("encoder_reparameterization_type", Encoder.class, null);
    b.encoderHiddenSize = f.optionalInteger("encoder_hidden_size");
    b.encoderNumLayers = f.optionalInteger("encoder_num_layers");
    b.encoderDropout = f.number("encoder_dropout", 0.0);
    return b.build();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new PTuning(adapterName, this);
  }

  /** Builds a {@link PTuningConfig}; each option can be set once. */
  public static final class Builder extends PromptLearning.Builder<PTuningConfig, Builder> {
    private Encoder encoder;
    private Integer encoderHiddenSize;
    private Integer encoderNumLayers;
    private double encoderDropout;

    private Builder(int numVirtualTokens) {
      super(numVirtualTokens);
    }

    /**
     * The prompt encoder; default {@link Encoder#MLP}. {@link Encoder#LSTM} is refused when applied for training.
     *
     * @throws IllegalStateException if it was already set
     */
    public Builder encoder(Encoder encoder) {
      checkState(this.encoder == null, "encoder was already set to %s", this.encoder);
      this.encoder = Objects.requireNonNull(encoder, "encoder");
      return this;
    }

    /**
     * The MLP's hidden width E; default the model's hidden size.
     *
     * @throws IllegalArgumentException if {@code size < 1}
     */
    public Builder encoderHiddenSize(int size) {
      checkState(encoderHiddenSize == null, "encoder hidden size was already set to %s", encoderHiddenSize);
      checkArgument(size >= 1, "encoder_hidden_size must be ≥ 1, got %s", size);
      this.encoderHiddenSize = size;
      return this;
    }

    /**
     * The LSTM encoder's layers; default 2 (HF's). Only for {@link Encoder#LSTM}.
     *
     * @throws IllegalArgumentException if {@code layers < 1}
     */
    public Builder encoderNumLayers(int layers) {
      checkState(encoderNumLayers == null, "encoder_num_layers was already set to %s", encoderNumLayers);
      checkArgument(layers >= 1, "encoder_num_layers must be ≥ 1, got %s", layers);
      this.encoderNumLayers = layers;
      return this;
    }

    /** @throws IllegalArgumentException if encoder_num_layers differs from 2 for the MLP (unless read from a file) */
    @Override
    public PTuningConfig build() {
      return new PTuningConfig(numVirtualTokens(), encoder == null ? Encoder.MLP : encoder, encoderHiddenSize,
          encoderNumLayers == null ? DEFAULT_ENCODER_LAYERS : encoderNumLayers, encoderDropout, tokenDim(),
          inferenceMode(), modulesToSave(), seed());
    }
  }
}
