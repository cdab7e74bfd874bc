package dev.peft4j.ia3;

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
 * The immutable configuration of an IA³ adapter; built by {@code Peft.ia3()}.
 *
 * <pre>{@code
 * PeftModel m = Peft.ia3().target("k_proj", "v_proj", "down_proj").feedforward("down_proj").apply(sameDiff);
 * }</pre>
 *
 * @see Ia3
 */
public final class Ia3Config implements AdapterConfig {

  private final Targets targets;
  private final List<String> feedforward;
  private final List<String> modulesToSave;

  private Ia3Config(Targets targets, List<String> feedforward, List<String> modulesToSave) {
    this.targets = targets;
    this.feedforward = feedforward;
    this.modulesToSave = modulesToSave;
  }

  public static Builder builder() {
    return new Builder();
  }

  @Override
  public String peftType() {
    return "IA3";
  }

  @Override
  public Targets targets() {
    return targets;
  }

  /** Targets whose input (not output) is rescaled, as HF's {@code feedforward_modules}. */
  public List<String> feedforward() {
    return feedforward;
  }

  @Override
  public List<String> modulesToSave() {
    return modulesToSave;
  }

  /** Whether module {@code name} is a feed-forward target (exact name or {@code .entry} suffix). */
  boolean isFeedforward(String name) {
    return feedforward.stream().anyMatch(f -> name.equals(f) || name.endsWith("." + f));
  }

  /** Σ out over attention-style targets + Σ in over feed-forward ones, plus the modules to save. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    long vectors = targets.selectLinear(GraphRewriter.of(sameDiff), "IA³").stream()
        .mapToLong((LinearModule m) -> isFeedforward(m.name()) ? m.inFeatures() : m.outFeatures()).sum();
    return vectors + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = new LinkedHashMap<>();
    hf.put("peft_type", peftType());
    hf.put("target_modules", targets.regex().<Object>map(x -> x)
        .orElse(targets.isAllLinear() ? Targets.ALL_LINEAR : targets.entries()));
    hf.put("exclude_modules", targets.excluded().isEmpty() ? null : targets.excluded());
    hf.put("feedforward_modules", feedforward);
    hf.put("modules_to_save", modulesToSave.isEmpty() ? null : modulesToSave);
    hf.put("fan_in_fan_out", false);
    hf.put("init_ia3_weights", true);
    hf.put("task_type", null);
    hf.put("inference_mode", true);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("peft_type", "target_modules", "exclude_modules",
      "feedforward_modules", "modules_to_save", "fan_in_fan_out", "init_ia3_weights", "task_type", "inference_mode",
      "base_model_name_or_path", "revision", "peft_version", "auto_mapping", "target_parameters");

  /**
   * A config from Hugging Face PEFT's IA³ {@code adapter_config.json}; unknown fields are returned in
   * {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field, for what peft4j does not implement
   */
  public static Ia3Config fromHf(JsonObject json, Set<String> ignored) {
    json.keySet().stream().filter(k -> !KNOWN_FIELDS.contains(k)).forEach(ignored::add);
    checkArgument(!json.has("fan_in_fan_out") || json.get("fan_in_fan_out").isJsonNull()
        || !json.get("fan_in_fan_out").getAsBoolean(), "fan_in_fan_out: true is not supported");
    JsonElement targets = json.get("target_modules");
    checkArgument(targets != null && !targets.isJsonNull(), "target_modules is missing");
    Builder b = builder();
    if (targets.isJsonPrimitive()) {
      b.targets = targets.getAsString().equals(Targets.ALL_LINEAR) ? Targets.names(Targets.ALL_LINEAR)
          : Targets.regex(targets.getAsString());
    } else {
      b.target(strings(targets).toArray(String[]::new));
    }
    JsonElement ff = json.get("feedforward_modules");
    if (ff != null && !ff.isJsonNull()) {
      checkArgument(ff.isJsonArray(), "feedforward_modules as a regex is not supported; give a list");
      b.feedforward(strings(ff).toArray(String[]::new));
    }
    JsonElement exclude = json.get("exclude_modules");
    if (exclude != null && !exclude.isJsonNull()) {
      checkArgument(exclude.isJsonArray(), "exclude_modules as a regex is not supported; give a list");
      b.targets = b.targets.exclude(strings(exclude).toArray(String[]::new));
    }
    JsonElement save = json.get("modules_to_save");
    if (save != null && !save.isJsonNull()) {
      b.modulesToSave(strings(save).toArray(String[]::new));
    }
    return b.build();
  }

  private static List<String> strings(JsonElement e) {
    return e.getAsJsonArray().asList().stream().map(JsonElement::getAsString).toList();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new Ia3(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Ia3Config c && targets.equals(c.targets) && feedforward.equals(c.feedforward)
        && modulesToSave.equals(c.modulesToSave);
  }

  @Override
  public int hashCode() {
    return Objects.hash(targets, feedforward, modulesToSave);
  }

  @Override
  public String toString() {
    return "Ia3Config{targets=" + targets + ", feedforward=" + feedforward + ", modulesToSave=" + modulesToSave + "}";
  }

  /** Builds an {@link Ia3Config}; each option can be set once. */
  public static final class Builder {
    private Targets targets;
    private List<String> feedforward;
    private List<String> modulesToSave;

    private Builder() {}

    /** Target modules by name (exact or {@code .name} suffix), or {@code "all-linear"}. Required. */
    public Builder target(String... modules) {
      checkState(targets == null, "targets were already set to %s", targets);
      this.targets = Targets.names(modules);
      return this;
    }

    /** Targets whose input is rescaled instead of their output (HF's feedforward_modules); default none. */
    public Builder feedforward(String... modules) {
      checkState(feedforward == null, "feedforward modules were already set to %s", feedforward);
      this.feedforward = List.of(modules);
      return this;
    }

    /** Modules trained in full beside the adapter; default none. */
    public Builder modulesToSave(String... modules) {
      checkState(modulesToSave == null, "modules to save were already set to %s", modulesToSave);
      this.modulesToSave = List.of(modules);
      return this;
    }

    /**
     * @throws IllegalArgumentException if no targets are set, or a feed-forward module is not among the targets
     */
    public Ia3Config build() {
      checkArgument(targets != null, "no target modules: call target(...)");
      List<String> ff = feedforward == null ? List.of() : feedforward;
      if (!targets.isAllLinear() && targets.regex().isEmpty()) {
        for (String f : ff) {
          checkArgument(targets.entries().stream().anyMatch(t -> t.equals(f) || t.endsWith("." + f)
              || f.endsWith("." + t)), "feedforward module '%s' is not among the targets %s", f, targets.entries());
        }
      }
      return new Ia3Config(targets, ff, modulesToSave == null ? List.of() : modulesToSave);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
