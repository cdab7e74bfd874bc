package dev.peft4j.lora;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.ModulesToSave;
import dev.peft4j.PeftModel;
import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.quant.Quantization;
import dev.peft4j.quant.QuantizedBase;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of a LoRA (or rsLoRA) adapter; built by {@code Peft.lora(r)}.
 *
 * <pre>{@code
 * LoraConfig cfg = Peft.lora(16).alpha(32).dropout(0.05).target("q_proj", "v_proj").build();
 * PeftModel m = cfg.apply(sameDiff);
 * }</pre>
 *
 * @see Lora
 */
public final class LoraConfig implements AdapterConfig {

  private final int r;
  private final double alpha;
  private final double dropout;
  private final boolean rsLora;
  private final Targets targets;
  private final long seed;
  private final List<String> modulesToSave;
  private final Quantization quantizeBase;

  private LoraConfig(int r, double alpha, double dropout, boolean rsLora, Targets targets, long seed,
      List<String> modulesToSave, Quantization quantizeBase) {
    this.r = r;
    this.alpha = alpha;
    this.dropout = dropout;
    this.rsLora = rsLora;
    this.targets = targets;
    this.seed = seed;
    this.modulesToSave = modulesToSave;
    this.quantizeBase = quantizeBase;
  }

  /** A builder for rank {@code r}; validated in {@link Builder#build()}. */
  public static Builder builder(int r) {
    return new Builder(r);
  }

  @Override
  public String peftType() {
    return "LORA";
  }

  /** The rank r of the update. */
  public int r() {
    return r;
  }

  /** α, Hugging Face's {@code lora_alpha}. */
  public double alpha() {
    return alpha;
  }

  /** Probability of zeroing an input element of the low-rank branch while training. */
  public double dropout() {
    return dropout;
  }

  /** Whether the scaling is α/√r (rank-stabilised) rather than α/r. */
  public boolean rsLora() {
    return rsLora;
  }

  @Override
  public Targets targets() {
    return targets;
  }

  /** Seed of the initial A matrices. */
  public long seed() {
    return seed;
  }

  @Override
  public List<String> modulesToSave() {
    return modulesToSave;
  }

  /**
   * How the base's linear weights are stored while this adapter is applied (QLoRA), or empty for as they are. Not
   * part of the saved adapter: as in Hugging Face, quantisation is a property of the base model.
   */
  public java.util.Optional<Quantization> quantizeBase() {
    return java.util.Optional.ofNullable(quantizeBase);
  }

  /** The scale s of the update: α/r, or α/√r with rsLoRA. */
  public double scaling() {
    return rsLora ? alpha / Math.sqrt(r) : alpha / r;
  }

  /** Σ r·(in + out) over the targeted linear layers, plus every parameter of the modules to save. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    long lora = targets.selectLinear(GraphRewriter.of(sameDiff), "LoRA").stream()
        .mapToLong((LinearModule m) -> (long) r * (m.inFeatures() + m.outFeatures())).sum();
    return lora + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /** Hugging Face PEFT's {@code LoraConfig} fields for this config. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = new LinkedHashMap<>();
    hf.put("peft_type", peftType());
    hf.put("r", r);
    hf.put("lora_alpha", alpha);
    hf.put("lora_dropout", dropout);
    hf.put("use_rslora", rsLora);
    hf.put("use_dora", false);
    hf.put("target_modules", targets.regex().<Object>map(x -> x)
        .orElse(targets.isAllLinear() ? Targets.ALL_LINEAR : targets.entries()));
    hf.put("exclude_modules", targets.excluded().isEmpty() ? null : targets.excluded());
    hf.put("layers_to_transform", targets.layers().isEmpty() ? null : List.copyOf(targets.layers()));
    hf.put("modules_to_save", modulesToSave.isEmpty() ? null : modulesToSave);
    hf.put("bias", "none");
    hf.put("fan_in_fan_out", false);
    hf.put("init_lora_weights", true);
    hf.put("rank_pattern", Map.of());
    hf.put("alpha_pattern", Map.of());
    hf.put("task_type", null);
    hf.put("inference_mode", true);
    return hf;
  }

  /** Fields of Hugging Face's LoraConfig that peft4j reads, or knows and may ignore. */
  private static final Set<String> KNOWN_FIELDS = Set.of("peft_type", "r", "lora_alpha", "lora_dropout",
      "use_rslora", "use_dora", "target_modules", "exclude_modules", "layers_to_transform", "layers_pattern",
      "modules_to_save", "bias", "fan_in_fan_out", "init_lora_weights", "rank_pattern", "alpha_pattern", "task_type",
      "inference_mode", "base_model_name_or_path", "revision", "peft_version", "auto_mapping", "lora_bias",
      "loftq_config", "megatron_config", "megatron_core", "layer_replication", "runtime_config", "eva_config",
      "corda_config", "use_qalora", "qalora_group_size", "target_parameters", "trainable_token_indices",
      "alora_invocation_tokens", "arrow_config", "ensure_weight_tying", "kasa_config", "lora_ga_config",
      "monteclora_config", "use_bdlora", "velora_config");

