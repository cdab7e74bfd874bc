package dev.peft4j.fourierft;

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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of a FourierFT adapter; built by {@code Peft.fourierFt(nFrequency)}.
 *
 * <pre>{@code
 * PeftModel m = Peft.fourierFt(1000).scaling(150).target("q_proj", "v_proj").apply(sameDiff);
 * }</pre>
 *
 * @see FourierFt
 */
public final class FourierFtConfig implements AdapterConfig {

  private final int nFrequency;
  private final double scaling;
  private final long randomLocSeed;
  private final boolean zeroInit;
  private final long seed;
  private final Targets targets;
  private final List<String> modulesToSave;

  private FourierFtConfig(int nFrequency, double scaling, long randomLocSeed, boolean zeroInit, long seed,
      Targets targets, List<String> modulesToSave) {
    this.nFrequency = nFrequency;
    this.scaling = scaling;
    this.randomLocSeed = randomLocSeed;
    this.zeroInit = zeroInit;
    this.seed = seed;
    this.targets = targets;
    this.modulesToSave = modulesToSave;
  }

  /** A builder for {@code nFrequency} learned coefficients per layer; validated in {@link Builder#build()}. */
  public static Builder builder(int nFrequency) {
    return new Builder(nFrequency);
  }

  @Override
  public String peftType() {
    return "FOURIERFT";
  }

  /** Learned spectral coefficients per targeted layer ({@code n_frequency}). */
  public int nFrequency() {
    return nFrequency;
  }

  /** The factor on the inverse transform ({@code scaling}). */
  public double scaling() {
    return scaling;
  }

  /** Seed of the frequency positions ({@code random_loc_seed}); torch's {@code randperm} is reproduced. */
  public long randomLocSeed() {
    return randomLocSeed;
  }

  /** Whether the spectrum starts at zero (the adapted model then starts equal to the base), HF's init_weights. */
  public boolean zeroInit() {
    return zeroInit;
  }

  /** Seed of the initial N(0, 1) spectrum when not {@link #zeroInit()}. */
  public long seed() {
    return seed;
  }

  @Override
  public Targets targets() {
    return targets;
  }

  @Override
  public List<String> modulesToSave() {
    return modulesToSave;
  }

  /** n_frequency per targeted linear layer, plus the modules to save. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    long layers = targets.selectLinear(GraphRewriter.of(sameDiff), "FourierFT").size();
    return layers * nFrequency + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /** Hugging Face PEFT's {@code FourierFTConfig} fields for this config. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = new LinkedHashMap<>();
    hf.put("peft_type", peftType());
    hf.put("n_frequency", nFrequency);
    hf.put("scaling", scaling);
    hf.put("random_loc_seed", randomLocSeed);
    hf.put("target_modules", targets.regex().<Object>map(x -> x)
        .orElse(targets.isAllLinear() ? Targets.ALL_LINEAR : targets.entries()));
    hf.put("exclude_modules", targets.excluded().isEmpty() ? null : targets.excluded());
    hf.put("layers_to_transform", targets.layers().isEmpty() ? null : List.copyOf(targets.layers()));
    hf.put("modules_to_save", modulesToSave.isEmpty() ? null : modulesToSave);
    hf.put("n_frequency_pattern", Map.of());
    hf.put("init_weights", zeroInit);
    hf.put("bias", "none");
    hf.put("fan_in_fan_out", false);
    hf.put("task_type", null);
    hf.put("inference_mode", true);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("peft_type", "n_frequency", "scaling", "random_loc_seed",
      "target_modules", "exclude_modules", "layers_to_transform", "layers_pattern", "modules_to_save",
      "n_frequency_pattern", "init_weights", "bias", "fan_in_fan_out", "task_type", "inference_mode", "alpha",
      "ifft2_norm", "base_model_name_or_path", "revision", "peft_version", "auto_mapping", "target_parameters");

  /**
   * A config from Hugging Face PEFT's FourierFT {@code adapter_config.json}; a missing field takes Hugging Face's
   * default (n_frequency 1000, scaling 150, random_loc_seed 777); unknown fields are returned in {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field, for what peft4j does not implement (per-module
   *     n_frequency_pattern, alpha, an ifft2_norm other than "backward", trained biases, fan_in_fan_out, a regex
   *     exclude_modules)
   */
  public static FourierFtConfig fromHf(JsonObject json, Set<String> ignored) {
    json.keySet().stream().filter(k -> !KNOWN_FIELDS.contains(k)).forEach(ignored::add);
    checkArgument(!present(json, "fan_in_fan_out") || !json.get("fan_in_fan_out").getAsBoolean(),
        "fan_in_fan_out: true is not supported");
    String bias = present(json, "bias") ? json.get("bias").getAsString() : "none";
    checkArgument(bias.equals("none"), "bias '%s' is not supported; only 'none'", bias);
    checkArgument(!present(json, "n_frequency_pattern") || json.getAsJsonObject("n_frequency_pattern").size() == 0,
        "n_frequency_pattern: per-module values are not supported");
    checkArgument(!present(json, "alpha"), "alpha (n_frequency as a fraction of in·out) is not supported; give "
        + "n_frequency");
    String norm = present(json, "ifft2_norm") ? json.get("ifft2_norm").getAsString() : "backward";
    checkArgument(norm.equals("backward"), "ifft2_norm '%s' is not supported; only 'backward'", norm);
    JsonElement targets = json.get("target_modules");
    checkArgument(targets != null && !targets.isJsonNull(),
        "target_modules is missing: peft4j has no per-architecture default targets");
    Builder b = builder(present(json, "n_frequency") ? json.get("n_frequency").getAsInt() : 1000);
    if (present(json, "scaling")) {
      b.scaling(json.get("scaling").getAsDouble());
    }
    if (present(json, "random_loc_seed")) {
      b.randomLocSeed(json.get("random_loc_seed").getAsLong());
    }
    if (present(json, "init_weights") && json.get("init_weights").getAsBoolean()) {
      b.zeroInit();
    }
    if (targets.isJsonPrimitive()) {
      String value = targets.getAsString();
      b.targets = value.equals(Targets.ALL_LINEAR) ? Targets.names(Targets.ALL_LINEAR) : Targets.regex(value);
    } else {
      b.target(strings(targets, "target_modules").toArray(String[]::new));
    }
    JsonElement exclude = json.get("exclude_modules");
    if (exclude != null && !exclude.isJsonNull()) {
      checkArgument(exclude.isJsonArray(), "exclude_modules as a regex is not supported; give a list");
      b.exclude(strings(exclude, "exclude_modules").toArray(String[]::new));
    }
    JsonElement layers = json.get("layers_to_transform");
    if (layers != null && !layers.isJsonNull()) {
      b.layers(layers.isJsonArray() ? layers.getAsJsonArray().asList().stream().mapToInt(JsonElement::getAsInt)
          .toArray() : new int[] {layers.getAsInt()});
    }
    JsonElement save = json.get("modules_to_save");
    if (save != null && !save.isJsonNull()) {
      b.modulesToSave(strings(save, "modules_to_save").toArray(String[]::new));
    }
    return b.build();
  }

