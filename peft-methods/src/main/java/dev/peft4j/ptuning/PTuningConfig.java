package dev.peft4j.ptuning;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.ModulesToSave;
import dev.peft4j.PeftModel;
import dev.peft4j.Targets;
import dev.peft4j.model.Hooks;
import dev.peft4j.prompt.VirtualTokens;
import java.util.LinkedHashMap;
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
 * @see PTuning
 */
public final class PTuningConfig implements AdapterConfig {

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

  private final int numVirtualTokens;
  private final Encoder encoder;
  private final Integer encoderHiddenSize;
  private final int encoderNumLayers;
  private final double encoderDropout;
  private final long seed;
  private final boolean inferenceMode;
  private final Integer tokenDim;
  private final List<String> modulesToSave;

  private PTuningConfig(int numVirtualTokens, Encoder encoder, Integer encoderHiddenSize, int encoderNumLayers,
      double encoderDropout, long seed, boolean inferenceMode, Integer tokenDim, List<String> modulesToSave) {
    this.numVirtualTokens = numVirtualTokens;
    this.encoder = encoder;
    this.encoderHiddenSize = encoderHiddenSize;
    this.encoderNumLayers = encoderNumLayers;
    this.encoderDropout = encoderDropout;
    this.seed = seed;
    this.inferenceMode = inferenceMode;
    this.tokenDim = tokenDim;
    this.modulesToSave = modulesToSave;
  }

  /**
   * @throws IllegalArgumentException if {@code numVirtualTokens < 1}
   */
  public static Builder builder(int numVirtualTokens) {
    return new Builder(numVirtualTokens);
  }

  @Override
  public String peftType() {
    return "P_TUNING";
  }

  /**
   * None: P-tuning adapts no module; its virtual tokens enter at the input embeddings.
   *
   * @throws UnsupportedOperationException always
   */
  @Override
  public Targets targets() {
    throw new UnsupportedOperationException("P-tuning adapts no module: its " + numVirtualTokens
        + " virtual tokens enter at the input embeddings");
  }

  public int numVirtualTokens() {
    return numVirtualTokens;
  }

  public Encoder encoder() {
    return encoder;
  }

  /** The MLP's hidden width; null for the model's hidden size (HF's default). */
  public Integer encoderHiddenSize() {
    return encoderHiddenSize;
  }

  public long seed() {
    return seed;
  }

  /**
   * Whether this config describes a saved adapter (HF's {@code inference_mode}, true in configs read from a file): the
   * prompt is then the plain {@code [n, H]} table of the encoder's output, loaded next, as HF builds it.
   */
  public boolean inferenceMode() {
    return inferenceMode;
  }

  @Override
  public List<String> modulesToSave() {
    return modulesToSave;
  }

  int encoderHidden(Hooks.Dims dims) {
    return encoderHiddenSize == null ? dims.hidden() : encoderHiddenSize;
  }

