package dev.peft4j.vera;

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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of a VeRA adapter; built by {@code Peft.vera(r)}.
 *
 * <pre>{@code
 * PeftModel m = Peft.vera(256).target("q_proj", "v_proj").projectionSeed(0).apply(sameDiff);
 * }</pre>
 *
 * @see Vera
 */
public final class VeraConfig implements AdapterConfig {

  private final int r;
  private final Targets targets;
  private final long projectionSeed;
  private final boolean saveProjection;
  private final double dInitial;
  private final double dropout;
  private final List<String> modulesToSave;

  private VeraConfig(int r, Targets targets, long projectionSeed, boolean saveProjection, double dInitial,
      double dropout, List<String> modulesToSave) {
    this.r = r;
    this.targets = targets;
    this.projectionSeed = projectionSeed;
    this.saveProjection = saveProjection;
    this.dInitial = dInitial;
    this.dropout = dropout;
    this.modulesToSave = modulesToSave;
  }

  /** A builder for rank {@code r}; validated in {@link Builder#build()}. */
  public static Builder builder(int r) {
    return new Builder(r);
  }

  @Override
  public String peftType() {
    return "VERA";
  }

  /** The rank r of the shared projections. */
  public int r() {
    return r;
  }

  @Override
  public Targets targets() {
    return targets;
  }

  /** The seed of the shared projections, Hugging Face's {@code projection_prng_key}. */
  public long projectionSeed() {
    return projectionSeed;
  }

  /**
   * Whether the saved file holds the projections ({@code save_projection}); always for configs peft4j builds. A file
   * without them is loaded by drawing them from the seed, as torch does.
   */
  public boolean saveProjection() {
    return saveProjection;
  }

  /** The initial value of every entry of d ({@code d_initial}). */
  public double dInitial() {
    return dInitial;
  }

  /** Probability of zeroing an input element of the branch while training ({@code vera_dropout}). */
  public double dropout() {
    return dropout;
  }

  @Override
  public List<String> modulesToSave() {
    return modulesToSave;
  }

