package dev.peft4j.lntuning;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonObject;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.HfConfig;
import dev.peft4j.ModulesToSave;
import dev.peft4j.TargetedConfigBuilder;
import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of a LayerNorm-tuning adapter, Hugging Face PEFT's {@code LNTuningConfig}; built by
 * {@code Peft.lnTuning()}. By default every norm layer trains; {@code target(...)} (e.g. {@code "LayerNorm"}) or
 * {@code targetRegex(...)}, narrowed by {@code exclude(...)}, choose norm layers.
 *
 * <pre>{@code
 * PeftModel m = Peft.lnTuning().apply(sameDiff);                                  // every norm layer
 * PeftModel a = Peft.lnTuning().target("input_layernorm", "post_attention_layernorm").apply(sameDiff);
 * }</pre>
 *
 * @param targets       the norm layers that train, or null for every norm layer (the default), which
 *                      {@link #targets()} reports as {@code regex(".*")}
 * @param modulesToSave modules trained in full beside the norm layers (a task head)
 * @see LnTuning
 */
public record LnTuningConfig(Targets targets, List<String> modulesToSave) implements AdapterConfig {

  /** Hugging Face PEFT's peft_type. */
  public static final String PEFT_TYPE = "LN_TUNING";

  /** @throws IllegalArgumentException if the targets are narrowed to layers: HF's LNTuningConfig has no such field */
  public LnTuningConfig {
    checkArgument(targets == null || targets.layers().isEmpty(), "LN tuning has no layers option (its files have no "
        + "layers_to_transform); got layers %s", targets == null ? null : targets.layers());
    modulesToSave = List.copyOf(modulesToSave);
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

  /** Whether every norm layer is targeted (no {@code target(...)} given). */
  boolean targetsAllNormLayers() {
    return targets == null;
  }

  /** Σ over the chosen norm layers of their vectors' lengths (H for RMSNorm, 2H for LayerNorm), plus modules to save. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    return LnTuning.chosenParameters(this, sameDiff, GraphRewriter.of(sameDiff)).stream()
        .mapToLong(p -> sameDiff.getArrForVarName(p).length()).sum()
        + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /** {@code target_modules} (null: every norm layer), {@code exclude_modules} and {@code modules_to_save}. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = HfConfig.of(PEFT_TYPE);
    HfConfig.putTargets(hf, targets, false);
    HfConfig.putModulesToSave(hf, modulesToSave);
    return hf;
  }

  /**
   * A config from Hugging Face PEFT's LN tuning {@code adapter_config.json}; unknown fields are returned in
   * {@code ignored}. {@code target_modules: null} (HF then picks by model type) means every norm layer here.
   *
   * @throws IllegalArgumentException naming the field, for a value peft4j cannot read
   */
  public static LnTuningConfig fromHf(JsonObject json, Set<String> ignored) {
    return builder().readHf(HfConfig.read(json, ignored, Set.of())).build();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new LnTuning(adapterName, this);
  }

  /** Builds an {@link LnTuningConfig}; each option can be set once. */
  public static final class Builder extends TargetedConfigBuilder<LnTuningConfig, Builder> {
    private Builder() {}

    @Override
    public LnTuningConfig build() {
      return new LnTuningConfig(targets(), modulesToSave());
    }
  }
}
