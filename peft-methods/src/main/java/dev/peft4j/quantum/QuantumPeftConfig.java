package dev.peft4j.quantum;

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
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of a Quantum-PEFT adapter; built by {@code Peft.quantumPeft(k)}.
 *
 * <pre>{@code
 * PeftModel m = Peft.quantumPeft(16).circuitLayers(2).target("query", "value").apply(sameDiff);
 * }</pre>
 *
 * @param rank          K, the rank of {@code ΔW = s·U·diag(λ)·Vᵀ}: at most min(in, out) of every target
 * @param circuitLayers L, the entangling layers of each circuit (L + 1 rotation layers)
 * @param scale         s
 * @param targets       the linear layers adapted
 * @param seed          seed of the initial angles
 * @param modulesToSave modules trained in full beside the adapter (HF's {@code modules_to_save})
 * @see QuantumPeft
 */
public record QuantumPeftConfig(int rank, int circuitLayers, double scale, Targets targets, long seed,
    List<String> modulesToSave) implements AdapterConfig {

  /** peft4j's own {@code peft_type}: Hugging Face PEFT has no Quantum-PEFT. */
  public static final String PEFT_TYPE = "QUANTUM_PEFT";

  /**
   * @throws IllegalArgumentException naming the bad value and the allowed range: rank ≤ 0, circuit layers &lt; 1,
   *     scale zero or not finite, no targets
   */
  public QuantumPeftConfig {
    checkArgument(rank > 0, "Quantum-PEFT rank K must be > 0, got %s", rank);
    checkArgument(circuitLayers >= 1, "Quantum-PEFT circuit_layers must be >= 1 (at least one entangling layer), "
        + "got %s", circuitLayers);
    checkArgument(scale != 0 && Double.isFinite(scale), "Quantum-PEFT scale must be finite and non-zero, got %s",
        scale);
    checkArgument(targets != null, "no target modules: call target(...) or targetRegex(...)");
    modulesToSave = List.copyOf(modulesToSave);
  }

  /** A builder for rank {@code k}; validated in {@link Builder#build()}. */
  public static Builder builder(int k) {
    return new Builder(k);
  }

  @Override
  public String peftType() {
    return PEFT_TYPE;
  }

  /**
   * Σ over the targets of A(in) + A(out) + K angles and singular values, A(n) = (L + 1)·Σ (d_i − 1) over the prime
   * factors d_i of n; plus the modules to save.
   *
   * @throws IllegalArgumentException as {@link #requireFits} does
   */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    List<LinearModule> modules = targets.selectLinear(GraphRewriter.of(sameDiff), "Quantum-PEFT");
    requireFits(modules);
    long own = modules.stream().mapToLong(m -> Circuit.angleCount(m.inFeatures(), circuitLayers)
        + Circuit.angleCount(m.outFeatures(), circuitLayers) + rank).sum();
    return own + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /**
   * Checks every target before anything is built.
   *
   * @throws IllegalArgumentException naming the module and both numbers: K above min(in, out), or a width the
   *     circuit cannot express (a prime factor above {@value Circuit#MAX_QUDIT})
   */
  void requireFits(List<LinearModule> modules) {
    for (LinearModule m : modules) {
      long narrowest = Math.min(m.inFeatures(), m.outFeatures());
      checkArgument(rank <= narrowest, "Quantum-PEFT rank K = %s exceeds min(in, out) = min(%s, %s) = %s of module "
          + "'%s'", rank, m.inFeatures(), m.outFeatures(), narrowest, m.name());
      for (long width : new long[] {m.inFeatures(), m.outFeatures()}) {
        try {
          Circuit.of(width, circuitLayers);
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException("module '" + m.name() + "': " + e.getMessage(), e);
        }
      }
    }
  }

  /** peft4j's {@code adapter_config.json} fields for this config, in Hugging Face PEFT's style. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = new LinkedHashMap<>();
    hf.put("peft_type", PEFT_TYPE);
    hf.put("r", rank);
    hf.put("circuit_layers", circuitLayers);
    hf.put("scale", scale);
    hf.put("target_modules", targets.regex().<Object>map(x -> x)
        .orElse(targets.isAllLinear() ? Targets.ALL_LINEAR : targets.entries()));
    hf.put("exclude_modules", targets.excluded().isEmpty() ? null : targets.excluded());
    hf.put("layers_to_transform", targets.layers().isEmpty() ? null : List.copyOf(targets.layers()));
    hf.put("modules_to_save", modulesToSave.isEmpty() ? null : modulesToSave);
    hf.put("task_type", null);
    hf.put("inference_mode", true);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("peft_type", "r", "circuit_layers", "scale",
      "target_modules", "exclude_modules", "layers_to_transform", "modules_to_save", "task_type", "inference_mode",
      "base_model_name_or_path", "revision", "peft_version", "auto_mapping");

  /**
   * A config from an {@code adapter_config.json} written by {@link #toHfConfig()}; a missing circuit_layers is 1 and
   * a missing scale 1.0; unknown fields are returned in {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field: no {@code r}, no {@code target_modules}, a regex
   *     exclude_modules, or a value the builder refuses
   */
  public static QuantumPeftConfig fromHf(JsonObject json, Set<String> ignored) {
    json.keySet().stream().filter(k -> !KNOWN_FIELDS.contains(k)).forEach(ignored::add);
    checkArgument(present(json, "r"), "r (the rank K) is missing");
    JsonElement targets = json.get("target_modules");
    checkArgument(targets != null && !targets.isJsonNull(),
        "target_modules is missing: peft4j has no per-architecture default targets");
    Builder b = builder(json.get("r").getAsInt());
    if (present(json, "circuit_layers")) {
      b.circuitLayers(json.get("circuit_layers").getAsInt());
    }
    if (present(json, "scale")) {
      b.scale(json.get("scale").getAsDouble());
    }
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
    return new QuantumPeft(adapterName, this);
  }

  /** Builds a {@link QuantumPeftConfig}; each option can be set once. */
  public static final class Builder {
    private final int rank;
    private Integer circuitLayers;
    private Double scale;
    private Targets targets;
    private String[] exclude;
    private int[] layers;
    private Long seed;
    private List<String> modulesToSave;

    private Builder(int rank) {
      this.rank = rank;
    }

    /**
     * L, the entangling layers of each circuit; default 1 (the fewest angles: 2·Σ (d_i − 1) per side). Must be ≥ 1.
     */
    public Builder circuitLayers(int layers) {
      checkState(circuitLayers == null, "circuit_layers was already set to %s", circuitLayers);
      this.circuitLayers = layers;
      return this;
    }

    /** The scale s of the update; default 1. Must be finite and non-zero. */
    public Builder scale(double scale) {
      checkState(this.scale == null, "scale was already set to %s", this.scale);
      this.scale = scale;
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

    /** Seed of the initial angles, uniform in [−π, π); default 0. */
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
     * @throws IllegalArgumentException naming the bad value and the allowed range (see the record's constructor);
     *     K above a target's min(in, out) and widths the circuit cannot express are refused when applied, naming
     *     the module
     */
    public QuantumPeftConfig build() {
      Targets t = targets;
      if (t != null && exclude != null) {
        t = t.exclude(exclude);
      }
      if (t != null && layers != null) {
        t = t.layers(layers);
      }
      return new QuantumPeftConfig(rank, circuitLayers == null ? 1 : circuitLayers, scale == null ? 1.0 : scale, t,
          seed == null ? 0 : seed, modulesToSave == null ? List.of() : modulesToSave);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