  /** Σ (r + out) over the targeted linear layers (d and b), plus the modules to save; the projections are frozen. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    long vectors = targets.selectLinear(GraphRewriter.of(sameDiff), "VeRA").stream()
        .mapToLong((LinearModule m) -> r + m.outFeatures()).sum();
    return vectors + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /** Hugging Face PEFT's {@code VeraConfig} fields for this config. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = new LinkedHashMap<>();
    hf.put("peft_type", peftType());
    hf.put("r", r);
    hf.put("target_modules", targets.regex().<Object>map(x -> x)
        .orElse(targets.isAllLinear() ? Targets.ALL_LINEAR : targets.entries()));
    hf.put("exclude_modules", targets.excluded().isEmpty() ? null : targets.excluded());
    hf.put("layers_to_transform", targets.layers().isEmpty() ? null : List.copyOf(targets.layers()));
    hf.put("projection_prng_key", projectionSeed);
    hf.put("save_projection", saveProjection);
    hf.put("vera_dropout", dropout);
    hf.put("d_initial", dInitial);
    hf.put("modules_to_save", modulesToSave.isEmpty() ? null : modulesToSave);
    hf.put("bias", "none");
    hf.put("fan_in_fan_out", false);
    hf.put("init_weights", true);
    hf.put("task_type", null);
    hf.put("inference_mode", true);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("peft_type", "r", "target_modules", "exclude_modules",
      "layers_to_transform", "layers_pattern", "projection_prng_key", "save_projection", "vera_dropout", "d_initial",
      "modules_to_save", "bias", "fan_in_fan_out", "init_weights", "task_type", "inference_mode",
      "base_model_name_or_path", "revision", "peft_version", "auto_mapping", "target_parameters");

  /**
   * A config from Hugging Face PEFT's VeRA {@code adapter_config.json}; a missing field takes Hugging Face's default
   * (r = 256, seed 0, projections saved, d_initial 0.1); unknown fields are returned in {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field, for what peft4j does not implement (trained biases,
   *     fan_in_fan_out, a regex exclude_modules)
   */
  public static VeraConfig fromHf(JsonObject json, Set<String> ignored) {
    json.keySet().stream().filter(k -> !KNOWN_FIELDS.contains(k)).forEach(ignored::add);
    checkArgument(!bool(json, "fan_in_fan_out", false), "fan_in_fan_out: true is not supported");
    checkArgument(string(json, "bias", "none").equals("none"), "bias '%s' is not supported; only 'none'",
        string(json, "bias", "none"));
    JsonElement targets = json.get("target_modules");
    checkArgument(targets != null && !targets.isJsonNull(),
        "target_modules is missing: peft4j has no per-architecture default targets");
    Builder b = builder(json.has("r") && !json.get("r").isJsonNull() ? json.get("r").getAsInt() : 256)
        .dInitial(number(json, "d_initial", 0.1)).dropout(number(json, "vera_dropout", 0.0));
    if (json.has("projection_prng_key") && !json.get("projection_prng_key").isJsonNull()) {
      b.projectionSeed(json.get("projection_prng_key").getAsLong());
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
    b.saveProjection = bool(json, "save_projection", true);
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

  private static double number(JsonObject json, String field, double fallback) {
    return json.has(field) && !json.get(field).isJsonNull() ? json.get(field).getAsDouble() : fallback;
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new Vera(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof VeraConfig c && r == c.r && targets.equals(c.targets) && projectionSeed == c.projectionSeed
        && saveProjection == c.saveProjection && dInitial == c.dInitial && dropout == c.dropout
        && modulesToSave.equals(c.modulesToSave);
  }

  @Override
  public int hashCode() {
    return Objects.hash(r, targets, projectionSeed, saveProjection, dInitial, dropout, modulesToSave);
  }

  @Override
  public String toString() {
    return "VeraConfig{r=" + r + ", targets=" + targets + ", projectionSeed=" + projectionSeed + ", saveProjection="
        + saveProjection + ", dInitial=" + dInitial + ", dropout=" + dropout + ", modulesToSave=" + modulesToSave + "}";
  }

  /** Builds a {@link VeraConfig}; each option can be set once. */
  public static final class Builder {
    private final int r;
    private Targets targets;
    private String[] exclude;
    private int[] layers;
    private Long projectionSeed;
    private Double dInitial;
    private Double dropout;
    private List<String> modulesToSave;
    private boolean saveProjection = true;

    private Builder(int r) {
      this.r = r;
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

    /**
     * Seed of the shared projections, Hugging Face's {@code projection_prng_key}; default 0. The same seed draws the
     * same projections as Hugging Face PEFT (torch's generator is reproduced).
     */
    public Builder projectionSeed(long seed) {
      checkState(projectionSeed == null, "projection seed was already set to %s", projectionSeed);
      this.projectionSeed = seed;
      return this;
    }

    /** The initial value of every entry of d, Hugging Face's {@code d_initial}; default 0.1. Must be finite. */
    public Builder dInitial(double value) {
      checkState(dInitial == null, "d_initial was already set to %s", dInitial);
      this.dInitial = value;
      return this;
    }

    /** Dropout on the branch's input while training, HF's {@code vera_dropout}; default 0. Must be in [0, 1). */
    public Builder dropout(double p) {
      checkState(dropout == null, "dropout was already set to %s", dropout);
      this.dropout = p;
      return this;
    }

    /** Modules (e.g. a task head) trained in full beside the adapter, as HF's {@code modules_to_save}; default none. */
    public Builder modulesToSave(String... modules) {
      checkState(modulesToSave == null, "modules to save were already set to %s", modulesToSave);
      this.modulesToSave = List.of(modules);
      return this;
    }

    /**
     * @throws IllegalArgumentException naming the bad value: r ≤ 0, d_initial not finite, dropout outside [0, 1), no
     *     targets
     */
    public VeraConfig build() {
      checkArgument(r > 0, "VeRA rank r must be > 0, got %s", r);
      double d = dInitial == null ? 0.1 : dInitial;
      checkArgument(Double.isFinite(d), "d_initial must be finite, got %s", d);
      double p = dropout == null ? 0 : dropout;
      checkArgument(p >= 0 && p < 1, "vera dropout must be in [0, 1), got %s", p);
      checkArgument(targets != null, "no target modules: call target(...) or targetRegex(...)");
      Targets t = targets;
      if (exclude != null) {
        t = t.exclude(exclude);
      }
      if (layers != null) {
        t = t.layers(layers);
      }
      return new VeraConfig(r, t, projectionSeed == null ? 0 : projectionSeed, saveProjection, d, p,
          modulesToSave == null ? List.of() : modulesToSave);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
