package dev.peft4j.bitfit;

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
 * The immutable configuration of a BitFit adapter; built by {@code Peft.bitFit()}.
 *
 * <pre>{@code
 * PeftModel m = Peft.bitFit().modulesToSave("classifier").apply(sameDiff);            // every linear layer's bias
 * PeftModel q = Peft.bitFit().target("query", "intermediate.dense").apply(sameDiff);  // the BitFit paper's subset
 * }</pre>
 *
 * @see BitFit
 */
public final class BitFitConfig implements AdapterConfig {

  /** The peft_type of BitFit files (Hugging Face PEFT has no BitFit). */
  public static final String PEFT_TYPE = "BITFIT";

  private final Targets targets; // null: every linear layer
  private final List<String> modulesToSave;

  private BitFitConfig(Targets targets, List<String> modulesToSave) {
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

  /** The targeted linear layers; {@code regex(".*")} when every linear layer is (the default). */
  @Override
  public Targets targets() {
    return targets == null ? Targets.regex(".*") : targets;
  }

  /** Whether every linear layer is targeted (no {@code target(...)} given). */
  public boolean targetsAllLinearLayers() {
    return targets == null;
  }

  @Override
  public List<String> modulesToSave() {
    return modulesToSave;
  }

  /**
   * The linear layers whose bias trains, in graph order: the targeted ones (every linear layer by default) that have
   * a bias, without the modules to save (trained in full anyway).
   *
   * @throws IllegalArgumentException if no linear layer of the graph has a bias (the Llama/Qwen family), if a
   *     target named explicitly has no bias (listing the layers that have one), or if nothing is left
   */
  List<LinearModule> select(GraphRewriter g) {
    List<LinearModule> all = g.linearModules();
    List<String> withBias = all.stream().filter(LinearModule::hasBias).map(LinearModule::name).toList();
    checkArgument(!withBias.isEmpty(), "BitFit trains the biases of linear layers, but this model's linear layers "
        + "have no biases (e.g. the Llama/Qwen family); linear layers: %s. Train norm layers with "
        + "Peft.lnTuning() or use Peft.lora(...) instead", all.stream().map(LinearModule::name).toList());
    List<LinearModule> targeted = targets == null ? all : targets.selectLinear(g, "BitFit");
    if (targets != null && targets.regex().isEmpty() && !targets.isAllLinear()) {
      List<String> biasFree = targeted.stream().filter(m -> !m.hasBias()).map(LinearModule::name).toList();
      checkArgument(biasFree.isEmpty(), "BitFit target modules %s have no bias (they use no bias parameter); "
          + "linear layers with a bias: %s", biasFree, withBias);
    }
    List<LinearModule> chosen = targeted.stream().filter(LinearModule::hasBias)
        .filter(m -> modulesToSave.stream().noneMatch(s -> m.name().equals(s) || m.name().endsWith("." + s)))
        .toList();
    checkArgument(!chosen.isEmpty(), "BitFit: none of the targeted linear layers %s has a bias outside "
        + "modules_to_save %s; linear layers with a bias: %s", targeted.stream().map(LinearModule::name).toList(),
        modulesToSave, withBias);
    return chosen;
  }

  /** Σ out over the chosen layers (one bias each), plus the modules to save. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    long biases = select(GraphRewriter.of(sameDiff)).stream().mapToLong(LinearModule::outFeatures).sum();
    return biases + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = new LinkedHashMap<>();
    hf.put("peft_type", PEFT_TYPE);
    hf.put("target_modules", targets == null ? null : targets.regex().<Object>map(x -> x)
        .orElse(targets.isAllLinear() ? Targets.ALL_LINEAR : targets.entries()));
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
   * A config from a BitFit {@code adapter_config.json} written by {@link dev.peft4j.PeftModel#save}; unknown fields
   * are returned in {@code ignored}. {@code target_modules: null} means every linear layer.
   *
   * @throws IllegalArgumentException naming the field, for a value peft4j cannot read
   */
  public static BitFitConfig fromHf(JsonObject json, Set<String> ignored) {
    json.keySet().stream().filter(k -> !KNOWN_FIELDS.contains(k)).forEach(ignored::add);
    Builder b = builder();
    JsonElement targets = json.get("target_modules");
    if (targets != null && !targets.isJsonNull()) {
      if (targets.isJsonPrimitive()) {
        b.targets = targets.getAsString().equals(Targets.ALL_LINEAR) ? Targets.names(Targets.ALL_LINEAR)
            : Targets.regex(targets.getAsString());
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
    return new BitFit(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof BitFitConfig c && Objects.equals(targets, c.targets) && modulesToSave.equals(c.modulesToSave);
  }

  @Override
  public int hashCode() {
    return Objects.hash(targets, modulesToSave);
  }

  @Override
  public String toString() {
    return "BitFitConfig{targets=" + (targets == null ? "every linear layer" : targets) + ", modulesToSave="
        + modulesToSave + "}";
  }

  /** Builds a {@link BitFitConfig}; each option can be set once. */
  public static final class Builder {
    private Targets targets;
    private List<String> modulesToSave;

    private Builder() {}

    /**
     * Linear layers whose biases train, by name (exact or {@code .name} suffix) or {@code "all-linear"} (every one
     * but the output head); default every linear layer that has a bias.
     */
    public Builder target(String... modules) {
      checkState(targets == null, "targets were already set to %s", targets);
      this.targets = Targets.names(modules);
      return this;
    }

    /** Linear layers whose whole name matches {@code regex}; default every linear layer. */
    public Builder targetRegex(String regex) {
      checkState(targets == null, "targets were already set to %s", targets);
      this.targets = Targets.regex(regex);
      return this;
    }

    /** Modules trained in full beside the biases (a task head); default none. */
    public Builder modulesToSave(String... modules) {
      checkState(modulesToSave == null, "modules to save were already set to %s", modulesToSave);
      this.modulesToSave = List.of(modules);
      return this;
    }

    public BitFitConfig build() {
      return new BitFitConfig(targets, modulesToSave == null ? List.of() : modulesToSave);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
