package dev.peft4j.lntuning;

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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;

/**
 * The immutable configuration of a LayerNorm-tuning adapter, Hugging Face PEFT's {@code LNTuningConfig}; built by
 * {@code Peft.lnTuning()}.
 *
 * <pre>{@code
 * PeftModel m = Peft.lnTuning().apply(sameDiff);                                  // every norm layer
 * PeftModel a = Peft.lnTuning().target("input_layernorm", "post_attention_layernorm").apply(sameDiff);
 * }</pre>
 *
 * @see LnTuning
 */
public final class LnTuningConfig implements AdapterConfig {

  /** Hugging Face PEFT's peft_type. */
  public static final String PEFT_TYPE = "LN_TUNING";

  private final Targets targets; // null: every norm layer
  private final List<String> modulesToSave;

  private LnTuningConfig(Targets targets, List<String> modulesToSave) {
    this.targets = targets;
    this.modulesToSave = modulesToSave;
  }

  public static Builder builder() {
    return new Builder();
  }

  @Override
  public String peftType() {
    return PEFT_TYPE;
  }

  /** The targeted norm layers; {@code regex(".*")} when every norm layer is (the default). */
  @Override
  public Targets targets() {
    return targets == null ? Targets.regex(".*") : targets;
  }

  @Override
  public List<String> modulesToSave() {
    return modulesToSave;
  }

  /**
   * The norm layers of a graph and their parameters, in graph order: the modules that are not linear layers and
   * whose parameters are all vectors ({@code weight} = γ, and {@code bias} = β for LayerNorm).
   */
  static Map<String, List<String>> normLayers(SameDiff sameDiff, GraphRewriter g) {
    Set<String> linear = new TreeSet<>();
    g.linearModules().forEach((LinearModule m) -> linear.add(m.name()));
    Map<String, List<String>> params = new LinkedHashMap<>();
    Set<String> notNorm = new TreeSet<>(linear);
    for (String module : g.moduleNames()) {
      if (!linear.contains(module)) {
        params.put(module, new ArrayList<>());
      }
    }
    for (SDVariable v : sameDiff.variables()) {
      int dot = v.name().lastIndexOf('.');
      if (dot <= 0 || !params.containsKey(v.name().substring(0, dot))
          || (v.getVariableType() != VariableType.VARIABLE && v.getVariableType() != VariableType.CONSTANT)
          || v.getArr() == null || g.consumersOf(v.name()).isEmpty()) {
        continue;
      }
      String module = v.name().substring(0, dot);
      if (v.getArr().rank() == 1 && v.dataType().isFPType()) {
        params.get(module).add(v.name());
      } else {
        notNorm.add(module);
      }
    }
    params.keySet().removeAll(notNorm);
    params.values().removeIf(List::isEmpty);
    return params;
  }

  /**
   * The targeted norm layers (every one by default) and their parameters, without the modules to save.
   *
   * @throws IllegalArgumentException if the model has no norm layer, if a target matches no module or a module
   *     that is not a norm layer (listing the norm layers that exist), or if nothing is left
   */
  Map<String, List<String>> select(SameDiff sameDiff, GraphRewriter g) {
    Map<String, List<String>> norms = normLayers(sameDiff, g);
    checkArgument(!norms.isEmpty(), "LN tuning trains norm layers (LayerNorm γ and β, RMSNorm γ), but this model "
        + "has no norm layer; modules: %s", g.moduleNames());
    List<String> modules = g.moduleNames();
    List<String> chosen = new ArrayList<>();
    if (targets == null) {
      chosen.addAll(norms.keySet());
    } else if (targets.regex().isPresent()) {
      Pattern p = Pattern.compile(targets.regex().get());
      modules.stream().filter(m -> p.matcher(m).matches()).forEach(chosen::add);
      checkArgument(!chosen.isEmpty(), "target regex '%s' matches no module; norm layers that exist: %s",
          p.pattern(), norms.keySet());
    } else {
      List<String> unmatched = targets.entries().stream()
          .filter(e -> modules.stream().noneMatch(m -> matches(m, e))).toList();
      checkArgument(unmatched.isEmpty(), "LN tuning target modules %s not found in the graph; norm layers that "
          + "exist: %s", unmatched, norms.keySet());
      modules.stream().filter(m -> targets.entries().stream().anyMatch(e -> matches(m, e))).forEach(chosen::add);
    }
    if (targets != null) {
      chosen.removeIf(m -> targets.excluded().stream().anyMatch(e -> matches(m, e)));
      List<String> notNorms = chosen.stream().filter(m -> !norms.containsKey(m)).toList();
      checkArgument(notNorms.isEmpty(), "LN tuning target modules %s are not norm layers (a norm layer's "
          + "parameters are all vectors); norm layers that exist: %s", notNorms, norms.keySet());
    }
    chosen.removeIf(m -> modulesToSave.stream().anyMatch(s -> matches(m, s)));
    checkArgument(!chosen.isEmpty(), "LN tuning: no norm layer left to train (targets %s, modules_to_save %s); norm "
        + "layers that exist: %s", targets(), modulesToSave, norms.keySet());
    Map<String, List<String>> out = new LinkedHashMap<>();
    norms.forEach((m, ps) -> {
      if (chosen.contains(m)) {
        out.put(m, ps);
      }
    });
    return out;
  }

