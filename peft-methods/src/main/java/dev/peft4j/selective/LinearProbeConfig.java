package dev.peft4j.selective;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of linear probing: the task head trains, nothing else; built by
 * {@code Peft.linearProbe()}.
 *
 * <pre>{@code
 * PeftModel m = Peft.linearProbe().apply(classifierGraph);              // the output head: "classifier", "lm_head"
 * PeftModel n = Peft.linearProbe().head("classifier").apply(graph);     // named
 * }</pre>
 *
 * @see LinearProbe
 */
public final class LinearProbeConfig implements AdapterConfig {

  /** The peft_type of linear-probe files (Hugging Face PEFT has none). */
  public static final String PEFT_TYPE = "LINEAR_PROBE";

  private final List<String> head; // empty: the graph's output heads

  private LinearProbeConfig(List<String> head) {
    this.head = head;
  }

  public static Builder builder() {
    return new Builder();
  }

  @Override
  public String peftType() {
    return PEFT_TYPE;
  }

  /** The head modules as given; empty when the graph's output heads are meant (the default). */
  public List<String> head() {
    return head;
  }

  /** The head modules by name, or {@code regex(".*")} for the default (the output heads). */
  @Override
  public Targets targets() {
    return head.isEmpty() ? Targets.regex(".*") : Targets.names(head.toArray(String[]::new));
  }

  /**
   * The head's parameters, in graph order: every parameter of the named modules, or of the output heads (linear
   * layers no matmul follows, as {@code all-linear} defines them).
   *
   * @throws IllegalArgumentException if a named module does not exist (listing the modules that do), or the graph
   *     has no output head (a tied {@code lm_head} reuses the embedding matrix, which cannot be trained here)
   */
  List<String> select(SameDiff sameDiff, GraphRewriter g) {
    Map<String, List<String>> params = ModuleParameters.of(sameDiff, g);
    List<String> modules = new ArrayList<>();
    if (head.isEmpty()) {
      modules.addAll(g.outputHeads());
      checkArgument(!modules.isEmpty(), "linear probing: the graph has no output head (no linear layer that no "
          + "other matmul follows; a tied lm_head reuses the embedding matrix, which ND4J 1.0.0-M2.1 cannot train "
          + "through its gather). Name the head with head(...); modules: %s", params.keySet());
    } else {
      List<String> unmatched = head.stream()
          .filter(h -> params.keySet().stream().noneMatch(m -> ModuleParameters.matches(m, h))).toList();
      checkArgument(unmatched.isEmpty(), "linear probing: head modules %s not found in the graph; modules that "
          + "exist: %s", unmatched, params.keySet());
      params.keySet().stream().filter(m -> head.stream().anyMatch(h -> ModuleParameters.matches(m, h)))
          .forEach(modules::add);
    }
    return params.entrySet().stream().filter(e -> modules.contains(e.getKey()))
        .flatMap(e -> e.getValue().stream()).toList();
  }

  /** Every scalar of the head modules (H·labels + labels for a classifier with bias). */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    return select(sameDiff, GraphRewriter.of(sameDiff)).stream()
        .mapToLong(p -> sameDiff.getArrForVarName(p).length()).sum();
  }

  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = new LinkedHashMap<>();
    hf.put("peft_type", PEFT_TYPE);
    hf.put("target_modules", head.isEmpty() ? null : head);
    hf.put("task_type", null);
    hf.put("inference_mode", true);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("peft_type", "target_modules", "task_type",
      "inference_mode", "base_model_name_or_path", "revision", "peft_version", "modules_to_save");

  /**
   * A config from a linear-probe {@code adapter_config.json} written by {@link PeftModel#save}; unknown fields are
   * returned in {@code ignored}. {@code target_modules: null} means the graph's output heads.
   *
   * @throws IllegalArgumentException naming the field, for a value peft4j cannot read
   */
  public static LinearProbeConfig fromHf(JsonObject json, Set<String> ignored) {
    json.keySet().stream().filter(k -> !KNOWN_FIELDS.contains(k)).forEach(ignored::add);
    JsonElement save = json.get("modules_to_save");
    checkArgument(save == null || save.isJsonNull() || save.getAsJsonArray().isEmpty(),
        "modules_to_save is not supported by linear probing: the head is its target_modules");
    Builder b = builder();
    JsonElement targets = json.get("target_modules");
    if (targets != null && !targets.isJsonNull()) {
      checkArgument(targets.isJsonArray(), "target_modules of a linear probe must be a list of module names");
      b.head(targets.getAsJsonArray().asList().stream().map(JsonElement::getAsString).toArray(String[]::new));
    }
    return b.build();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new LinearProbe(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof LinearProbeConfig c && head.equals(c.head);
  }

  @Override
  public int hashCode() {
    return Objects.hash(head);
  }

  @Override
  public String toString() {
    return "LinearProbeConfig{head=" + (head.isEmpty() ? "the output heads" : head) + "}";
  }

  /** Builds a {@link LinearProbeConfig}; each option can be set once. */
  public static final class Builder {
    private List<String> head;

    private Builder() {}

    /**
     * The head modules by name (exact or {@code .name} suffix); default the graph's output heads.
     *
     * @throws IllegalArgumentException if no name or a blank one is given
     */
    public Builder head(String... modules) {
      checkState(head == null, "the head was already set to %s", head);
      checkArgument(modules.length > 0, "head(...) needs at least one module name");
      for (String m : modules) {
        checkArgument(m != null && !m.isBlank(), "head module names must not be blank: %s", List.of(modules));
      }
      this.head = List.of(modules);
      return this;
    }

    public LinearProbeConfig build() {
      return new LinearProbeConfig(head == null ? List.of() : head);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
