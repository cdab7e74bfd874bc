package dev.peft4j.prefix;

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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of prefix tuning; built by {@code Peft.prefixTuning(n)}.
 *
 * <pre>{@code
 * PeftModel m = Peft.prefixTuning(10).projection(512).apply(llama);   // trained through an MLP, saved folded
 * }</pre>
 *
 * @see PrefixTuning
 */
public final class PrefixTuningConfig implements AdapterConfig {

  private final int numVirtualTokens;
  private final Integer encoderHiddenSize;
  private final boolean projection;
  private final boolean zeroInit;
  private final long seed;
  private final boolean inferenceMode;
  private final Integer tokenDim;
  private final List<String> modulesToSave;

  private PrefixTuningConfig(int numVirtualTokens, Integer encoderHiddenSize, boolean projection, boolean zeroInit,
      long seed, boolean inferenceMode, Integer tokenDim, List<String> modulesToSave) {
    this.numVirtualTokens = numVirtualTokens;
    this.encoderHiddenSize = encoderHiddenSize;
    this.projection = projection;
    this.zeroInit = zeroInit;
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
    return "PREFIX_TUNING";
  }

  /**
   * None: prefix tuning adapts no module; its prefixes enter every layer's attention keys and values.
   *
   * @throws UnsupportedOperationException always
   */
  @Override
  public Targets targets() {
    throw new UnsupportedOperationException("prefix tuning adapts no module: its " + numVirtualTokens
        + " virtual tokens enter every layer's keys and values");
  }

  public int numVirtualTokens() {
    return numVirtualTokens;
  }

  /** Whether the prefix is trained through the MLP (HF's {@code prefix_projection}). */
  public boolean projection() {
    return projection;
  }

  /** The MLP's hidden width; null for the model's key/value width (HF's default). */
  public Integer encoderHiddenSize() {
    return encoderHiddenSize;
  }

  public boolean zeroInit() {
    return zeroInit;
  }

  public long seed() {
    return seed;
  }

  /**
   * Whether this config describes a saved adapter (HF's {@code inference_mode}, true in configs read from a file): the
   * prefix is then the plain, folded {@code [n, layers·2·kv]} table, starting at zero until its weights are loaded, as
   * Hugging Face PEFT builds it in inference mode.
   */
  public boolean inferenceMode() {
    return inferenceMode;
  }

  /** Whether the MLP is built: projection on, and not a saved (folded) adapter. */
  boolean reparameterised() {
    return projection && !inferenceMode;
  }

