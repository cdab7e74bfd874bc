package dev.peft4j.adalora;

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
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of an AdaLoRA adapter; built by {@code Peft.adaLora(initR, targetR)}.
 *
 * <pre>{@code
 * AdaLoraConfig cfg = Peft.adaLora(12, 4).totalStep(1000).tinit(100).tfinal(200).deltaT(10)
 *     .alpha(32).target("q_proj", "v_proj").build();
 * PeftModel m = cfg.apply(sameDiff);     // the Trainer drives the rank allocation after each step
 * }</pre>
 *
 * Field names and defaults follow Hugging Face PEFT's {@code AdaLoraConfig}.
 *
 * @see AdaLora
 */
public final class AdaLoraConfig implements AdapterConfig {

  private final int initR;
  private final int targetR;
  private final double alpha;
  private final double dropout;
  private final int tinit;
  private final int tfinal;
  private final int deltaT;
  private final double beta1;
  private final double beta2;
  private final double orthRegWeight;
  private final int totalStep;
  private final Targets targets;
  private final long seed;
  private final List<String> modulesToSave;
  private final Map<String, List<Boolean>> rankPattern; // null: none recorded

  private AdaLoraConfig(Builder b, double alpha, double dropout, Targets targets) {
    this.initR = b.initR;
    this.targetR = b.targetR;
    this.alpha = alpha;
    this.dropout = dropout;
    this.tinit = b.tinit == null ? 0 : b.tinit;
    this.tfinal = b.tfinal == null ? 0 : b.tfinal;
    this.deltaT = b.deltaT == null ? 1 : b.deltaT;
    this.beta1 = b.beta1 == null ? 0.85 : b.beta1;
    this.beta2 = b.beta2 == null ? 0.85 : b.beta2;
    this.orthRegWeight = b.orthRegWeight == null ? 0.5 : b.orthRegWeight;
    this.totalStep = b.totalStep;
    this.targets = targets;
    this.seed = b.seed == null ? 0 : b.seed;
    this.modulesToSave = b.modulesToSave == null ? List.of() : b.modulesToSave;
    this.rankPattern = b.rankPattern;
  }

  /** A builder for initial rank {@code initR} per module and target average rank {@code targetR}. */
  public static Builder builder(int initR, int targetR) {
    return new Builder(initR, targetR);
  }

  @Override
  public String peftType() {
    return "ADALORA";
  }

  /** The rank every targeted module starts with (HF's {@code init_r}). */
  public int initR() {
    return initR;
  }

  /** The average rank per module after the budget schedule (HF's {@code target_r}). */
  public int targetR() {
    return targetR;
  }

  /** α, HF's {@code lora_alpha}; the update is scaled by α / (init_r + 1e-5). */
  public double alpha() {
    return alpha;
  }

  public double dropout() {
    return dropout;
  }

  /** Steps before the budget starts to fall. */
  public int tinit() {
    return tinit;
  }

  /** Steps at the end with the final budget. */
  public int tfinal() {
    return tfinal;
  }

  /** Steps between two allocations while the budget falls. */
  public int deltaT() {
    return deltaT;
  }

  /** EMA coefficient of the sensitivity. */
  public double beta1() {
    return beta1;
  }

  /** EMA coefficient of the uncertainty. */
  public double beta2() {
    return beta2;
  }

  /** Weight of the orthogonality regulariser added to the loss. */
  public double orthRegWeight() {
    return orthRegWeight;
  }

  /** The training steps the budget schedule spans (HF's {@code total_step}). */
  public int totalStep() {
    return totalStep;
  }

  @Override
  public Targets targets() {
    return targets;
  }

  /** Seed of the initial A and B matrices. */
  public long seed() {
    return seed;
  }

  @Override
  public List<String> modulesToSave() {
    return modulesToSave;
  }

  /**
   * The triplets each module keeps, as HF's {@code rank_pattern}: keyed {@code <module>.lora_E}, {@code init_r}
   * booleans each; empty when no allocation was recorded.
   */
  public Map<String, List<Boolean>> rankPattern() {
    return rankPattern == null ? Map.of() : rankPattern;
  }

