package dev.peft4j.fourierft;

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
import dev.peft4j.io.JsonFields;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of a FourierFT adapter; built by {@code Peft.fourierFt(nFrequency)}.
 *
 * <pre>{@code
 * PeftModel m = Peft.fourierFt(1000).scaling(150).target("q_proj", "v_proj").apply(sameDiff);
 * }</pre>
 *
 * @param nFrequency    learned spectral coefficients per targeted layer ({@code n_frequency}), &gt; 0
 * @param scaling       the factor on the inverse transform ({@code scaling}), finite and non-zero (default 150)
 * @param randomLocSeed seed of the frequency positions ({@code random_loc_seed}; default 777), as torch's randperm
 * @param zeroInit      whether the spectrum starts at zero, so the model starts as the base (HF's {@code init_weights})
 * @param seed          seed of the initial N(0, 1) spectrum when not {@code zeroInit} (default 0)
 * @param targets       the adapted linear layers
 * @param modulesToSave modules trained in full beside the adapter
 * @see FourierFt
 */
public record FourierFtConfig(int nFrequency, double scaling, long randomLocSeed, boolean zeroInit, long seed,
    Targets targets, List<String> modulesToSave) implements AdapterConfig {

  /**
   * @throws IllegalArgumentException naming the bad value: n_frequency ≤ 0, scaling zero or not finite, no targets
   *     (n_frequency above a target's in·out is refused when applied, naming the module)
   */
  public FourierFtConfig {
    checkArgument(nFrequency > 0, "FourierFT n_frequency must be > 0, got %s", nFrequency);
    checkArgument(scaling != 0 && Double.isFinite(scaling), "FourierFT scaling must be finite and non-zero, got %s",
        scaling);
    checkArgument(targets != null, "no target modules: call target(...) or targetRegex(...)");
    modulesToSave = List.copyOf(modulesToSave);
  }

  /** A builder for {@code nFrequency} learned coefficients per layer; validated in {@link Builder#build()}. */
  public static Builder builder(int nFrequency) {
    return new Builder(nFrequency);
  }

  @Override
  public String peftType() {
    return "FOURIERFT";
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
    Map<String, Object> hf = HfConfig.of(peftType());
    hf.put("n_frequency", nFrequency);
    hf.put("scaling", scaling);
    hf.put("random_loc_seed", randomLocSeed);
    HfConfig.putTargets(hf, targets, true);
    HfConfig.putModulesToSave(hf, modulesToSave);
    hf.put("n_frequency_pattern", Map.of());
    hf.put("init_weights", zeroInit);
    hf.put("bias", "none");
    hf.put("fan_in_fan_out", false);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("n_frequency", "scaling", "random_loc_seed",
      "layers_pattern", "n_frequency_pattern", "init_weights", "bias", "fan_in_fan_out", "alpha", "ifft2_norm",
      "target_parameters");

  /**
   * A config from Hugging Face PEFT's FourierFT {@code adapter_config.json}; a missing field takes Hugging Face's
   * default (n_frequency 1000, scaling 150, random_loc_seed 777); unknown fields are returned in {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field, for values of the wrong JSON type and for what peft4j does not
   *     implement (per-module n_frequency_pattern, alpha, an ifft2_norm other than "backward", trained biases,
   *     fan_in_fan_out, a regex exclude_modules)
   */
  public static FourierFtConfig fromHf(JsonObject json, Set<String> ignored) {
    JsonFields f = HfConfig.read(json, ignored, KNOWN_FIELDS);
    checkArgument(!f.bool("fan_in_fan_out", false), "fan_in_fan_out: true is not supported");
    String bias = f.string("bias", "none");
    checkArgument(bias.equals("none"), "bias '%s' is not supported; only 'none'", bias);
    JsonObject pattern = f.object("n_frequency_pattern");
    checkArgument(pattern == null || pattern.size() == 0, "n_frequency_pattern: per-module values are not supported");
    checkArgument(!f.has("alpha"), "alpha (n_frequency as a fraction of in·out) is not supported; give n_frequency");
    String norm = f.string("ifft2_norm", "backward");
    checkArgument(norm.equals("backward"), "ifft2_norm '%s' is not supported; only 'backward'", norm);
    checkArgument(f.has("target_modules"), "target_modules is missing: peft4j has no per-architecture default targets");
    Builder b = builder(f.integer("n_frequency", 1000)).scaling(f.number("scaling", 150))
        .randomLocSeed(f.longInteger("random_loc_seed", 777));
    if (f.bool("init_weights", false)) {
      b.zeroInit();
    }
    return b.readHf(f).build();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new FourierFt(adapterName, this);
  }

  /** Builds a {@link FourierFtConfig}; each option can be set once. */
  public static final class Builder extends TargetedConfigBuilder<FourierFtConfig, Builder> {
    private final int nFrequency;
    private Double scaling;
    private Long randomLocSeed;
    private boolean zeroInit;

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

    @Override
    public FourierFtConfig build() {
      return new FourierFtConfig(nFrequency, scaling == null ? 150 : scaling, randomLocSeed == null ? 777
          : randomLocSeed, zeroInit, seed(), targets(), modulesToSave());
    }
  }
}