  @Override
  public List<String> modulesToSave() {
    return modulesToSave;
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
    long own;
    if (reparameterised()) {
      long e = encoderHidden(dims);
      own = numVirtualTokens * kv + kv * e + e + e * table + table;
    } else {
      own = numVirtualTokens * table;
    }
    return own + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  int encoderHidden(Hooks.Dims dims) {
    return encoderHiddenSize == null ? dims.kvDim() : encoderHiddenSize;
  }

  /** Checks the config against the graph; called before anything is built. */
  Hooks.Dims check(SameDiff sd) {
    Hooks.Dims dims = Hooks.require(sd, "prefix tuning");
    checkArgument(numVirtualTokens < dims.maxPositions(), "prefix tuning with %s virtual tokens does not fit the "
        + "model's %s positions (n + sequence length must be ≤ %s)", numVirtualTokens, dims.maxPositions(),
        dims.maxPositions());
    checkArgument(tokenDim == null || tokenDim == dims.kvDim(), "token_dim %s does not match the model's key/value "
        + "width %s (%s kv heads × %s)", tokenDim, dims.kvDim(), dims.kvHeads(), dims.headDim());
    for (String hook : List.of(Hooks.KEY_MASK, Hooks.POSITION_OFFSET, Hooks.SEQ_LEN)) {
      String producer = sd.getVariableOutputOp(hook).getOwnName();
      checkState(!producer.startsWith("peft/"), "another prompt-learning adapter is wired into '%s' (op '%s'); "
          + "disable it first", hook, producer);
    }
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
    hf.put("encoder_hidden_size", encoderHiddenSize);
    hf.put("prefix_projection", projection);
    hf.put("init_weights", zeroInit ? "zero" : null);
    hf.put("modules_to_save", modulesToSave.isEmpty() ? null : modulesToSave);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("peft_type", "task_type", "inference_mode",
      "num_virtual_tokens", "token_dim", "num_transformer_submodules", "num_attention_heads", "num_layers",
      "encoder_hidden_size", "prefix_projection", "init_weights", "modules_to_save", "base_model_name_or_path",
      "revision", "peft_version", "auto_mapping");

  /**
   * A config from Hugging Face PEFT's {@code adapter_config.json} for prefix tuning, in inference mode (the folded
   * table is loaded); unknown fields are returned in {@code ignored}. {@code token_dim} is checked against the model's
   * key/value width; {@code num_layers} and {@code num_attention_heads} describe the model and are not read.
   *
   * @throws IllegalArgumentException naming the field, for what peft4j does not implement
   */
  public static PrefixTuningConfig fromHf(JsonObject json, Set<String> ignored) {
    json.keySet().stream().filter(k -> !KNOWN_FIELDS.contains(k)).forEach(ignored::add);
    JsonElement nv = json.get("num_virtual_tokens");
    checkArgument(nv != null && !nv.isJsonNull(), "num_virtual_tokens is missing");
    Builder b = builder(nv.getAsInt());
    b.tokenDim = optionalInt(json, "token_dim");
    Integer submodules = optionalInt(json, "num_transformer_submodules");
    checkArgument(submodules == null || submodules == 1, "num_transformer_submodules: %s is not supported (peft4j "
        + "has no encoder-decoder models); only 1", submodules);
    JsonElement p = json.get("prefix_projection");
    b.projection = p != null && !p.isJsonNull() && p.getAsBoolean();
    b.encoderHiddenSize = optionalInt(json, "encoder_hidden_size");
    JsonElement init = json.get("init_weights");
    if (init != null && !init.isJsonNull()) {
      checkArgument(init.getAsString().equals("zero"), "init_weights: '%s' is not supported; null or \"zero\"",
          init.getAsString());
      b.zeroInit = true;
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
    return new PrefixTuning(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof PrefixTuningConfig c && numVirtualTokens == c.numVirtualTokens
        && Objects.equals(encoderHiddenSize, c.encoderHiddenSize) && projection == c.projection
        && zeroInit == c.zeroInit && seed == c.seed && inferenceMode == c.inferenceMode
        && Objects.equals(tokenDim, c.tokenDim) && modulesToSave.equals(c.modulesToSave);
  }

  @Override
  public int hashCode() {
    return Objects.hash(numVirtualTokens, encoderHiddenSize, projection, zeroInit, seed, inferenceMode, tokenDim,
        modulesToSave);
  }

  @Override
  public String toString() {
    return "PrefixTuningConfig{numVirtualTokens=" + numVirtualTokens
        + (projection ? ", projection(encoderHiddenSize=" + encoderHiddenSize + ")" : "")
        + (zeroInit ? ", zeroInit" : "") + ", seed=" + seed + (inferenceMode ? ", inferenceMode" : "")
        + ", modulesToSave=" + modulesToSave + "}";
  }

  /** Builds a {@link PrefixTuningConfig}; each option can be set once. */
  public static final class Builder {
    private final int numVirtualTokens;
    private Integer encoderHiddenSize;
    private Boolean projection;
    private Boolean zeroInit;
    private Long seed;
    private boolean inferenceMode;
    private Integer tokenDim;
    private List<String> modulesToSave;

    private Builder(int numVirtualTokens) {
      checkArgument(numVirtualTokens >= 1, "num_virtual_tokens must be ≥ 1, got %s", numVirtualTokens);
      this.numVirtualTokens = numVirtualTokens;
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
      checkState(projection == null, "projection was already set");
      checkArgument(encoderHiddenSize >= 1, "encoder_hidden_size must be ≥ 1, got %s", encoderHiddenSize);
      this.projection = true;
      this.encoderHiddenSize = encoderHiddenSize;
      return this;
    }

    /** Starts the table (or the projection's last layer) at zero: HF's {@code init_weights="zero"}. Default off. */
    public Builder zeroInit() {
      checkState(zeroInit == null, "zeroInit was already set");
      this.zeroInit = true;
      return this;
    }

    /** Seed of the initial values; default 0. */
    public Builder seed(long seed) {
      checkState(this.seed == null, "seed was already set to %s", this.seed);
      this.seed = seed;
      return this;
    }

    /** Modules trained in full beside the prefix (e.g. a classification head); default none. */
    public Builder modulesToSave(String... modules) {
      checkState(modulesToSave == null, "modules to save were already set to %s", modulesToSave);
      this.modulesToSave = List.of(modules);
      return this;
    }

    public PrefixTuningConfig build() {
      return new PrefixTuningConfig(numVirtualTokens, encoderHiddenSize, projection != null && projection,
          zeroInit != null && zeroInit, seed == null ? 0 : seed, inferenceMode, tokenDim,
          modulesToSave == null ? List.of() : modulesToSave);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
