package dev.peft4j.ia3;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.gson.JsonElement;
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
 * The immutable configuration of an IA³ adapter; built by {@code Peft.ia3()}.
 *
 * <pre>{@code
 * PeftModel m = Peft.ia3().target("k_proj", "v_proj", "down_proj").feedforward("down_proj").apply(sameDiff);
 * }</pre>
 *
 * @param targets       the rescaled linear layers; no layer indices, as Hugging Face's IA³ has no
 *                      {@code layers_to_transform}
 * @param feedforward   targets whose input (not output) is rescaled, as HF's {@code feedforward_modules}
 * @param modulesToSave modules trained in full beside the adapter
 * @param fanInFanOut   Hugging Face's {@code fan_in_fan_out}: the targets are {@code Conv1D} layers (GPT-2), stored
 *                      {@code [in, out]}; the arithmetic is the same either way in peft4j, and applying sets it as
 *                      Hugging Face does ({@link dev.peft4j.model.Conv1dModules#fanInFanOut})
 * @see Ia3
 */
public record Ia3Config(Targets targets, List<String> feedforward, List<String> modulesToSave, boolean fanInFanOut)
    implements AdapterConfig {

  /**
   * @throws IllegalArgumentException if there are no targets, targets narrowed to layers, or a feed-forward module
   *     that is not among the targets
   */
  public Ia3Config {
    checkArgument(targets != null, "no target modules: call target(...) or targetRegex(...)");
    checkArgument(targets.layers().isEmpty(), "IA³ cannot be narrowed to layers %s: Hugging Face's IA³ has no "
        + "layers_to_transform", targets.layers());
    feedforward = List.copyOf(feedforward);
    modulesToSave = List.copyOf(modulesToSave);
    if (!targets.isAllLinear() && targets.regex().isEmpty()) {
      for (String f : feedforward) {
        checkArgument(targets.entries().stream().anyMatch(t -> t.equals(f) || t.endsWith("." + f)
            || f.endsWith("." + t)), "feedforward module '%s' is not among the targets %s", f, targets.entries());
      }
    }
  }

  public static Builder builder() {
    return new Builder();
  }

  @Override
  public String peftType() {
    return "IA3";
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
    Map<String, Object> hf = HfConfig.of(peftType());
    HfConfig.putTargets(hf, targets, false);
    hf.put("feedforward_modules", feedforward);
    HfConfig.putModulesToSave(hf, modulesToSave);
    hf.put("fan_in_fan_out", fanInFanOut);
    hf.put("init_ia3_weights", true);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("feedforward_modules", "fan_in_fan_out", "init_ia3_weights",
      "target_parameters");

  /**
   * A config from Hugging Face PEFT's IA³ {@code adapter_config.json}; unknown fields are returned in
   * {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field, for values of the wrong JSON type and for what peft4j does not
   *     implement
   */
  public static Ia3Config fromHf(JsonObject json, Set<String> ignored) {
    JsonFields f = HfConfig.read(json, ignored, KNOWN_FIELDS);
    checkArgument(f.has("target_modules"), "target_modules is missing");
    Builder b = builder().readHf(f);
    if (f.bool("fan_in_fan_out", false)) {
      b.fanInFanOut();
    }
    JsonElement ff = f.get("feedforward_modules");
    if (ff != null) {
      checkArgument(ff.isJsonArray(), "feedforward_modules as a regex is not supported; give a list");
      b.feedforward(f.strings("feedforward_modules").toArray(String[]::new));
    }
    return b.build();
  }

  /** This config with {@code fan_in_fan_out} set to {@code value} (what applying decided). */
  Ia3Config withFanInFanOut(boolean value) {
    return new Ia3Config(targets, feedforward, modulesToSave, value);
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new Ia3(adapterName, this);
  }

  /** Builds an {@link Ia3Config}; each option can be set once. */
  public static final class Builder extends TargetedConfigBuilder<Ia3Config, Builder> {
    private List<String> feedforward;
    private boolean fanInFanOut;

    private Builder() {}

    /**
     * The targets are Hugging Face {@code Conv1D} layers, stored {@code [in, out]} (GPT-2): Hugging Face's
     * {@code fan_in_fan_out=True}. Default off; applying to {@code Conv1D} targets turns it on (with a warning), and
     * applying it to {@code nn.Linear} targets is refused, naming the module and both shapes.
     */
    public Builder fanInFanOut() {
      checkState(!fanInFanOut, "fanInFanOut was already set");
      this.fanInFanOut = true;
      return this;
    }

    /** Targets whose input is rescaled instead of their output (HF's feedforward_modules); default none. */
    public Builder feedforward(String... modules) {
      checkState(feedforward == null, "feedforward modules were already set to %s", feedforward);
      this.feedforward = List.of(modules);
      return this;
    }

    @Override
    public Ia3Config build() {
      return new Ia3Config(targets(), feedforward == null ? List.of() : feedforward, modulesToSave(), fanInFanOut);
    }
  }
}
