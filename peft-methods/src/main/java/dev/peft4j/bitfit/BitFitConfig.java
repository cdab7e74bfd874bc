package dev.peft4j.bitfit;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonObject;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.HfConfig;
import dev.peft4j.ModulesToSave;
import dev.peft4j.TargetedConfigBuilder;
import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of a BitFit adapter; built by {@code Peft.bitFit()}. By default every linear layer's
 * bias trains; {@code target(...)} or {@code targetRegex(...)}, narrowed by {@code exclude(...)}, choose layers.
 *
 * <pre>{@code
 * PeftModel m = Peft.bitFit().modulesToSave("classifier").apply(sameDiff);            // every linear layer's bias
 * PeftModel q = Peft.bitFit().target("query", "intermediate.dense").apply(sameDiff);  // the BitFit paper's subset
 * }</pre>
 *
 * @param targets       the linear layers whose biases train, or null for every linear layer (the default), which
 *                      {@link #targets()} reports as {@code regex(".*")}
 * @param modulesToSave modules trained in full beside the biases (a task head)
 * @see BitFit
 */
public record BitFitConfig(Targets targets, List<String> modulesToSave) implements AdapterConfig {

  /** The peft_type of BitFit files (Hugging Face PEFT has no BitFit). */
  public static final String PEFT_TYPE = "BITFIT";

  /** @throws IllegalArgumentException if the targets are narrowed to layers, which BitFit files cannot hold */
  public BitFitConfig {
    checkArgument(targets == null || targets.layers().isEmpty(), "BitFit has no layers option (its files have no "
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

  /** The targeted linear layers; {@code regex(".*")} when every linear layer is (the default). */
  @Override
  public Targets targets() {
    return targets == null ? Targets.regex(".*") : targets;
  }

  /** Whether every linear layer is targeted (no {@code target(...)} given). */
  public boolean targetsAllLinearLayers() {
    return targets == null;
  }

  /** Σ out over the chosen layers (one bias each), plus the modules to save. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    return BitFit.chosenLayers(this, GraphRewriter.of(sameDiff)).stream().mapToLong(LinearModule::outFeatures).sum()
        + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /** {@code target_modules} (null: every linear layer), {@code exclude_modules} and {@code modules_to_save}. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = HfConfig.of(PEFT_TYPE);
    HfConfig.putTargets(hf, targets, false);
    HfConfig.putModulesToSave(hf, modulesToSave);
    return hf;
  }

  /** A config from a BitFit {@code adapter_config.json}; unknown fields go to {@code ignored}, errors name fields. */
  public static BitFitConfig fromHf(JsonObject json, Set<String> ignored) {
    return builder().readHf(HfConfig.read(json, ignored, Set.of())).build();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new BitFit(adapterName, this);
  }

  /** Builds a {@link BitFitConfig}; each option can be set once. */
  public static final class Builder extends TargetedConfigBuilder<BitFitConfig, Builder> {
    private Builder() {}

    @Override
    public BitFitConfig build() {
      return new BitFitConfig(targets(), modulesToSave());
    }
  }
}
