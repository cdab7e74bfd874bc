package dev.peft4j.prompt;

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
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of prompt tuning; built by {@code Peft.promptTuning(n)}.
 *
 * <pre>{@code
 * PeftModel m = Peft.promptTuning(8).init(PromptInit.SAMPLE_VOCAB).seed(3).apply(llama);
 * PeftModel t = Peft.promptTuning(8).initText("Classify the sentiment:", tokenIds).tokenizer("bert-base-uncased")
 *     .apply(bert);
 * }</pre>
 *
 * @see PromptTuning
 */
public final class PromptTuningConfig implements AdapterConfig {

  /** How the prompt table starts (Hugging Face's {@code prompt_tuning_init}). */
  public enum PromptInit {
    /** Normal(0, 1), {@code nn.Embedding}'s default. */
    RANDOM,
    /** Rows of the word-embedding table at n token ids drawn uniformly from the vocabulary (seeded). */
    SAMPLE_VOCAB,
    /** The word embeddings of a text's tokens, repeated to n tokens. */
    TEXT
  }

  private final int numVirtualTokens;
  private final PromptInit init;
  private final String initText;
  private final long[] initTokenIds;
  private final String tokenizer;
  private final long seed;
  private final boolean inferenceMode;
  private final Integer tokenDim;
  private final List<String> modulesToSave;

  private PromptTuningConfig(int numVirtualTokens, PromptInit init, String initText, long[] initTokenIds,
      String tokenizer, long seed, boolean inferenceMode, Integer tokenDim, List<String> modulesToSave) {
    this.numVirtualTokens = numVirtualTokens;
    this.init = init;
    this.initText = initText;
    this.initTokenIds = initTokenIds;
    this.tokenizer = tokenizer;
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
    return "PROMPT_TUNING";
  }

  /**
   * None: prompt tuning adapts no module; its virtual tokens enter at the input embeddings.
   *
   * @throws UnsupportedOperationException always
   */
  @Override
  public Targets targets() {
    throw new UnsupportedOperationException("prompt tuning adapts no module: its " + numVirtualTokens
        + " virtual tokens enter at the input embeddings");
  }

  public int numVirtualTokens() {
    return numVirtualTokens;
  }

  public PromptInit init() {
    return init;
  }

  /** The token ids of the init text ({@link PromptInit#TEXT}); empty otherwise, and for a config read from a file. */
  public long[] initTokenIds() {
    return initTokenIds.clone();
  }

  public long seed() {
    return seed;
  }

  /**
   * Whether this config describes a saved adapter (HF's {@code inference_mode}, true in configs read from a file): its
   * prompt is not initialised (it starts at zero) because its weights are loaded next, as Hugging Face PEFT skips the
   * init in inference mode.
   */
  public boolean inferenceMode() {
    return inferenceMode;
  }

  @Override
  public List<String> modulesToSave() {
    return modulesToSave;
  }

