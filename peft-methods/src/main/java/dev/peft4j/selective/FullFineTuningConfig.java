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
 * The immutable configuration of full fine-tuning: every floating-point weight of the model trains, <b>except the
 * embedding tables</b> (any parameter an embedding lookup {@code gather} reads: BERT's word and token-type
 * embeddings, Llama's {@code embed_tokens} and a tied {@code lm_head} with it). ND4J 1.0.0-M2.1 cannot differentiate
 * a trainable {@code gather}: its gradient graph fails to build. {@link FullFineTuning#excludedEmbeddings()} names
 * what was left frozen, and {@code trainableParameters()} does not contain it. Built by
 * {@code Peft.fullFineTuning()}.
 *
 * <pre>{@code
 * PeftModel m = Peft.fullFineTuning().apply(sameDiff);
 * PeftModel n = Peft.fullFineTuning().exclude("embeddings.LayerNorm").apply(sameDiff);
 * }</pre>
 *
 * @see FullFineTuning
 */
public final class FullFineTuningConfig implements AdapterConfig {

  /** The peft_type of full fine-tuning files (Hugging Face PEFT has none). */
  public static final String PEFT_TYPE = "FULL_FINE_TUNING";

  private final List<String> excluded;

  private FullFineTuningConfig(List<String> excluded) {
    this.excluded = excluded;
  }

  public static Builder builder() {
    return new Builder();
  }

  @Override
  public String peftType() {
    return PEFT_TYPE;
  }

  /** Modules left frozen on request (besides the embedding tables, always frozen). */
  public List<String> excluded() {
    return excluded;
  }

  /** Every module ({@code regex(".*")}), without the excluded ones. */
  @Override
  public Targets targets() {
    Targets all = Targets.regex(".*");
    return excluded.isEmpty() ? all : all.exclude(excluded.toArray(String[]::new));
  }

  /** The embedding tables of the graph: parameters that a {@code gather} op reads as its table. */
  static List<String> embeddingTables(SameDiff sameDiff, GraphRewriter g) {
    List<String> tables = new ArrayList<>();
    ModuleParameters.of(sameDiff, g).values().stream().flatMap(List::stream).forEach(p -> {
      for (String op : g.consumersOf(p)) {
        if ("gather".equals(sameDiff.getOpById(op).opName()) && g.inputsOf(op).get(0).equals(p)) {
          tables.add(p);
          return;
        }
      }
    });
    return tables;
  }

  /**
   * Every parameter but the embedding tables and the excluded modules, in graph order.
   *
   * @throws IllegalArgumentException if an excluded name matches no module (listing the modules), or nothing is left
   */
  List<String> select(SameDiff sameDiff, GraphRewriter g) {
    Map<String, List<String>> params = ModuleParameters.of(sameDiff, g);
    List<String> unmatched = excluded.stream()
        .filter(e -> params.keySet().stream().noneMatch(m -> ModuleParameters.matches(m, e))).toList();
    checkArgument(unmatched.isEmpty(), "full fine-tuning: excluded modules %s not found in the graph; modules that "
        + "exist: %s", unmatched, params.keySet());
    List<String> tables = embeddingTables(sameDiff, g);
    List<String> chosen = params.entrySet().stream()
        .filter(e -> excluded.stream().noneMatch(x -> ModuleParameters.matches(e.getKey(), x)))
        .flatMap(e -> e.getValue().stream()).filter(p -> !tables.contains(p)).toList();
    checkArgument(!chosen.isEmpty(), "full fine-tuning: nothing left to train (embedding tables %s are always "
        + "frozen, excluded %s); modules: %s", tables, excluded, params.keySet());
    return chosen;
  }

  /** Every scalar of the chosen parameters. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    return select(sameDiff, GraphRewriter.of(sameDiff)).stream()
        .mapToLong(p -> sameDiff.getArrForVarName(p).length()).sum();
  }

  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = new LinkedHashMap<>();
    hf.put("peft_type", PEFT_TYPE);
    hf.put("exclude_modules", excluded.isEmpty() ? null : excluded);
    hf.put("task_type", null);
    hf.put("inference_mode", true);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("peft_type", "exclude_modules", "task_type",
      "inference_mode", "base_model_name_or_path", "revision", "peft_version");

  /**
   * A config from a full fine-tuning {@code adapter_config.json} written by {@link PeftModel#save}; unknown fields
   * are returned in {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field, for a value peft4j cannot read
   */
  public static FullFineTuningConfig fromHf(JsonObject json, Set<String> ignored) {
    json.keySet().stream().filter(k -> !KNOWN_FIELDS.contains(k)).forEach(ignored::add);
    Builder b = builder();
    JsonElement exclude = json.get("exclude_modules");
    if (exclude != null && !exclude.isJsonNull()) {
      checkArgument(exclude.isJsonArray(), "exclude_modules must be a list of module names");
      b.exclude(exclude.getAsJsonArray().asList().stream().map(JsonElement::getAsString).toArray(String[]::new));
    }
    return b.build();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new FullFineTuning(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof FullFineTuningConfig c && excluded.equals(c.excluded);
  }

  @Override
  public int hashCode() {
    return Objects.hash(excluded);
  }

  @Override
  public String toString() {
    return "FullFineTuningConfig{excluded=" + excluded + ", embedding tables frozen}";
  }

  /** Builds a {@link FullFineTuningConfig}; each option can be set once. */
  public static final class Builder {
    private List<String> excluded;

    private Builder() {}

    /**
     * Modules to leave frozen (exact name or {@code .name} suffix); default none.
     *
     * @throws IllegalArgumentException if no name or a blank one is given
     */
    public Builder exclude(String... modules) {
      checkState(excluded == null, "excluded modules were already set to %s", excluded);
      checkArgument(modules.length > 0, "exclude(...) needs at least one module name");
      for (String m : modules) {
        checkArgument(m != null && !m.isBlank(), "excluded module names must not be blank: %s", List.of(modules));
      }
      this.excluded = List.of(modules);
      return this;
    }

    public FullFineTuningConfig build() {
      return new FullFineTuningConfig(excluded == null ? List.of() : excluded);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
