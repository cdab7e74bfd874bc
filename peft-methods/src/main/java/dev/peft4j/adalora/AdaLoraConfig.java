package dev.peft4j.adalora;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;
import static java.util.stream.Collectors.toUnmodifiableSet;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.HfConfig;
import dev.peft4j.ModulesToSave;
import dev.peft4j.TargetedConfigBuilder;
import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.io.JsonFields;
import dev.peft4j.lora.LoraConfig;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of an AdaLoRA adapter; built by {@code Peft.adaLora(initR, targetR)}. As Hugging Face's
 * {@code AdaLoraConfig(LoraConfig)}, it is LoRA's options plus the rank budget's schedule; names and defaults follow
 * Hugging Face PEFT's.
 *
 * <pre>{@code
 * AdaLoraConfig cfg = Peft.adaLora(12, 4).totalStep(1000).tinit(100).tfinal(200).deltaT(10)
 *     .alpha(32).target("q_proj", "v_proj").build();
 * PeftModel m = cfg.apply(sameDiff);     // the Trainer drives the rank allocation after each step
 * }</pre>
 *
 * @param lora          LoRA's options: its r is init_r, the rank every targeted module starts with; α; dropout; the
 *                      targets; the modules to save; the seed of the initial A and B matrices (no rsLoRA, DoRA or
 *                      quantised base)
 * @param targetR       the average rank per module after the schedule (HF's {@code target_r}), in (0, init_r]
 * @param tinit         steps with the full budget before it starts to fall, ≥ 0 (default 0)
 * @param tfinal        steps at the end with the final budget and a fixed rank pattern, ≥ 0 (default 0)
 * @param deltaT        steps between two allocations while the budget falls, &gt; 0 (default 1)
 * @param beta1         EMA coefficient of the sensitivity, in (0, 1) (default 0.85)
 * @param beta2         EMA coefficient of the uncertainty, in (0, 1) (default 0.85)
 * @param orthRegWeight weight of the orthogonality regulariser added to the loss, ≥ 0 (default 0.5)
 * @param totalStep     the training steps the schedule spans (HF's {@code total_step}), &gt; tinit + tfinal
 * @param rankPattern   the triplets each module keeps, or null when no allocation was recorded (saved as null)
 * @see AdaLora
 */
public record AdaLoraConfig(LoraConfig lora, int targetR, int tinit, int tfinal, int deltaT, double beta1,
    double beta2, double orthRegWeight, int totalStep, Map<String, List<Boolean>> rankPattern)
    implements AdapterConfig {

  /**
   * @throws IllegalArgumentException naming the bad value: init_r ≤ 0, target_r ≤ 0 or above init_r, total_step
   *     unset or ≤ 0, tinit or tfinal &lt; 0, tinit + tfinal ≥ total_step (no budgeting phase), deltaT ≤ 0, a beta
   *     outside (0, 1), orth_reg_weight &lt; 0, a rank-pattern entry whose length is not init_r, or LoRA options
   *     AdaLoRA does not have (rsLoRA, DoRA, a quantised base); α, dropout and targets are checked by LoraConfig
   */
  public AdaLoraConfig {
    checkArgument(!lora.rsLora() && !lora.useDora() && lora.quantization() == null,
        "AdaLoRA has no rsLoRA, DoRA or quantised base, got %s", lora);
    checkSchedule(lora.r(), targetR, totalStep, tinit, tfinal, deltaT, beta1, beta2, orthRegWeight);
    if (rankPattern != null) {
      rankPattern.forEach((k, v) -> checkArgument(v.size() == lora.r(),
          "rank_pattern['%s'] has %s entries; init_r is %s", k, v.size(), lora.r()));
      rankPattern = copy(rankPattern);
    }
  }

  private static void checkSchedule(int initR, int targetR, int totalStep, int tinit, int tfinal, int deltaT,
      double beta1, double beta2, double orthRegWeight) {
    checkArgument(initR > 0, "AdaLoRA init_r must be > 0, got %s", initR);
    checkArgument(targetR > 0, "AdaLoRA target_r must be > 0, got %s", targetR);
    checkArgument(targetR <= initR, "AdaLoRA target_r (%s) must not exceed init_r (%s)", targetR, initR);
    checkArgument(totalStep > 0, "AdaLoRA total_step must be set and > 0, got %s",
        totalStep == -1 ? "none" : totalStep);
    checkArgument(tinit >= 0, "AdaLoRA tinit must be >= 0, got %s", tinit);
    checkArgument(tfinal >= 0, "AdaLoRA tfinal must be >= 0, got %s", tfinal);
    checkArgument(tinit < totalStep - tfinal, "AdaLoRA tinit (%s) + tfinal (%s) must be < total_step (%s): the "
        + "schedule leaves no budgeting phase", tinit, tfinal, totalStep);
    checkArgument(deltaT > 0, "AdaLoRA deltaT must be > 0, got %s", deltaT);
    checkArgument(beta1 > 0 && beta1 < 1 && beta2 > 0 && beta2 < 1,
        "AdaLoRA beta1 and beta2 must be in (0, 1), got (%s, %s)", beta1, beta2);
    checkArgument(orthRegWeight >= 0 && Double.isFinite(orthRegWeight),
        "AdaLoRA orth_reg_weight must be >= 0 and finite, got %s", orthRegWeight);
  }

  /** A builder for initial rank {@code initR} per module and target average rank {@code targetR}. */
  public static Builder builder(int initR, int targetR) {
    return new Builder(initR, targetR);
  }

  @Override
  public String peftType() {
    return "ADALORA";
  }

  /** The rank every targeted module starts with (HF's {@code init_r}): LoRA's r. */
  public int initR() {
    return lora.r();
  }

  /** α, HF's {@code lora_alpha}; the update is scaled by α / (init_r + 1e-5). */
  public double alpha() {
    return lora.alpha();
  }

  /** Probability of zeroing an input element of the branch while training. */
  public double dropout() {
    return lora.dropout();
  }

  @Override
  public Targets targets() {
    return lora.targets();
  }

  @Override
  public List<String> modulesToSave() {
    return lora.modulesToSave();
  }

  /** Seed of the initial A and B matrices. */
  public long seed() {
    return lora.seed();
  }

  /**
   * The triplets each module keeps, as HF's {@code rank_pattern}: keyed {@code <module>.lora_E}, {@code init_r}
   * booleans each; empty when no allocation was recorded.
   */
  @Override
  public Map<String, List<Boolean>> rankPattern() {
    return rankPattern == null ? Map.of() : rankPattern;
  }

  /** The scale of the update, α / (init_r + 1e-5), as HF's {@code scaling / (ranknum + 1e-5)}. */
  public double scaling() {
    return alpha() / (initR() + 1e-5);
  }

  /** This config with {@code pattern} recorded as its rank pattern (what training decided). */
  AdaLoraConfig withRankPattern(Map<String, List<Boolean>> pattern) {
    return new AdaLoraConfig(lora, targetR, tinit, tfinal, deltaT, beta1, beta2, orthRegWeight, totalStep, pattern);
  }

  /** The rank module {@code m} is built with: its kept triplets under the rank pattern, else init_r. */
  int rankOf(String module) {
    List<Boolean> keep = rankPattern().get(module + ".lora_E");
    return keep == null ? initR() : (int) keep.stream().filter(Boolean::booleanValue).count();
  }

  /**
   * The targeted modules, checked against this config: init_r at most min(in, out), every rank-pattern key names a
   * targeted module.
   *
   * @throws IllegalArgumentException naming the module, its shape and the value
   */
  List<LinearModule> select(GraphRewriter g) {
    List<LinearModule> modules = targets().selectLinear(g, "AdaLoRA");
    Set<String> keys = new HashSet<>();
    for (LinearModule m : modules) {
      long limit = Math.min(m.inFeatures(), m.outFeatures());
      checkArgument(initR() <= limit, "AdaLoRA init_r %s exceeds min(in, out) = %s of module '%s' (in %s, out %s)",
          initR(), limit, m.name(), m.inFeatures(), m.outFeatures());
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
    return own + ModulesToSave.parameterCount(sameDiff, modulesToSave());
  }

  /** Hugging Face PEFT's {@code AdaLoraConfig} fields: LoRA's, with AdaLoRA's added. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = lora.toHfConfig();
    hf.put("peft_type", peftType());
    hf.put("r", 8); // LoraConfig's default, as Hugging Face writes it; AdaLoRA ignores it for init_r
    hf.put("init_r", initR());
    hf.put("target_r", targetR);
    hf.put("tinit", tinit);
    hf.put("tfinal", tfinal);
    hf.put("deltaT", deltaT);
    hf.put("beta1", beta1);
    hf.put("beta2", beta2);
    hf.put("orth_reg_weight", orthRegWeight);
    hf.put("total_step", totalStep);
    hf.put("rank_pattern", rankPattern);
    return hf;
  }

  /** Fields of Hugging Face's AdaLoraConfig that peft4j reads, or knows and may ignore. */
  private static final Set<String> KNOWN_FIELDS = Stream.concat(LoraConfig.KNOWN_FIELDS.stream(), Stream.of("init_r",
      "target_r", "tinit", "tfinal", "deltaT", "beta1", "beta2", "orth_reg_weight", "total_step"))
      .collect(toUnmodifiableSet());

  /**
   * A config from Hugging Face PEFT's {@code adapter_config.json} ({@code peft_type} ADALORA). A missing field takes
   * Hugging Face's default; unknown fields are ignored and returned in {@code ignored}. {@code r} and
   * {@code use_rslora} are ignored, as AdaLoRA ignores them.
   *
   * @throws IllegalArgumentException naming the field, for values of the wrong JSON type, for values peft4j does not
   *     implement (DoRA, trained biases, fan_in_fan_out, alpha_pattern, a regex exclude_modules), or a missing
   *     total_step
   */
  public static AdaLoraConfig fromHf(JsonObject json, Set<String> ignored) {
    JsonFields f = HfConfig.read(json, ignored, KNOWN_FIELDS);
    checkArgument(!f.bool("use_dora", false), "use_dora: AdaLoRA does not support DoRA");
    LoraConfig.requireSupported(f, "alpha_pattern");
    checkArgument(!f.bool("fan_in_fan_out", false), "fan_in_fan_out: true is not supported for AdaLoRA");
    checkArgument(f.has("total_step"), "total_step is missing: AdaLoRA needs it");
    Builder b = builder(f.integer("init_r", 12), f.integer("target_r", 8)).alpha(f.number("lora_alpha", 8))
        .dropout(f.number("lora_dropout", 0.0)).tinit(f.integer("tinit", 0)).tfinal(f.integer("tfinal", 0))
        .deltaT(f.integer("deltaT", 1)).betas(f.number("beta1", 0.85), f.number("beta2", 0.85))
        .orthRegWeight(f.number("orth_reg_weight", 0.5)).totalStep(f.integer("total_step", 0)).readHf(f);
    JsonElement pattern = f.get("rank_pattern");
    if (pattern != null) {
      checkArgument(pattern.isJsonObject(), "rank_pattern must map module keys to lists of booleans, got %s", pattern);
      Map<String, List<Boolean>> p = new LinkedHashMap<>();
      for (Map.Entry<String, JsonElement> e : pattern.getAsJsonObject().entrySet()) {
        checkArgument(e.getValue().isJsonArray() && e.getValue().getAsJsonArray().asList().stream()
            .allMatch(x -> x.isJsonPrimitive() && x.getAsJsonPrimitive().isBoolean()),
            "rank_pattern['%s'] must be a list of booleans, got %s", e.getKey(), e.getValue());
        p.put(e.getKey(), e.getValue().getAsJsonArray().asList().stream().map(JsonElement::getAsBoolean).toList());
      }
      b.rankPattern(p);
    }
    return b.build();
  }

  /** An unmodifiable copy keeping the order of {@code pattern}, which is the order it is saved in. */
  private static Map<String, List<Boolean>> copy(Map<String, List<Boolean>> pattern) {
    Map<String, List<Boolean>> out = new LinkedHashMap<>();
    pattern.forEach((k, v) -> out.put(k, List.copyOf(v)));
    return Collections.unmodifiableMap(out);
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new AdaLora(adapterName, this);
  }

  /** Builds an {@link AdaLoraConfig}; each option can be set once. */
  public static final class Builder extends TargetedConfigBuilder<AdaLoraConfig, Builder> {
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

    @Override
    public AdaLoraConfig build() {
      int ti = tinit == null ? 0 : tinit;
      int tf = tfinal == null ? 0 : tfinal;
      int dt = deltaT == null ? 1 : deltaT;
      double b1 = beta1 == null ? 0.85 : beta1;
      double b2 = beta2 == null ? 0.85 : beta2;
      double w = orthRegWeight == null ? 0.5 : orthRegWeight;
      // AdaLoRA's own values are checked before LoRA's options are built, so that a bad init_r is named init_r
      checkSchedule(initR, targetR, totalStep, ti, tf, dt, b1, b2, w);
      LoraConfig lora = new LoraConfig(initR, alpha == null ? 8 : alpha, dropout == null ? 0 : dropout, false, false,
          targets(), modulesToSave(), seed(), null, false);
      return new AdaLoraConfig(lora, targetR, ti, tf, dt, b1, b2, w, totalStep, rankPattern);
    }
  }
}