  /**
   * A config from Hugging Face PEFT's {@code adapter_config.json}. A missing field takes Hugging Face's default;
   * fields peft4j does not know (from newer versions) are ignored and returned in {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field, for values peft4j does not implement (trained biases,
   *     fan_in_fan_out, per-module rank or alpha patterns, a regex exclude_modules), and for DoRA, which
   *     {@code DoraConfig.fromHf} reads
   */
  public static LoraConfig fromHf(JsonObject json, Set<String> ignored) {
    for (String key : json.keySet()) {
      if (!KNOWN_FIELDS.contains(key)) {
        ignored.add(key);
      }
    }
    checkArgument(!bool(json, "use_dora", false),
        "use_dora: a DoRA adapter; DoraConfig.fromHf reads it (Peft.load does)");
    checkArgument(string(json, "bias", "none").equals("none"), "bias '%s' is not supported; only 'none'",
        string(json, "bias", "none"));
    checkArgument(!bool(json, "fan_in_fan_out", false), "fan_in_fan_out: true is not supported");
    checkArgument(!bool(json, "lora_bias", false), "lora_bias: true is not supported");
    for (String pattern : List.of("rank_pattern", "alpha_pattern")) {
      checkArgument(!json.has(pattern) || json.get(pattern).isJsonNull()
          || json.getAsJsonObject(pattern).size() == 0, "%s: per-module values are not supported", pattern);
    }
    checkArgument(json.has("target_modules") && !json.get("target_modules").isJsonNull(),
        "target_modules is missing: peft4j has no per-architecture default targets");
    Builder b = builder(integer(json, "r", 8)).alpha(number(json, "lora_alpha", 8))
        .dropout(number(json, "lora_dropout", 0.0));
    if (bool(json, "use_rslora", false)) {
      b.rsLora();
    }
    JsonElement targets = json.get("target_modules");
    if (targets.isJsonPrimitive()) {
      String value = targets.getAsString();
      if (value.equals(Targets.ALL_LINEAR)) {
        b.target(Targets.ALL_LINEAR);
      } else {
        b.targetRegex(value);
      }
    } else {
      b.target(strings(targets, "target_modules").toArray(String[]::new));
    }
    JsonElement exclude = json.get("exclude_modules");
    if (exclude != null && !exclude.isJsonNull()) {
      checkArgument(exclude.isJsonArray(), "exclude_modules as a regex is not supported; give a list");
      b.exclude(strings(exclude, "exclude_modules").toArray(String[]::new));
    }
    JsonElement layersField = json.get("layers_to_transform");
    if (layersField != null && !layersField.isJsonNull()) {
      int[] indices = layersField.isJsonArray()
          ? layersField.getAsJsonArray().asList().stream().mapToInt(JsonElement::getAsInt).toArray()
          : new int[] {layersField.getAsInt()};
      b.layers(indices);
    }
    JsonElement save = json.get("modules_to_save");
    if (save != null && !save.isJsonNull()) {
      b.modulesToSave(strings(save, "modules_to_save").toArray(String[]::new));
    }
    return b.build();
  }

  private static List<String> strings(JsonElement e, String field) {
    checkArgument(e.isJsonArray(), "%s must be a list of strings, got %s", field, e);
    return e.getAsJsonArray().asList().stream().map(JsonElement::getAsString).toList();
  }

  private static boolean bool(JsonObject json, String field, boolean fallback) {
    return json.has(field) && !json.get(field).isJsonNull() ? json.get(field).getAsBoolean() : fallback;
  }

  private static String string(JsonObject json, String field, String fallback) {
    return json.has(field) && !json.get(field).isJsonNull() ? json.get(field).getAsString() : fallback;
  }

  private static int integer(JsonObject json, String field, int fallback) {
    return json.has(field) && !json.get(field).isJsonNull() ? json.get(field).getAsInt() : fallback;
  }

