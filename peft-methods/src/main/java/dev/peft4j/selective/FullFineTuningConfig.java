package dev.peft4j.selective;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.gson.JsonObject;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.ConfigBuilder;
import dev.peft4j.HfConfig;
import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.io.JsonFields;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of full fine-tuning: every floating-point weight of the model trains except the
 * embedding tables, which ND4J 1.0.0-M2.1 cannot differentiate through ({@link FullFineTuning} says why); built by
 * {@code Peft.fullFineTuning()}.
 *
 * <pre>{@code
 * PeftModel m = Peft.fullFineTuning().apply(sameDiff);
 * PeftModel n = Peft.fullFineTuning().exclude("embeddings.LayerNorm").apply(sameDiff);
 * }</pre>
 *
 * @param excluded modules left frozen on request (exact name or {@code .name} suffix), besides the embedding tables
 * @see FullFineTuning
 */
public record FullFineTuningConfig(List<String> excluded) implements AdapterConfig {

  /** The peft_type of full fine-tuning files (Hugging Face PEFT has none). */
  public static final String PEFT_TYPE = "FULL_FINE_TUNING";

  /** @throws IllegalArgumentException if an excluded module name is blank */
  public FullFineTuningConfig {
    checkArgument(excluded.stream().noneMatch(m -> m == null || m.isBlank()), "excluded module names must not be "
        + "blank: %s", excluded);
    excluded = List.copyOf(excluded);
  }

  public static Builder builder() {
    return new Builder();
  }

  @Override
  public String peftType() {
    return PEFT_TYPE;
  }

  /** Every module ({@code regex(".*")}), without the excluded ones. */
  @Override
  public Targets targets() {
    Targets all = Targets.regex(".*");
    return excluded.isEmpty() ? all : all.exclude(excluded.toArray(String[]::new));
  }

  /** Every scalar of the chosen parameters. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    return FullFineTuning.chosenParameters(this, sameDiff, GraphRewriter.of(sameDiff)).stream()
        .mapToLong(p -> sameDiff.getArrForVarName(p).length()).sum();
  }

  /** {@code exclude_modules}: the excluded modules, or null. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = HfConfig.of(PEFT_TYPE);
    hf.put("exclude_modules", HfConfig.listOrNull(excluded));
    return hf;
  }

  /** A config from a full fine-tuning {@code adapter_config.json}; unknown fields go to {@code ignored}. */
  public static FullFineTuningConfig fromHf(JsonObject json, Set<String> ignored) {
    JsonFields f = HfConfig.read(json, ignored, Set.of());
    Builder b = builder().readHf(f); // modules_to_save: refused by build() unless empty
    if (f.has("exclude_modules")) {
      b.exclude(f.strings("exclude_modules").toArray(String[]::new));
    }
    return b.build();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new FullFineTuning(adapterName, this);
  }

  /** Builds a {@link FullFineTuningConfig}; each option can be set once. */
  public static final class Builder extends ConfigBuilder<FullFineTuningConfig, Builder> {
    private List<String> excluded;

    private Builder() {}

    /** Modules to leave frozen (exact name or {@code .name} suffix), at least one; default none. */
    public Builder exclude(String... modules) {
      checkState(excluded == null, "excluded modules were already set to %s", excluded);
      checkArgument(modules.length > 0, "exclude(...) needs at least one module name");
      this.excluded = Arrays.asList(modules.clone());
      return this;
    }

    @Override
    public FullFineTuningConfig build() {
      checkArgument(modulesToSave().isEmpty(), "modules_to_save is not supported by full fine-tuning: every module "
          + "trains already, got modules to save %s", modulesToSave());
      return new FullFineTuningConfig(excluded == null ? List.of() : excluded);
    }
  }
}