  /** The scale of the update, α / (init_r + 1e-5), as HF's {@code scaling / (ranknum + 1e-5)}. */
  public double scaling() {
    return alpha / (initR + 1e-5);
  }

  /** This config with {@code pattern} recorded as its rank pattern (what training decided). */
  AdaLoraConfig withRankPattern(Map<String, List<Boolean>> pattern) {
    Builder b = toBuilder();
    b.rankPattern = copy(pattern);
    return new AdaLoraConfig(b, alpha, dropout, targets);
  }

  private Builder toBuilder() {
    Builder b = new Builder(initR, targetR);
    b.tinit = tinit;
    b.tfinal = tfinal;
    b.deltaT = deltaT;
    b.beta1 = beta1;
    b.beta2 = beta2;
    b.orthRegWeight = orthRegWeight;
    b.totalStep = totalStep;
    b.seed = seed;
    b.modulesToSave = modulesToSave;
    return b;
  }

  /** The rank module {@code m} is built with: its kept triplets under the rank pattern, else init_r. */
  int rankOf(String module) {
    List<Boolean> keep = rankPattern().get(module + ".lora_E");
    return keep == null ? initR : (int) keep.stream().filter(Boolean::booleanValue).count();
  }

  /**
   * The targeted modules, checked against this config: init_r at most min(in, out), every rank-pattern key names a
   * targeted module.
   *
   * @throws IllegalArgumentException naming the module, its shape and the value
   */
  List<LinearModule> select(GraphRewriter g) {
    List<LinearModule> modules = targets.selectLinear(g, "AdaLoRA");
    Set<String> keys = new HashSet<>();
    for (LinearModule m : modules) {
      long limit = Math.min(m.inFeatures(), m.outFeatures());
      checkArgument(initR <= limit, "AdaLoRA init_r %s exceeds min(in, out) = %s of module '%s' (in %s, out %s)",
          initR, limit, m.name(), m.inFeatures(), m.outFeatures());
      keys.add(m.name() + ".lora_E");
    }
    for (String key : rankPattern().keySet()) {
      checkArgument(keys.contains(key), "rank_pattern key '%s' names no targeted module; targeted: %s", key,
          modules.stream().map(LinearModule::name).toList());
    }
    return modules;
  }

  /**
   * Σ r·(in + out + 1) over the targeted linear layers (r from the rank pattern, else init_r), plus the modules to
   * save.
   */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    long own = select(GraphRewriter.of(sameDiff)).stream()
        .mapToLong(m -> (long) rankOf(m.name()) * (m.inFeatures() + m.outFeatures() + 1)).sum();
    return own + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /** Hugging Face PEFT's {@code AdaLoraConfig} fields for this config. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = new LinkedHashMap<>();
    hf.put("peft_type", peftType());
    hf.put("init_r", initR);
    hf.put("target_r", targetR);
    hf.put("tinit", tinit);
    hf.put("tfinal", tfinal);
    hf.put("deltaT", deltaT);
    hf.put("beta1", beta1);
    hf.put("beta2", beta2);
    hf.put("orth_reg_weight", orthRegWeight);
    hf.put("total_step", totalStep);
    hf.put("rank_pattern", rankPattern == null ? null : rankPattern);
    hf.put("r", 8); // LoraConfig's default; AdaLoRA ignores it
    hf.put("lora_alpha", alpha);
    hf.put("lora_dropout", dropout);
    hf.put("use_rslora", false);
    hf.put("use_dora", false);
    hf.put("target_modules", targets.regex().<Object>map(x -> x)
        .orElse(targets.isAllLinear() ? Targets.ALL_LINEAR : targets.entries()));
    hf.put("exclude_modules", targets.excluded().isEmpty() ? null : targets.excluded());
    hf.put("layers_to_transform", targets.layers().isEmpty() ? null : List.copyOf(targets.layers()));
    hf.put("modules_to_save", modulesToSave.isEmpty() ? null : modulesToSave);
    hf.put("bias", "none");
    hf.put("fan_in_fan_out", false);
    hf.put("init_lora_weights", true);
    hf.put("alpha_pattern", Map.of());
    hf.put("task_type", null);
    hf.put("inference_mode", true);
    return hf;
  }

  /** Fields of Hugging Face's AdaLoraConfig that peft4j reads, or knows and may ignore. */
  private static final Set<String> KNOWN_FIELDS = Set.of("peft_type", "init_r", "target_r", "tinit", "tfinal",
      "deltaT", "beta1", "beta2", "orth_reg_weight", "total_step", "rank_pattern", "r", "lora_alpha", "lora_dropout",
      "use_rslora", "use_dora", "target_modules", "exclude_modules", "layers_to_transform", "layers_pattern",
      "modules_to_save", "bias", "fan_in_fan_out", "init_lora_weights", "alpha_pattern", "task_type",
      "inference_mode", "base_model_name_or_path", "revision", "peft_version", "auto_mapping", "lora_bias",
      "loftq_config", "megatron_config", "megatron_core", "layer_replication", "runtime_config", "eva_config",
      "corda_config", "use_qalora", "qalora_group_size", "target_parameters", "trainable_token_indices",
      "alora_invocation_tokens", "arrow_config", "ensure_weight_tying", "kasa_config", "lora_ga_config",
      "monteclora_config", "use_bdlora", "velora_config");

