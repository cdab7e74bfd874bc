package dev.peft4j.vera;

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
 * The immutable configuration of a VeRA adapter; built by {@code Peft.vera(r)}.
 *
 * <pre>{@code
 * PeftModel m = Peft.vera(256).target("q_proj", "v_proj").projectionSeed(0).apply(sameDiff);
 * }</pre>
 *
 * @param r              the rank r of the shared projections, &gt; 0
 * @param projectionSeed the seed of the shared projections, Hugging Face's {@code projection_prng_key} (default 0)
 * @param saveProjection whether the saved file holds the projections ({@code save_projection}); always for configs
 *                       peft4j builds. A file without them is loaded by drawing them from the seed, as torch does.
 * @param dInitial       the initial value of every entry of d ({@code d_initial}), finite (default 0.1)
 * @param dropout        probability of zeroing an input element of the branch while training ({@code vera_dropout}),
 *                       in [0, 1) (default 0)
 * @param targets        the adapted linear layers
 * @param modulesToSave  modules trained in full beside the adapter
 * @see Vera
 */
public record VeraConfig(int r, long projectionSeed, boolean saveProjection, double dInitial, double dropout,
    Targets targets, List<String> modulesToSave) implements AdapterConfig {

  /**
   * @throws IllegalArgumentException naming the bad value: r ≤ 0, d_initial not finite, dropout outside [0, 1), no
   *     targets
   */
  public VeraConfig {
    checkArgument(r > 0, "VeRA rank r must be > 0, got %s", r);
    checkArgument(Double.isFinite(dInitial), "d_initial must be finite, got %s", dInitial);
    checkArgument(dropout >= 0 && dropout < 1, "vera dropout must be in [0, 1), got %s", dropout);
    checkArgument(targets != null, "no target modules: call target(...) or targetRegex(...)");
    modulesToSave = List.copyOf(modulesToSave);
  }

  /** A builder for rank {@code r}; validated in {@link Builder#build()}. */
  public static Builder builder(int r) {
    return new Builder(r);
  }

  @Override
  public String peftType() {
    return "VERA";
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
    Map<String, Object> hf = HfConfig.of(peftType());
    hf.put("r", r);
    HfConfig.putTargets(hf, targets, true);
    hf.put("projection_prng_key", projectionSeed);
    hf.put("save_projection", saveProjection);
    hf.put("vera_dropout", dropout);
    hf.put("d_initial", dInitial);
    HfConfig.putModulesToSave(hf, modulesToSave);
    hf.put("bias", "none");
    hf.put("fan_in_fan_out", false);
    hf.put("init_weights", true);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("r", "layers_pattern", "projection_prng_key",
      "save_projection", "vera_dropout", "d_initial", "bias", "fan_in_fan_out", "init_weights", "target_parameters");

  /**
   * A config from Hugging Face PEFT's VeRA {@code adapter_config.json}; a missing field takes Hugging Face's default
   * (r = 256, seed 0, projections saved, d_initial 0.1); unknown fields are returned in {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field, for values of the wrong JSON type and for what peft4j does not
   *     implement (trained biases, fan_in_fan_out, a regex exclude_modules)
   */
  public static VeraConfig fromHf(JsonObject json, Set<String> ignored) {
    JsonFields f = HfConfig.read(json, ignored, KNOWN_FIELDS);
    checkArgument(!f.bool("fan_in_fan_out", false), "fan_in_fan_out: true is not supported");
    checkArgument(f.string("bias", "none").equals("none"), "bias '%s' is not supported; only 'none'",
        f.string("bias", "none"));
    checkArgument(f.has("target_modules"), "target_modules is missing: peft4j has no per-architecture default targets");
    Builder b = builder(f.integer("r", 256)).dInitial(f.number("d_initial", 0.1))
        .dropout(f.number("vera_dropout", 0.0)).projectionSeed(f.longInteger("projection_prng_key", 0));
    b.saveProjection = f.bool("save_projection", true);
    return b.readHf(f).build();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new Vera(adapterName, this);
  }

  /** Builds a {@link VeraConfig}; each option can be set once. */
  public static final class Builder extends TargetedConfigBuilder<VeraConfig, Builder> {
    private final int r;
    private Long projectionSeed;
    private Double dInitial;
    private Double dropout;
    private boolean saveProjection = true;

    private Builder(int r) {
      this.r = r;
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

    @Override
    public VeraConfig build() {
      return new VeraConfig(r, projectionSeed == null ? 0 : projectionSeed, saveProjection,
          dInitial == null ? 0.1 : dInitial, dropout == null ? 0 : dropout, targets(), modulesToSave());
    }
  }
}
