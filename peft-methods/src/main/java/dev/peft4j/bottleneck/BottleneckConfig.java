package dev.peft4j.bottleneck;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.ModulesToSave;
import dev.peft4j.PeftModel;
import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of bottleneck adapters; built by {@code Peft.bottleneck(size)}.
 *
 * <pre>{@code
 * PeftModel houlsby = Peft.bottleneck(64).apply(bert);                       // after attention and after the FFN
 * PeftModel pfeiffer = Peft.bottleneck(64).afterFfnOnly().nonLinearity(NonLinearity.GELU).apply(llama);
 * }</pre>
 *
 * <p>Adapters go after output projections named as in Hugging Face: by default the attention outputs
 * {@value #ATTENTION_OUTPUT_BERT} (BERT) or {@value #ATTENTION_OUTPUT_LLAMA} (Llama family) and the feed-forward
 * outputs {@value #FFN_OUTPUT_BERT} or {@value #FFN_OUTPUT_LLAMA}. A module matched by an attention-output name is
 * never a feed-forward output, so BERT's {@code output.dense} does not also take {@code attention.output.dense}. The
 * defaults cover both families, so of each default list only one name need exist; names given with
 * {@link Builder#attentionOutput} or {@link Builder#ffnOutput} must each match a module, as Hugging Face's
 * {@code target_modules} entries must.
 *
 * @see Bottleneck
 */
public final class BottleneckConfig implements AdapterConfig {

  /** Where adapters go in each layer. */
  public enum Placement {
    /** After the attention output projection and after the feed-forward output projection (Houlsby et al.). */
    HOULSBY,
    /** After the feed-forward output projection only (Pfeiffer et al., AdapterFusion). */
    PFEIFFER
  }

  /** The nonlinearity between the down- and the up-projection. */
  public enum NonLinearity {
    /** {@code max(0, x)}. */
    RELU,
    /** The exact GELU, {@code ½x(1 + erf(x/√2))}, as PyTorch's and transformers' {@code "gelu"}. */
    GELU,
    /** {@code x·σ(x)} (swish). */
    SILU,
    /** {@code tanh(x)}. */
    TANH
  }

  public static final String ATTENTION_OUTPUT_BERT = "attention.output.dense";
  public static final String ATTENTION_OUTPUT_LLAMA = "self_attn.o_proj";
  public static final String FFN_OUTPUT_BERT = "output.dense";
  public static final String FFN_OUTPUT_LLAMA = "mlp.down_proj";

  private static final List<String> DEFAULT_ATTENTION_OUTPUT = List.of(ATTENTION_OUTPUT_BERT, ATTENTION_OUTPUT_LLAMA);
  private static final List<String> DEFAULT_FFN_OUTPUT = List.of(FFN_OUTPUT_BERT, FFN_OUTPUT_LLAMA);

  private final int size;
  private final Placement placement;
  private final NonLinearity nonLinearity;
  private final double dropout;
  private final List<String> attentionOutput; // empty: the defaults
  private final List<String> ffnOutput;       // empty: the defaults
  private final long seed;
  private final List<String> modulesToSave;

  private BottleneckConfig(int size, Placement placement, NonLinearity nonLinearity, double dropout,
      List<String> attentionOutput, List<String> ffnOutput, long seed, List<String> modulesToSave) {
    this.size = size;
    this.placement = placement;
    this.nonLinearity = nonLinearity;
    this.dropout = dropout;
    this.attentionOutput = attentionOutput;
    this.ffnOutput = ffnOutput;
    this.seed = seed;
    this.modulesToSave = modulesToSave;
  }

  /** A builder for bottleneck width {@code size}; validated in {@link Builder#build()}. */
  public static Builder builder(int size) {
    return new Builder(size);
  }

  /** peft4j's own type: Hugging Face PEFT has no sequential bottleneck adapter. */
  @Override
  public String peftType() {
    return "BOTTLENECK";
  }

  /** The bottleneck width b. */
  public int size() {
    return size;
  }

  public Placement placement() {
    return placement;
  }

  public NonLinearity nonLinearity() {
    return nonLinearity;
  }

  /** Probability of zeroing an element of the bottleneck activation while training. */
  public double dropout() {
    return dropout;
  }

  /** Seed of the initial down-projections. */
  public long seed() {
    return seed;
  }

  /** The attention-output module names in effect (the defaults unless set). */
  public List<String> attentionOutput() {
    return attentionOutput.isEmpty() ? DEFAULT_ATTENTION_OUTPUT : attentionOutput;
  }

  /** The feed-forward-output module names in effect (the defaults unless set). */
  public List<String> ffnOutput() {
    return ffnOutput.isEmpty() ? DEFAULT_FFN_OUTPUT : ffnOutput;
  }

  @Override
  public List<String> modulesToSave() {
    return modulesToSave;
  }

  /**
   * Exactly the modules the adapters go after, as one regex: the attention outputs (with {@link Placement#HOULSBY})
   * and the feed-forward outputs that are not attention outputs.
   */
  @Override
  public Targets targets() {
    String attention = "(?:.*\\.)?(?:" + alternatives(attentionOutput()) + ")";
    String ffn = "(?!" + attention + "$)(?:.*\\.)?(?:" + alternatives(ffnOutput()) + ")";
    return Targets.regex(placement == Placement.HOULSBY ? attention + "|" + ffn : ffn);
  }

  private static String alternatives(List<String> names) {
    return names.stream().map(Pattern::quote).collect(Collectors.joining("|"));
  }

  /**
   * The linear modules the adapters go after, in graph order.
   *
   * @throws IllegalArgumentException listing the modules that exist, if a name given by the user matches no module
   *     or none of a default list does; or if a matched module is not a linear layer
   */
  List<LinearModule> select(GraphRewriter g) {
    List<String> modules = g.moduleNames();
    List<String> attentionModules = modules.stream().filter(m -> matchesAny(m, attentionOutput())).toList();
    if (placement == Placement.HOULSBY) {
      requireMatches("attention-output", attentionOutput, DEFAULT_ATTENTION_OUTPUT, attentionModules, modules,
          "attentionOutput(...), or place adapters after the feed-forward only with afterFfnOnly()");
    }
    List<String> ffnModules = modules.stream()
        .filter(m -> matchesAny(m, ffnOutput()) && !attentionModules.contains(m)).toList();
    requireMatches("feed-forward-output (attention outputs excepted)", ffnOutput, DEFAULT_FFN_OUTPUT, ffnModules,
        modules, "ffnOutput(...)");
    return targets().selectLinear(g, "a bottleneck adapter");
  }

  private static void requireMatches(String what, List<String> given, List<String> defaults, List<String> matched,
      List<String> modules, String hint) {
    if (given.isEmpty()) {
      checkArgument(!matched.isEmpty(), "none of the default %s modules %s exists in this graph; name the modules "
          + "after which adapters go with %s. Modules that exist: %s", what, defaults, hint, modules);
    } else {
      List<String> unmatched = given.stream()
          .filter(n -> matched.stream().noneMatch(m -> matchesAny(m, List.of(n)))).toList();
      checkArgument(unmatched.isEmpty(), "%s modules %s not found in the graph. Modules that exist: %s", what,
          unmatched, modules);
    }
  }

  /** Hugging Face's list rule: the name equals an entry or ends with {@code "." + entry}. */
  private static boolean matchesAny(String module, List<String> entries) {
    return entries.stream().anyMatch(e -> module.equals(e) || module.endsWith("." + e));
  }

  /** Σ (2·H·b + b + H) over the modules adapted, H each module's output width; plus the modules to save. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    long adapters = select(GraphRewriter.of(sameDiff)).stream()
        .mapToLong(m -> 2 * m.outFeatures() * size + size + m.outFeatures()).sum();
    return adapters + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /** peft4j's {@code adapter_config.json} fields; a module list left at its default is written as null. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = new LinkedHashMap<>();
    hf.put("peft_type", peftType());
    hf.put("bottleneck_size", size);
    hf.put("placement", placement.name().toLowerCase(Locale.ROOT));
    hf.put("non_linearity", nonLinearity.name().toLowerCase(Locale.ROOT));
    hf.put("adapter_dropout", dropout);
    hf.put("attention_output_modules", attentionOutput.isEmpty() ? null : attentionOutput);
    hf.put("ffn_output_modules", ffnOutput.isEmpty() ? null : ffnOutput);
    hf.put("modules_to_save", modulesToSave.isEmpty() ? null : modulesToSave);
    hf.put("task_type", null);
    hf.put("inference_mode", true);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("peft_type", "bottleneck_size", "placement",
      "non_linearity", "adapter_dropout", "attention_output_modules", "ffn_output_modules", "modules_to_save",
      "task_type", "inference_mode", "base_model_name_or_path", "revision", "peft_version");

  /**
   * A config from the {@code adapter_config.json} that {@link #toHfConfig()} writes; unknown fields are returned in
   * {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field and the value, for a missing size or an unknown placement or
   *     nonlinearity
   */
  public static BottleneckConfig fromHf(JsonObject json, Set<String> ignored) {
    json.keySet().stream().filter(k -> !KNOWN_FIELDS.contains(k)).forEach(ignored::add);
    checkArgument(present(json, "bottleneck_size"), "bottleneck_size is missing");
    Builder b = builder(json.get("bottleneck_size").getAsInt());
    if (present(json, "placement")) {
      b.placement(constant(Placement.class, "placement", json.get("placement").getAsString()));
    }
    if (present(json, "non_linearity")) {
      b.nonLinearity(constant(NonLinearity.class, "non_linearity", json.get("non_linearity").getAsString()));
    }
    if (present(json, "adapter_dropout")) {
      b.dropout(json.get("adapter_dropout").getAsDouble());
    }
    if (present(json, "attention_output_modules")) {
      b.attentionOutput(strings(json, "attention_output_modules"));
    }
    if (present(json, "ffn_output_modules")) {
      b.ffnOutput(strings(json, "ffn_output_modules"));
    }
    if (present(json, "modules_to_save")) {
      b.modulesToSave(strings(json, "modules_to_save"));
    }
    return b.build();
  }

  private static boolean present(JsonObject json, String field) {
    return json.has(field) && !json.get(field).isJsonNull();
  }

  private static String[] strings(JsonObject json, String field) {
    JsonElement e = json.get(field);
    checkArgument(e.isJsonArray(), "%s must be a list of strings, got %s", field, e);
    return e.getAsJsonArray().asList().stream().map(JsonElement::getAsString).toArray(String[]::new);
  }

  private static <E extends Enum<E>> E constant(Class<E> type, String field, String value) {
    for (E e : type.getEnumConstants()) {
      if (e.name().equalsIgnoreCase(value)) {
        return e;
      }
    }
    List<String> known = new ArrayList<>();
    for (E e : type.getEnumConstants()) {
      known.add(e.name().toLowerCase(Locale.ROOT));
    }
    throw new IllegalArgumentException(String.format("%s '%s' is not one of %s", field, value, known));
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new Bottleneck(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof BottleneckConfig c && size == c.size && placement == c.placement
        && nonLinearity == c.nonLinearity && dropout == c.dropout && attentionOutput.equals(c.attentionOutput)
        && ffnOutput.equals(c.ffnOutput) && seed == c.seed && modulesToSave.equals(c.modulesToSave);
  }

  @Override
  public int hashCode() {
    return Objects.hash(size, placement, nonLinearity, dropout, attentionOutput, ffnOutput, seed, modulesToSave);
  }

  @Override
  public String toString() {
    return "BottleneckConfig{size=" + size + ", placement=" + placement + ", nonLinearity=" + nonLinearity
        + ", dropout=" + dropout + ", attentionOutput=" + attentionOutput() + ", ffnOutput=" + ffnOutput()
        + ", seed=" + seed + ", modulesToSave=" + modulesToSave + "}";
  }

  /** Builds a {@link BottleneckConfig}; each option can be set once. */
  public static final class Builder {
    private final int size;
    private Placement placement;
    private NonLinearity nonLinearity;
    private Double dropout;
    private List<String> attentionOutput;
    private List<String> ffnOutput;
    private Long seed;
    private List<String> modulesToSave;

    private Builder(int size) {
      this.size = size;
    }

    /** Where adapters go; default {@link Placement#HOULSBY} (after attention and after the feed-forward). */
    public Builder placement(Placement placement) {
      checkState(this.placement == null, "placement was already set to %s", this.placement);
      checkArgument(placement != null, "placement must not be null");
      this.placement = placement;
      return this;
    }

    /** {@code placement(Placement.PFEIFFER)}: one adapter per layer, after the feed-forward output projection. */
    public Builder afterFfnOnly() {
      return placement(Placement.PFEIFFER);
    }

    /** The nonlinearity; default {@link NonLinearity#RELU}. */
    public Builder nonLinearity(NonLinearity nonLinearity) {
      checkState(this.nonLinearity == null, "nonLinearity was already set to %s", this.nonLinearity);
      checkArgument(nonLinearity != null, "nonLinearity must not be null");
      this.nonLinearity = nonLinearity;
      return this;
    }

    /** Dropout on the bottleneck activation while training; default 0. Must be in [0, 1). */
    public Builder dropout(double p) {
      checkState(dropout == null, "dropout was already set to %s", dropout);
      this.dropout = p;
      return this;
    }

    /**
     * The attention output projections (exact name or {@code .name} suffix), each of which must exist; default
     * {@code attention.output.dense} or {@code self_attn.o_proj}, whichever the graph has.
     */
    public Builder attentionOutput(String... modules) {
      checkState(attentionOutput == null, "attention-output modules were already set to %s", attentionOutput);
      this.attentionOutput = names(modules);
      return this;
    }

    /**
     * The feed-forward output projections (exact name or {@code .name} suffix), each of which must exist; default
     * {@code output.dense} (not counting attention outputs) or {@code mlp.down_proj}, whichever the graph has.
     */
    public Builder ffnOutput(String... modules) {
      checkState(ffnOutput == null, "feed-forward-output modules were already set to %s", ffnOutput);
      this.ffnOutput = names(modules);
      return this;
    }

    private static List<String> names(String... modules) {
      checkArgument(modules != null && modules.length > 0, "module names must not be empty");
      for (String m : modules) {
        checkArgument(m != null && !m.isBlank(), "module names must not be blank: %s", List.of(modules));
      }
      return List.of(modules);
    }

    /** Seed of the initial down-projections; default 0. */
    public Builder seed(long seed) {
      checkState(this.seed == null, "seed was already set to %s", this.seed);
      this.seed = seed;
      return this;
    }

    /** Modules (e.g. a task head) trained in full beside the adapters (HF's {@code modules_to_save}); default none. */
    public Builder modulesToSave(String... modules) {
      checkState(modulesToSave == null, "modules to save were already set to %s", modulesToSave);
      this.modulesToSave = List.of(modules);
      return this;
    }

    /** @throws IllegalArgumentException naming the bad value: size ≤ 0, dropout outside [0, 1) */
    public BottleneckConfig build() {
      checkArgument(size > 0, "bottleneck size must be > 0, got %s", size);
      double p = dropout == null ? 0 : dropout;
      checkArgument(p >= 0 && p < 1, "bottleneck adapter dropout must be in [0, 1), got %s", p);
      return new BottleneckConfig(size, placement == null ? Placement.HOULSBY : placement,
          nonLinearity == null ? NonLinearity.RELU : nonLinearity, p,
          attentionOutput == null ? List.of() : attentionOutput, ffnOutput == null ? List.of() : ffnOutput,
          seed == null ? 0 : seed, modulesToSave == null ? List.of() : modulesToSave);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