  private static boolean matches(String module, String entry) {
    return module.equals(entry) || module.endsWith("." + entry);
  }

  /** Σ over the chosen norm layers of their vectors' lengths (H for RMSNorm, 2H for LayerNorm), plus modules to save. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    long norms = select(sameDiff, GraphRewriter.of(sameDiff)).values().stream().flatMap(List::stream)
        .mapToLong(p -> sameDiff.getArrForVarName(p).length()).sum();
    return norms + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = new LinkedHashMap<>();
    hf.put("peft_type", PEFT_TYPE);
    hf.put("target_modules", targets == null ? null : targets.regex().<Object>map(x -> x).orElse(targets.entries()));
    hf.put("exclude_modules", targets == null || targets.excluded().isEmpty() ? null : targets.excluded());
    hf.put("modules_to_save", modulesToSave.isEmpty() ? null : modulesToSave);
    hf.put("task_type", null);
    hf.put("inference_mode", true);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("peft_type", "target_modules", "exclude_modules",
      "modules_to_save", "task_type", "inference_mode", "base_model_name_or_path", "revision", "peft_version",
      "auto_mapping");

  /**
   * A config from Hugging Face PEFT's LN tuning {@code adapter_config.json}; unknown fields are returned in
   * {@code ignored}. {@code target_modules: null} (HF then picks by model type) means every norm layer here.
   *
   * @throws IllegalArgumentException naming the field, for a value peft4j cannot read
   */
  public static LnTuningConfig fromHf(JsonObject json, Set<String> ignored) {
    json.keySet().stream().filter(k -> !KNOWN_FIELDS.contains(k)).forEach(ignored::add);
    Builder b = builder();
    JsonElement targets = json.get("target_modules");
    if (targets != null && !targets.isJsonNull()) {
      if (targets.isJsonPrimitive()) {
        b.targetRegex(targets.getAsString());
      } else {
        b.target(strings(targets).toArray(String[]::new));
      }
    }
    JsonElement exclude = json.get("exclude_modules");
    if (exclude != null && !exclude.isJsonNull()) {
      checkArgument(exclude.isJsonArray(), "exclude_modules as a regex is not supported; give a list");
      checkArgument(b.targets != null, "exclude_modules needs target_modules");
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
    return new LnTuning(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof LnTuningConfig c && Objects.equals(targets, c.targets)
        && modulesToSave.equals(c.modulesToSave);
  }

  @Override
  public int hashCode() {
    return Objects.hash(targets, modulesToSave);
  }

  @Override
  public String toString() {
    return "LnTuningConfig{targets=" + (targets == null ? "every norm layer" : targets) + ", modulesToSave="
        + modulesToSave + "}";
  }

  /** Builds an {@link LnTuningConfig}; each option can be set once. */
  public static final class Builder {
    private Targets targets;
    private List<String> modulesToSave;

    private Builder() {}

    /** Norm layers by name (exact or {@code .name} suffix), e.g. {@code "LayerNorm"}; default every norm layer. */
    public Builder target(String... modules) {
      checkState(targets == null, "targets were already set to %s", targets);
      this.targets = Targets.names(modules);
      return this;
    }

    /** Norm layers whose whole name matches {@code regex}; default every norm layer. */
    public Builder targetRegex(String regex) {
      checkState(targets == null, "targets were already set to %s", targets);
      this.targets = Targets.regex(regex);
      return this;
    }

    /**
     * Leaves out norm layers by name (exact or {@code .name} suffix); needs {@code target(...)} first.
     *
     * @throws IllegalStateException if no targets were set
     */
    public Builder exclude(String... modules) {
      checkState(targets != null, "exclude needs target(...) or targetRegex(...) first");
      this.targets = targets.exclude(modules);
      return this;
    }

    /** Modules trained in full beside the norm layers (a task head); default none. */
    public Builder modulesToSave(String... modules) {
      checkState(modulesToSave == null, "modules to save were already set to %s", modulesToSave);
      this.modulesToSave = List.of(modules);
      return this;
    }

    public LnTuningConfig build() {
      return new LnTuningConfig(targets, modulesToSave == null ? List.of() : modulesToSave);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