  /**
   * A config from Hugging Face PEFT's {@code adapter_config.json} ({@code peft_type} ADALORA). A missing field takes
   * Hugging Face's default; unknown fields are ignored and returned in {@code ignored}. {@code r} and
   * {@code use_rslora} are ignored, as AdaLoRA ignores them.
   *
   * @throws IllegalArgumentException naming the field, for values peft4j does not implement (DoRA, trained biases,
   *     fan_in_fan_out, alpha_pattern, a regex exclude_modules), or a missing total_step
   */
  public static AdaLoraConfig fromHf(JsonObject json, Set<String> ignored) {
    for (String key : json.keySet()) {
      if (!KNOWN_FIELDS.contains(key)) {
        ignored.add(key);
      }
    }
    checkArgument(!bool(json, "use_dora", false), "use_dora: AdaLoRA does not support DoRA");
    checkArgument(string(json, "bias", "none").equals("none"), "bias '%s' is not supported; only 'none'",
        string(json, "bias", "none"));
    checkArgument(!bool(json, "fan_in_fan_out", false), "fan_in_fan_out: true is not supported");
    checkArgument(!bool(json, "lora_bias", false), "lora_bias: true is not supported");
    checkArgument(!json.has("alpha_pattern") || json.get("alpha_pattern").isJsonNull()
        || json.getAsJsonObject("alpha_pattern").size() == 0, "alpha_pattern: per-module values are not supported");
    checkArgument(json.has("target_modules") && !json.get("target_modules").isJsonNull(),
        "target_modules is missing: peft4j has no per-architecture default targets");
    checkArgument(json.has("total_step") && !json.get("total_step").isJsonNull(),
        "total_step is missing: AdaLoRA needs it");
    Builder b = builder(integer(json, "init_r", 12), integer(json, "target_r", 8))
        .alpha(number(json, "lora_alpha", 8)).dropout(number(json, "lora_dropout", 0.0))
        .tinit(integer(json, "tinit", 0)).tfinal(integer(json, "tfinal", 0)).deltaT(integer(json, "deltaT", 1))
        .betas(number(json, "beta1", 0.85), number(json, "beta2", 0.85))
        .orthRegWeight(number(json, "orth_reg_weight", 0.5)).totalStep(integer(json, "total_step", 0));
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
      b.layers(layersField.isJsonArray()
          ? layersField.getAsJsonArray().asList().stream().mapToInt(JsonElement::getAsInt).toArray()
          : new int[] {layersField.getAsInt()});
    }
    JsonElement save = json.get("modules_to_save");
    if (save != null && !save.isJsonNull()) {
      b.modulesToSave(strings(save, "modules_to_save").toArray(String[]::new));
    }
    JsonElement pattern = json.get("rank_pattern");
    if (pattern != null && !pattern.isJsonNull()) {
      checkArgument(pattern.isJsonObject(), "rank_pattern must map module keys to lists of booleans, got %s", pattern);
      Map<String, List<Boolean>> p = new LinkedHashMap<>();
      for (Map.Entry<String, JsonElement> e : pattern.getAsJsonObject().entrySet()) {
        checkArgument(e.getValue().isJsonArray(), "rank_pattern['%s'] must be a list of booleans, got %s", e.getKey(),
            e.getValue());
        p.put(e.getKey(), e.getValue().getAsJsonArray().asList().stream().map(JsonElement::getAsBoolean).toList());
      }
      b.rankPattern(p);
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

  private static Map<String, List<Boolean>> copy(Map<String, List<Boolean>> pattern) {
    Map<String, List<Boolean>> out = new LinkedHashMap<>();
    pattern.forEach((k, v) -> out.put(k, List.copyOf(v)));
    return java.util.Collections.unmodifiableMap(out);
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new AdaLora(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof AdaLoraConfig c && initR == c.initR && targetR == c.targetR && alpha == c.alpha
        && dropout == c.dropout && tinit == c.tinit && tfinal == c.tfinal && deltaT == c.deltaT && beta1 == c.beta1
        && beta2 == c.beta2 && orthRegWeight == c.orthRegWeight && totalStep == c.totalStep
        && targets.equals(c.targets) && seed == c.seed && modulesToSave.equals(c.modulesToSave)
        && Objects.equals(rankPattern, c.rankPattern);
  }

  @Override
  public int hashCode() {
    return Objects.hash(initR, targetR, alpha, dropout, tinit, tfinal, deltaT, beta1, beta2, orthRegWeight,
        totalStep, targets, seed, modulesToSave, rankPattern);
  }

  @Override
  public String toString() {
    return "AdaLoraConfig{initR=" + initR + ", targetR=" + targetR + ", alpha=" + alpha + ", dropout=" + dropout
        + ", tinit=" + tinit + ", tfinal=" + tfinal + ", deltaT=" + deltaT + ", beta1=" + beta1 + ", beta2=" + beta2
        + ", orthRegWeight=" + orthRegWeight + ", totalStep=" + totalStep + ", targets=" + targets + ", seed=" + seed
        + ", modulesToSave=" + modulesToSave + (rankPattern == null ? "" : ", rankPattern=" + rankPattern) + "}";
  }

  /** Builds an {@link AdaLoraConfig}; each option can be set once. */
  public static final class Builder {
    private final int initR;
    private final int targetR;
    private Double alpha;
    private Double dropout;
    private Integer tinit;
    private Integer tfinal;
    private Integer deltaT;
    private Double beta1;
    private Double beta2;
    private Double orthRegWeight;
    private int totalStep = -1;
    private Targets targets;
    private String[] exclude;
    private int[] layers;
    private Long seed;
    private List<String> modulesToSave;
    private Map<String, List<Boolean>> rankPattern;

    private Builder(int initR, int targetR) {
      this.initR = initR;
      this.targetR = targetR;
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

    /** Steps with the full budget before it starts to fall (HF's {@code tinit}); default 0. Must be ≥ 0. */
    public Builder tinit(int steps) {
      checkState(tinit == null, "tinit was already set to %s", tinit);
      this.tinit = steps;
      return this;
    }

    /** Steps at the end with the final budget and a fixed rank pattern (HF's {@code tfinal}); default 0, ≥ 0. */
    public Builder tfinal(int steps) {
      checkState(tfinal == null, "tfinal was already set to %s", tfinal);
      this.tfinal = steps;
      return this;
    }

    /** Steps between two allocations while the budget falls (HF's {@code deltaT}); default 1. Must be &gt; 0. */
    public Builder deltaT(int steps) {
      checkState(deltaT == null, "deltaT was already set to %s", deltaT);
      this.deltaT = steps;
      return this;
    }

    /** EMA coefficients of sensitivity and uncertainty; default 0.85 and 0.85. Each must be in (0, 1). */
    public Builder betas(double beta1, double beta2) {
      checkState(this.beta1 == null, "betas were already set to (%s, %s)", this.beta1, this.beta2);
      this.beta1 = beta1;
      this.beta2 = beta2;
      return this;
    }

    /** Weight of the orthogonality regulariser; default 0.5; 0 leaves it out. Must be ≥ 0. */
    public Builder orthRegWeight(double weight) {
      checkState(orthRegWeight == null, "orth_reg_weight was already set to %s", orthRegWeight);
      this.orthRegWeight = weight;
      return this;
    }

    /** The training steps the schedule spans (HF's {@code total_step}). Required, &gt; 0. */
    public Builder totalStep(int steps) {
      checkState(totalStep == -1, "total_step was already set to %s", totalStep);
      this.totalStep = steps;
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

    /** Seed of the initial A and B matrices; default 0. */
    public Builder seed(long seed) {
      checkState(this.seed == null, "seed was already set to %s", this.seed);
      this.seed = seed;
      return this;
    }

    /** Modules trained in full beside the adapter, as HF's {@code modules_to_save}; default none. */
    public Builder modulesToSave(String... modules) {
      checkState(modulesToSave == null, "modules to save were already set to %s", modulesToSave);
      this.modulesToSave = List.of(modules);
      return this;
    }

    /**
     * The triplets each module keeps (HF's {@code rank_pattern}, keyed {@code <module>.lora_E}, init_r booleans
     * each): such a module is built with as many triplets as it keeps, as Hugging Face PEFT loads a pruned adapter.
     * Default none.
     */
    public Builder rankPattern(Map<String, List<Boolean>> pattern) {
      checkState(rankPattern == null, "rank_pattern was already set");
      checkArgument(pattern != null, "rank_pattern must not be null");
      this.rankPattern = copy(pattern);
      return this;
    }

    /**
     * @throws IllegalArgumentException naming the bad value: init_r ≤ 0, target_r ≤ 0 or above init_r, total_step
     *     unset or ≤ 0, tinit or tfinal &lt; 0, tinit + tfinal ≥ total_step (no budgeting phase), deltaT ≤ 0, a beta
     *     outside (0, 1), orth_reg_weight &lt; 0, α ≤ 0, dropout outside [0, 1), no targets, a rank-pattern entry
     *     whose length is not init_r
     */
    public AdaLoraConfig build() {
      checkArgument(initR > 0, "AdaLoRA init_r must be > 0, got %s", initR);
      checkArgument(targetR > 0, "AdaLoRA target_r must be > 0, got %s", targetR);
      checkArgument(targetR <= initR, "AdaLoRA target_r (%s) must not exceed init_r (%s)", targetR, initR);
      checkArgument(totalStep > 0, "AdaLoRA total_step must be set and > 0, got %s",
          totalStep == -1 ? "none" : totalStep);
      int ti = tinit == null ? 0 : tinit;
      int tf = tfinal == null ? 0 : tfinal;
      checkArgument(ti >= 0, "AdaLoRA tinit must be >= 0, got %s", ti);
      checkArgument(tf >= 0, "AdaLoRA tfinal must be >= 0, got %s", tf);
      checkArgument(ti < totalStep - tf, "AdaLoRA tinit (%s) + tfinal (%s) must be < total_step (%s): the schedule "
          + "leaves no budgeting phase", ti, tf, totalStep);
      checkArgument(deltaT == null || deltaT > 0, "AdaLoRA deltaT must be > 0, got %s", deltaT);
      checkArgument(beta1 == null || (beta1 > 0 && beta1 < 1 && beta2 > 0 && beta2 < 1),
          "AdaLoRA beta1 and beta2 must be in (0, 1), got (%s, %s)", beta1, beta2);
      checkArgument(orthRegWeight == null || (orthRegWeight >= 0 && Double.isFinite(orthRegWeight)),
          "AdaLoRA orth_reg_weight must be >= 0 and finite, got %s", orthRegWeight);
      double a = alpha == null ? 8 : alpha;
      checkArgument(a > 0 && Double.isFinite(a), "lora alpha must be > 0 and finite, got %s", a);
      double p = dropout == null ? 0 : dropout;
      checkArgument(p >= 0 && p < 1, "lora dropout must be in [0, 1), got %s", p);
      checkArgument(targets != null, "no target modules: call target(...) or targetRegex(...)");
      if (rankPattern != null) {
        rankPattern.forEach((k, v) -> checkArgument(v.size() == initR,
            "rank_pattern['%s'] has %s entries; init_r is %s", k, v.size(), initR));
      }
      Targets t = targets;
      if (exclude != null) {
        t = t.exclude(exclude);
      }
      if (layers != null) {
        t = t.layers(layers);
      }
      return new AdaLoraConfig(this, a, p, t);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