  private static boolean present(JsonObject json, String field) {
    return json.has(field) && !json.get(field).isJsonNull();
  }

  private static List<String> strings(JsonElement e, String field) {
    checkArgument(e.isJsonArray(), "%s must be a list of strings, got %s", field, e);
    return e.getAsJsonArray().asList().stream().map(JsonElement::getAsString).toList();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new FourierFt(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof FourierFtConfig c && nFrequency == c.nFrequency && scaling == c.scaling
        && randomLocSeed == c.randomLocSeed && zeroInit == c.zeroInit && seed == c.seed && targets.equals(c.targets)
        && modulesToSave.equals(c.modulesToSave);
  }

  @Override
  public int hashCode() {
    return Objects.hash(nFrequency, scaling, randomLocSeed, zeroInit, seed, targets, modulesToSave);
  }

  @Override
  public String toString() {
    return "FourierFtConfig{nFrequency=" + nFrequency + ", scaling=" + scaling + ", randomLocSeed=" + randomLocSeed
        + ", zeroInit=" + zeroInit + ", seed=" + seed + ", targets=" + targets + ", modulesToSave=" + modulesToSave
        + "}";
  }

  /** Builds a {@link FourierFtConfig}; each option can be set once. */
  public static final class Builder {
    private final int nFrequency;
    private Double scaling;
    private Long randomLocSeed;
    private boolean zeroInit;
    private Long seed;
    private Targets targets;
    private String[] exclude;
    private int[] layers;
    private List<String> modulesToSave;

    private Builder(int nFrequency) {
      this.nFrequency = nFrequency;
    }

    /** The factor on the inverse transform, HF's {@code scaling}; default 150. Must be finite and non-zero. */
    public Builder scaling(double scaling) {
      checkState(this.scaling == null, "scaling was already set to %s", this.scaling);
      this.scaling = scaling;
      return this;
    }

    /**
     * Seed of the frequency positions, HF's {@code random_loc_seed}; default 777. The same seed picks the same
     * positions as Hugging Face PEFT (torch's {@code randperm} is reproduced).
     */
    public Builder randomLocSeed(long seed) {
      checkState(randomLocSeed == null, "random_loc_seed was already set to %s", randomLocSeed);
      this.randomLocSeed = seed;
      return this;
    }

    /**
     * Start the spectrum at zero, so that the adapted model starts equal to the base (HF's {@code init_weights=True}).
     * Default: N(0, 1) coefficients, as Hugging Face PEFT (drawn from {@link #seed}, not from torch's global
     * generator).
     */
    public Builder zeroInit() {
      checkState(!zeroInit, "zeroInit was already set");
      this.zeroInit = true;
      return this;
    }

    /** Seed of the initial N(0, 1) spectrum (unused with {@link #zeroInit()}); default 0. */
    public Builder seed(long seed) {
      checkState(this.seed == null, "seed was already set to %s", this.seed);
      this.seed = seed;
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

    /** Modules (e.g. a task head) trained in full beside the adapter, as HF's {@code modules_to_save}; default none. */
    public Builder modulesToSave(String... modules) {
      checkState(modulesToSave == null, "modules to save were already set to %s", modulesToSave);
      this.modulesToSave = List.of(modules);
      return this;
    }

    /**
     * @throws IllegalArgumentException naming the bad value: n_frequency ≤ 0, scaling zero or not finite, no targets
     *     (n_frequency above a target's in·out is refused when applied, naming the module)
     */
    public FourierFtConfig build() {
      checkArgument(nFrequency > 0, "FourierFT n_frequency must be > 0, got %s", nFrequency);
      double s = scaling == null ? 150 : scaling;
      checkArgument(s != 0 && Double.isFinite(s), "FourierFT scaling must be finite and non-zero, got %s", s);
      checkArgument(targets != null, "no target modules: call target(...) or targetRegex(...)");
      Targets t = targets;
      if (exclude != null) {
        t = t.exclude(exclude);
      }
      if (layers != null) {
        t = t.layers(layers);
      }
      return new FourierFtConfig(nFrequency, s, randomLocSeed == null ? 777 : randomLocSeed, zeroInit,
          seed == null ? 0 : seed, t, modulesToSave == null ? List.of() : modulesToSave);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