  public int encoderNumLayers() {
    return encoderNumLayers;
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

  /**
   * Checks the config against the graph; called before anything is built.
   *
   */
  Hooks.Dims check(SameDiff sd) {
    Hooks.Dims dims = VirtualTokens.check(sd, numVirtualTokens, "P-tuning");
    checkArgument(tokenDim == null || tokenDim == dims.hidden(), "token_dim %s does not match the model's hidden "
        + "size %s", tokenDim, dims.hidden());
    return dims;
  }

  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = new LinkedHashMap<>();
    hf.put("peft_type", peftType());
    hf.put("task_type", null);
    hf.put("inference_mode", true);
    hf.put("num_virtual_tokens", numVirtualTokens);
    hf.put("token_dim", tokenDim);
    hf.put("num_transformer_submodules", 1);
    hf.put("num_attention_heads", null);
    hf.put("num_layers", null);
    hf.put("encoder_reparameterization_type", encoder.name());
    hf.put("encoder_hidden_size", encoderHiddenSize);
    hf.put("encoder_num_layers", encoderNumLayers);
    hf.put("encoder_dropout", encoderDropout);
    hf.put("modules_to_save", modulesToSave.isEmpty() ? null : modulesToSave);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("peft_type", "task_type", "inference_mode",
      "num_virtual_tokens", "token_dim", "num_transformer_submodules", "num_attention_heads", "num_layers",
      "encoder_reparameterization_type", "encoder_hidden_size", "encoder_num_layers", "encoder_dropout",
      "modules_to_save", "base_model_name_or_path", "revision", "peft_version", "auto_mapping");

  /**
   * A config from Hugging Face PEFT's {@code adapter_config.json} for P-tuning, in inference mode (the encoder's saved
   * output is loaded as the prompt); unknown fields are returned in {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field, for what peft4j does not implement
   */
  public static PTuningConfig fromHf(JsonObject json, Set<String> ignored) {
    json.keySet().stream().filter(k -> !KNOWN_FIELDS.contains(k)).forEach(ignored::add);
    Integer nv = optionalInt(json, "num_virtual_tokens");
    checkArgument(nv != null, "num_virtual_tokens is missing");
    Builder b = builder(nv);
    b.tokenDim = optionalInt(json, "token_dim");
    Integer submodules = optionalInt(json, "num_transformer_submodules");
    checkArgument(submodules == null || submodules == 1, "num_transformer_submodules: %s is not supported (peft4j "
        + "has no encoder-decoder models); only 1", submodules);
    JsonElement type = json.get("encoder_reparameterization_type");
    if (type != null && !type.isJsonNull()) {
      b.encoder = Encoder.valueOf(type.getAsString());
    }
    b.encoderHiddenSize = optionalInt(json, "encoder_hidden_size");
    b.encoderNumLayers = optionalInt(json, "encoder_num_layers");
    JsonElement dropout = json.get("encoder_dropout");
    if (dropout != null && !dropout.isJsonNull()) {
      b.encoderDropout = dropout.getAsDouble();
    }
    JsonElement save = json.get("modules_to_save");
    if (save != null && !save.isJsonNull()) {
      b.modulesToSave(save.getAsJsonArray().asList().stream().map(JsonElement::getAsString).toArray(String[]::new));
    }
    b.inferenceMode = true;
    return b.build();
  }

  private static Integer optionalInt(JsonObject json, String field) {
    JsonElement e = json.get(field);
    return e == null || e.isJsonNull() ? null : e.getAsInt();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new PTuning(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof PTuningConfig c && numVirtualTokens == c.numVirtualTokens && encoder == c.encoder
        && Objects.equals(encoderHiddenSize, c.encoderHiddenSize) && encoderNumLayers == c.encoderNumLayers
        && encoderDropout == c.encoderDropout && seed == c.seed && inferenceMode == c.inferenceMode
        && Objects.equals(tokenDim, c.tokenDim) && modulesToSave.equals(c.modulesToSave);
  }

  @Override
  public int hashCode() {
    return Objects.hash(numVirtualTokens, encoder, encoderHiddenSize, encoderNumLayers, encoderDropout, seed,
        inferenceMode, tokenDim, modulesToSave);
  }

  @Override
  public String toString() {
    return "PTuningConfig{numVirtualTokens=" + numVirtualTokens + ", encoder=" + encoder + ", encoderHiddenSize="
        + encoderHiddenSize + ", seed=" + seed + (inferenceMode ? ", inferenceMode" : "") + ", modulesToSave="
        + modulesToSave + "}";
  }

  /** Builds a {@link PTuningConfig}; each option can be set once. */
  public static final class Builder {
    private final int numVirtualTokens;
    private Encoder encoder;
    private Integer encoderHiddenSize;
    private Integer encoderNumLayers;
    private Double encoderDropout;
    private Long seed;
    private boolean inferenceMode;
    private Integer tokenDim;
    private List<String> modulesToSave;

    private Builder(int numVirtualTokens) {
      checkArgument(numVirtualTokens >= 1, "num_virtual_tokens must be ≥ 1, got %s", numVirtualTokens);
      this.numVirtualTokens = numVirtualTokens;
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

    /** Seed of the initial values; default 0. */
    public Builder seed(long seed) {
      checkState(this.seed == null, "seed was already set to %s", this.seed);
      this.seed = seed;
      return this;
    }

    /** Modules trained in full beside the prompt (e.g. a classification head); default none. */
    public Builder modulesToSave(String... modules) {
      checkState(modulesToSave == null, "modules to save were already set to %s", modulesToSave);
      this.modulesToSave = List.of(modules);
      return this;
    }

    /**
     * @throws IllegalArgumentException if encoder_num_layers differs from 2 for the MLP (HF ignores it with a warning;
     *     peft4j refuses what it would ignore)
     */
    public PTuningConfig build() {
      Encoder e = encoder == null ? Encoder.MLP : encoder;
      int layers = encoderNumLayers == null ? DEFAULT_ENCODER_LAYERS : encoderNumLayers;
      checkArgument(e != Encoder.MLP || layers == DEFAULT_ENCODER_LAYERS || inferenceMode, "encoder_num_layers %s: "
          + "the MLP prompt encoder always has its fixed layers (as in HF)", layers);
      return new PTuningConfig(numVirtualTokens, e, encoderHiddenSize, layers,
          encoderDropout == null ? 0.0 : encoderDropout, seed == null ? 0 : seed, inferenceMode, tokenDim,
          modulesToSave == null ? List.of() : modulesToSave);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