  /** {@code n · H}, plus the modules to save. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    Hooks.Dims dims = VirtualTokens.check(sameDiff, numVirtualTokens, "prompt tuning");
    return (long) numVirtualTokens * dims.hidden() + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /** Checks the config against the graph's dimensions; called before anything is built. */
  Hooks.Dims check(SameDiff sd) {
    Hooks.Dims dims = VirtualTokens.check(sd, numVirtualTokens, "prompt tuning");
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
    hf.put("prompt_tuning_init", init.name());
    hf.put("prompt_tuning_init_text", initText);
    hf.put("tokenizer_name_or_path", tokenizer);
    hf.put("tokenizer_kwargs", null);
    hf.put("modules_to_save", modulesToSave.isEmpty() ? null : modulesToSave);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("peft_type", "task_type", "inference_mode",
      "num_virtual_tokens", "token_dim", "num_transformer_submodules", "num_attention_heads", "num_layers",
      "prompt_tuning_init", "prompt_tuning_init_text", "tokenizer_name_or_path", "tokenizer_kwargs",
      "modules_to_save", "base_model_name_or_path", "revision", "peft_version", "auto_mapping");

  /**
   * A config from Hugging Face PEFT's {@code adapter_config.json} for prompt tuning (in inference mode: the prompt is
   * loaded, not initialised); unknown fields are returned in {@code ignored}. {@code num_layers} and
   * {@code num_attention_heads} describe the model and are ignored; {@code token_dim} is checked against it.
   *
   * @throws IllegalArgumentException naming the field, for what peft4j does not implement
   */
  public static PromptTuningConfig fromHf(JsonObject json, Set<String> ignored) {
    json.keySet().stream().filter(k -> !KNOWN_FIELDS.contains(k)).forEach(ignored::add);
    Builder b = builder(requiredInt(json, "num_virtual_tokens"));
    b.tokenDim = optionalInt(json, "token_dim");
    Integer submodules = optionalInt(json, "num_transformer_submodules");
    checkArgument(submodules == null || submodules == 1, "num_transformer_submodules: %s is not supported (peft4j "
        + "has no encoder-decoder models); only 1", submodules);
    String init = optionalString(json, "prompt_tuning_init");
    if (init != null) {
      b.init = PromptInit.valueOf(init);
    }
    b.initText = optionalString(json, "prompt_tuning_init_text");
    b.tokenizer = optionalString(json, "tokenizer_name_or_path");
    JsonElement save = json.get("modules_to_save");
    if (save != null && !save.isJsonNull()) {
      b.modulesToSave(save.getAsJsonArray().asList().stream().map(JsonElement::getAsString).toArray(String[]::new));
    }
    b.inferenceMode = true;
    return b.build();
  }

  static int requiredInt(JsonObject json, String field) {
    Integer v = optionalInt(json, field);
    checkArgument(v != null, "%s is missing", field);
    return v;
  }

  static Integer optionalInt(JsonObject json, String field) {
    JsonElement e = json.get(field);
    return e == null || e.isJsonNull() ? null : e.getAsInt();
  }

  static String optionalString(JsonObject json, String field) {
    JsonElement e = json.get(field);
    return e == null || e.isJsonNull() ? null : e.getAsString();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new PromptTuning(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof PromptTuningConfig c && numVirtualTokens == c.numVirtualTokens && init == c.init
        && Objects.equals(initText, c.initText) && Arrays.equals(initTokenIds, c.initTokenIds)
        && Objects.equals(tokenizer, c.tokenizer) && seed == c.seed && inferenceMode == c.inferenceMode
        && Objects.equals(tokenDim, c.tokenDim) && modulesToSave.equals(c.modulesToSave);
  }

  @Override
  public int hashCode() {
    return Objects.hash(numVirtualTokens, init, initText, Arrays.hashCode(initTokenIds), tokenizer, seed,
        inferenceMode, tokenDim, modulesToSave);
  }

  @Override
  public String toString() {
    return "PromptTuningConfig{numVirtualTokens=" + numVirtualTokens + ", init=" + init
        + (initText == null ? "" : ", initText='" + initText + "'") + ", seed=" + seed
        + (inferenceMode ? ", inferenceMode" : "") + ", modulesToSave=" + modulesToSave + "}";
  }

  /** Builds a {@link PromptTuningConfig}; each option can be set once. */
  public static final class Builder {
    private final int numVirtualTokens;
    private PromptInit init;
    private String initText;
    private long[] initTokenIds;
    private String tokenizer;
    private Long seed;
    private boolean inferenceMode;
    private Integer tokenDim;
    private List<String> modulesToSave;

    private Builder(int numVirtualTokens) {
      checkArgument(numVirtualTokens >= 1, "num_virtual_tokens must be ≥ 1, got %s", numVirtualTokens);
      this.numVirtualTokens = numVirtualTokens;
    }

    /**
     * How the prompt starts: {@link PromptInit#RANDOM} (default) or {@link PromptInit#SAMPLE_VOCAB}; for
     * {@link PromptInit#TEXT} use {@link #initText}.
     *
     * @throws IllegalStateException if the init was already set
     */
    public Builder init(PromptInit init) {
      checkState(this.init == null, "init was already set to %s", this.init);
      this.init = Objects.requireNonNull(init, "init");
      return this;
    }

    /**
     * Starts the prompt from the word embeddings of {@code text}, whose tokens (as the model's tokenizer gives them)
     * are {@code tokenIds}; they are repeated until there are n. Hugging Face PEFT cuts a longer text to n tokens
     * silently; peft4j refuses it.
     *
     * @throws IllegalArgumentException if the text is blank, there are no ids, or more ids than virtual tokens
     * @throws IllegalStateException if the init was already set
     */
    public Builder initText(String text, long... tokenIds) {
      checkState(this.init == null, "init was already set to %s", this.init);
      checkArgument(text != null && !text.isBlank(), "the init text must not be blank");
      checkArgument(tokenIds != null && tokenIds.length > 0, "the init text '%s' needs its token ids", text);
      checkArgument(tokenIds.length <= numVirtualTokens, "the init text '%s' has %s tokens, more than the %s virtual "
          + "tokens; shorten it or use more virtual tokens", text, tokenIds.length, numVirtualTokens);
      this.init = PromptInit.TEXT;
      this.initText = text;
      this.initTokenIds = tokenIds.clone();
      return this;
    }

    /** The tokenizer's name or path (HF's {@code tokenizer_name_or_path}), required with a TEXT init, as in HF. */
    public Builder tokenizer(String nameOrPath) {
      checkState(tokenizer == null, "tokenizer was already set to %s", tokenizer);
      checkArgument(nameOrPath != null && !nameOrPath.isBlank(), "tokenizer must not be blank");
      this.tokenizer = nameOrPath;
      return this;
    }

    /** Seed of the RANDOM and SAMPLE_VOCAB inits; default 0. */
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
     * @throws IllegalArgumentException for a TEXT init without text or tokenizer (unless read from a file)
     */
    public PromptTuningConfig build() {
      PromptInit i = init == null ? PromptInit.RANDOM : init;
      if (i == PromptInit.TEXT) {
        checkArgument(initText != null, "prompt_tuning_init TEXT needs prompt_tuning_init_text");
        checkArgument(tokenizer != null, "prompt_tuning_init TEXT needs a tokenizer (tokenizer_name_or_path), as "
            + "Hugging Face PEFT requires");
        checkArgument(inferenceMode || initTokenIds != null, "prompt_tuning_init TEXT needs the text's token ids");
      } else {
        checkArgument(tokenizer == null, "a tokenizer is only used with a TEXT init, not %s", i);
      }
      return new PromptTuningConfig(numVirtualTokens, i, initText, initTokenIds == null ? new long[0] : initTokenIds,
          tokenizer, seed == null ? 0 : seed, inferenceMode, tokenDim, modulesToSave == null ? List.of()
          : modulesToSave);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
