package dev.peft4j.quantum;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

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
    long own = modules.stream().mapToLong(m -> parameterCount(m.inFeatures(), m.outFeatures())).sum();
    return own + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /**
   * The trainable scalars on one target of width {@code in → out}: A(in) + A(out) + K, where A(n) = (L + 1)·Σ (d_i − 1)
   * over the prime factors d_i of n (the angles of one circuit); {@code ParameterBudget.count} uses it.
   *
   * @throws IllegalArgumentException for a width the circuit cannot express (a prime factor above
   *     {@value Circuit#MAX_QUDIT})
   */
  public long parameterCount(long in, long out) {
    return Circuit.angleCount(in, circuitLayers) + Circuit.angleCount(out, circuitLayers) + rank;
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
    Map<String, Object> hf = HfConfig.of(PEFT_TYPE);
    hf.put("r", rank);
    hf.put("circuit_layers", circuitLayers);
    hf.put("scale", scale);
    HfConfig.putTargets(hf, targets, true);
    HfConfig.putModulesToSave(hf, modulesToSave);
    return hf;
  }

  /**
   * A config from an {@code adapter_config.json} written by {@link #toHfConfig()}; a missing circuit_layers is 1 and
   * a missing scale 1.0; unknown fields are returned in {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field: no {@code r}, no {@code target_modules}, a value of the wrong
   *     JSON type, a regex exclude_modules, or a value the builder refuses
   */
  public static QuantumPeftConfig fromHf(JsonObject json, Set<String> ignored) {
    JsonFields f = HfConfig.read(json, ignored, Set.of("r", "circuit_layers", "scale"));
    checkArgument(f.has("r"), "r (the rank K) is missing");
    checkArgument(f.has("target_modules"), "target_modules is missing: peft4j has no per-architecture default targets");
    Builder b = builder(f.integer("r", 0));
    if (f.has("circuit_layers")) {
      b.circuitLayers(f.integer("circuit_layers", 1));
    }
    if (f.has("scale")) {
      b.scale(f.number("scale", 1.0));
    }
    return b.readHf(f).build();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new QuantumPeft(adapterName, this);
  }

  /** Builds a {@link QuantumPeftConfig}; each option can be set once. */
  public static final class Builder extends TargetedConfigBuilder<QuantumPeftConfig, Builder> {
    private final int rank;
    private Integer circuitLayers;
    private Double scale;

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

    /**
     * The config; {@code seed(...)} seeds the initial angles, uniform in [−π, π) (default 0).
     *
     * @throws IllegalArgumentException naming the bad value and the allowed range (see the record's constructor);
     *     K above a target's min(in, out) and widths the circuit cannot express are refused when applied, naming
     *     the module
     */
    @Override
    public QuantumPeftConfig build() {
      return new QuantumPeftConfig(rank, circuitLayers == null ? 1 : circuitLayers, scale == null ? 1.0 : scale,
          targets(), seed(), modulesToSave());
    }
  }
}
