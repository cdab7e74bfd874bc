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
 * The immutable configuration of linear probing: the task head trains, nothing else; built by
 * {@code Peft.linearProbe()}. The head is saved as {@code target_modules}.
 *
 * <pre>{@code
 * PeftModel m = Peft.linearProbe().apply(classifierGraph);              // the output head: "classifier", "lm_head"
 * PeftModel n = Peft.linearProbe().head("classifier").apply(graph);     // named
 * }</pre>
 *
 * @param head the head modules by name (exact or {@code .name} suffix); empty for the graph's output heads (default)
 * @see LinearProbe
 */
public record LinearProbeConfig(List<String> head) implements AdapterConfig {

  /** The peft_type of linear-probe files (Hugging Face PEFT has none). */
  public static final String PEFT_TYPE = "LINEAR_PROBE";

  /** @throws IllegalArgumentException if a head module name is blank */
  public LinearProbeConfig {
    checkArgument(head.stream().noneMatch(m -> m == null || m.isBlank()), "head module names must not be blank: %s",
        head);
    head = List.copyOf(head);
  }

  public static Builder builder() {
    return new Builder();
  }

  @Override
  public String peftType() {
    return PEFT_TYPE;
  }

  /** The head modules by name, or {@code regex(".*")} for the default (the output heads). */
  @Override
  public Targets targets() {
    return head.isEmpty() ? Targets.regex(".*") : Targets.names(head.toArray(String[]::new));
  }

  /** Every scalar of the head modules (H·labels + labels for a classifier with bias). */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    return LinearProbe.chosenParameters(this, sameDiff, GraphRewriter.of(sameDiff)).stream()
        .mapToLong(p -> sameDiff.getArrForVarName(p).length()).sum();
  }

  /** {@code target_modules}: the head, or null for the output heads. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = HfConfig.of(PEFT_TYPE);
    hf.put("target_modules", HfConfig.listOrNull(head));
    return hf;
  }

  /** A config from a linear-probe {@code adapter_config.json}; unknown fields go to {@code ignored}. */
  public static LinearProbeConfig fromHf(JsonObject json, Set<String> ignored) {
    JsonFields f = HfConfig.read(json, ignored, Set.of());
    Builder b = builder().readHf(f); // modules_to_save: refused by build() unless empty
    if (f.has("target_modules")) {
      b.head(f.strings("target_modules").toArray(String[]::new));
    }
    return b.build();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new LinearProbe(adapterName, this);
  }

  /** Builds a {@link LinearProbeConfig}; each option can be set once. */
  public static final class Builder extends ConfigBuilder<LinearProbeConfig, Builder> {
    private List<String> head;

    private Builder() {}

    /** The head modules by name (exact or {@code .name} suffix), at least one; default the graph's output heads. */
    public Builder head(String... modules) {
      checkState(head == null, "the head was already set to %s", head);
      checkArgument(modules.length > 0, "head(...) needs at least one module name");
      this.head = Arrays.asList(modules.clone());
      return this;
    }

    @Override
    public LinearProbeConfig build() {
      checkArgument(modulesToSave().isEmpty(), "modules_to_save is not supported by linear probing: the head is its "
          + "target_modules; name it with head(...), got modules to save %s", modulesToSave());
      return new LinearProbeConfig(head == null ? List.of() : head);
    }
  }
}