  private static double number(JsonObject json, String field, double fallback) {
    return json.has(field) && !json.get(field).isJsonNull() ? json.get(field).getAsDouble() : fallback;
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new Lora(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof LoraConfig c && r == c.r && alpha == c.alpha && dropout == c.dropout && rsLora == c.rsLora
        && targets.equals(c.targets) && seed == c.seed && modulesToSave.equals(c.modulesToSave)
        && Objects.equals(quantizeBase, c.quantizeBase);
  }

  @Override
  public int hashCode() {
    return Objects.hash(r, alpha, dropout, rsLora, targets, seed, modulesToSave, quantizeBase);
  }

  @Override
  public String toString() {
    return "LoraConfig{r=" + r + ", alpha=" + alpha + ", dropout=" + dropout + ", rsLora=" + rsLora
        + ", targets=" + targets + ", seed=" + seed + ", modulesToSave=" + modulesToSave
        + (quantizeBase == null ? "" : ", quantizeBase=" + quantizeBase) + "}";
  }

  /** Builds a {@link LoraConfig}; each option can be set once. */
  public static final class Builder {
    private final int r;
    private Double alpha;
    private Double dropout;
    private boolean rsLora;
    private Targets targets;
    private String[] exclude;
    private int[] layers;
    private Long seed;
    private List<String> modulesToSave;
    private Quantization quantizeBase;

    private Builder(int r) {
      this.r = r;
    }

    /** α; default 8, as Hugging Face's {@code lora_alpha}. Must be &gt; 0. */
    public Builder alpha(double alpha) {
      checkState(this.alpha == null, "alpha was already set to %s", this.alpha);
      this.alpha = alpha;
      return this;
    }

    /** Dropout on the branch's input while training; default 0. Must be in [0, 1). */
    public Builder dropout(double p) {
      checkState(dropout == null, "dropout was already set to %s", dropout);
      this.dropout = p;
      return this;
    }

    /** Scale by α/√r instead of α/r (rsLoRA); default off. */
    public Builder rsLora() {
      checkState(!rsLora, "rsLora was already set");
      this.rsLora = true;
      return this;
    }

    /** Target modules by name (exact or {@code .name} suffix), or {@code "all-linear"}. Required (or a regex). */
    public Builder target(String... modules) {
      checkState(targets == null, "targets were already set to %s", targets);
      this.targets = Targets.names(modules);
      return this;
    }

    /** Target modules whose whole name matches {@code regex}. */
    public Builder targetRegex(String regex) {
      checkState(targets == null, "targets were already set to %s", targets);
      this.targets = Targets.regex(regex);
      return this;
    }

    /** Leave out these modules (exact name or {@code .name} suffix). */
    public Builder exclude(String... modules) {
      checkState(exclude == null, "exclude was already set");
      this.exclude = modules.clone();
      return this;
    }

    /** Adapt only modules inside these layer indices. */
    public Builder layers(int... indices) {
      checkState(layers == null, "layers were already set");
      this.layers = indices.clone();
      return this;
    }

    /** Seed of the initial A matrices; default 0. */
    public Builder seed(long seed) {
      checkState(this.seed == null, "seed was already set to %s", this.seed);
      this.seed = seed;
      return this;
    }

    /** Modules (e.g. a task head) trained in full beside the adapter, as HF's {@code modules_to_save}; default none. */
    public Builder modulesToSave(String... modules) {
      checkState(modulesToSave == null, "modules to save were already set to %s", modulesToSave);
      this.modulesToSave = List.of(modules);
      return this;
    }

    /**
     * Store the base's linear weights quantised (QLoRA): when applied, every linear layer except the output heads
     * and the modules to save is replaced by its packed form ({@link QuantizedBase}), unless already stored in this
     * form, and the adapter trains on top. The base stays quantised after unload, as a base loaded in 4 bits does in
     * Hugging Face. Default: leave the base as it is.
     */
    public Builder quantizeBase(Quantization quantization) {
      checkState(quantizeBase == null, "quantizeBase was already set to %s", quantizeBase);
      checkArgument(quantization != null, "quantization must not be null");
      this.quantizeBase = quantization;
      return this;
    }

    /**
     * @throws IllegalArgumentException naming the bad value and the allowed range: r ≤ 0, α ≤ 0 or not finite,
     *     dropout outside [0, 1), no targets
     */
    public LoraConfig build() {
      checkArgument(r > 0, "LoRA rank r must be > 0, got %s", r);
      double a = alpha == null ? 8 : alpha;
      checkArgument(a > 0 && Double.isFinite(a), "lora alpha must be > 0 and finite, got %s", a);
      double p = dropout == null ? 0 : dropout;
      checkArgument(p >= 0 && p < 1, "lora dropout must be in [0, 1), got %s", p);
      checkArgument(targets != null, "no target modules: call target(...) or targetRegex(...)");
      Targets t = targets;
      if (exclude != null) {
        t = t.exclude(exclude);
      }
      if (layers != null) {
        t = t.layers(layers);
      }
      return new LoraConfig(r, a, p, rsLora, t, seed == null ? 0 : seed,
          modulesToSave == null ? List.of() : modulesToSave, quantizeBase);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
