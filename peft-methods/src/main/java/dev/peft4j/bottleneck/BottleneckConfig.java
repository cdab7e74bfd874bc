package dev.peft4j.bottleneck;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.gson.JsonObject;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.ConfigBuilder;
import dev.peft4j.HfConfig;
import dev.peft4j.ModulesToSave;
import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.io.JsonFields;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of bottleneck adapters; built by {@code Peft.bottleneck(size)}.
 *
 * <pre>{@code
 * PeftModel houlsby = Peft.bottleneck(64).apply(bert);                       // after attention and after the FFN
 * PeftModel pfeiffer = Peft.bottleneck(64).afterFfnOnly().nonLinearity(NonLinearity.GELU).apply(llama);
 * }</pre>
 *
 * <p>Adapters go after the output projections named in {@link #attentionOutput()} and {@link #ffnOutput()}: by
 * default {@value #ATTENTION_OUTPUT_BERT} or {@value #ATTENTION_OUTPUT_LLAMA}, and {@value #FFN_OUTPUT_BERT} or
 * {@value #FFN_OUTPUT_LLAMA}, of which one per list need exist; names given must each match a module, as Hugging
 * Face's {@code target_modules} entries must. A module matched by an attention-output name is never a feed-forward
 * output, so BERT's {@code output.dense} does not also take {@code attention.output.dense}.
 *
 * @param size                   the bottleneck width b, &gt; 0
 * @param dropout                probability of zeroing a bottleneck activation while training, in [0, 1)
 * @param attentionOutputModules the attention-output names given; empty for the defaults
 * @param ffnOutputModules       the feed-forward-output names given; empty for the defaults
 * @param seed                   seed of the initial down-projections
 * @see Bottleneck
 */
public record BottleneckConfig(int size, Placement placement, NonLinearity nonLinearity, double dropout,
    List<String> attentionOutputModules, List<String> ffnOutputModules, long seed, List<String> modulesToSave)
    implements AdapterConfig {

  /**
   * Where adapters go in each layer: {@code HOULSBY} after the attention output projection and after the feed-forward
   * output projection (Houlsby et al.); {@code PFEIFFER} after the feed-forward output projection only (Pfeiffer et
   * al., AdapterFusion).
   */
  public enum Placement { HOULSBY, PFEIFFER }

  /**
   * The nonlinearity between the down- and the up-projection: {@code RELU} {@code max(0, x)}; {@code GELU} the exact
   * {@code ½x(1 + erf(x/√2))}, as PyTorch's and transformers' {@code "gelu"}; {@code SILU} {@code x·σ(x)} (swish);
   * {@code TANH} {@code tanh(x)}.
   */
  public enum NonLinearity { RELU, GELU, SILU, TANH }

  public static final String ATTENTION_OUTPUT_BERT = "attention.output.dense";
  public static final String ATTENTION_OUTPUT_LLAMA = "self_attn.o_proj";
  public static final String FFN_OUTPUT_BERT = "output.dense";
  public static final String FFN_OUTPUT_LLAMA = "mlp.down_proj";

  /** @throws IllegalArgumentException naming the bad value: size ≤ 0, dropout outside [0, 1) */
  public BottleneckConfig {
    checkArgument(size > 0, "bottleneck size must be > 0, got %s", size);
    checkArgument(dropout >= 0 && dropout < 1, "bottleneck adapter dropout must be in [0, 1), got %s", dropout);
    checkArgument(placement != null && nonLinearity != null, "placement and nonLinearity must not be null");
    attentionOutputModules = List.copyOf(attentionOutputModules);
    ffnOutputModules = List.copyOf(ffnOutputModules);
    modulesToSave = List.copyOf(modulesToSave);
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

  /** The attention-output module names in effect (the defaults unless set). */
  public List<String> attentionOutput() {
    return attentionOutputModules.isEmpty() ? List.of(ATTENTION_OUTPUT_BERT, ATTENTION_OUTPUT_LLAMA)
        : attentionOutputModules;
  }

  /** The feed-forward-output module names in effect (the defaults unless set). */
  public List<String> ffnOutput() {
    return ffnOutputModules.isEmpty() ? List.of(FFN_OUTPUT_BERT, FFN_OUTPUT_LLAMA) : ffnOutputModules;
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
    return String.join("|", names.stream().map(Pattern::quote).toList());
  }

  /** Σ (2·H·b + b + H) over the modules adapted, H each module's output width; plus the modules to save. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    long adapters = Bottleneck.select(this, GraphRewriter.of(sameDiff)).stream()
        .mapToLong(m -> 2 * m.outFeatures() * size + size + m.outFeatures()).sum();
    return adapters + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /** peft4j's {@code adapter_config.json} fields; a module list left at its default is written as null. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = HfConfig.of(peftType());
    hf.put("bottleneck_size", size);
    hf.put("placement", placement.name().toLowerCase(Locale.ROOT));
    hf.put("non_linearity", nonLinearity.name().toLowerCase(Locale.ROOT));
    hf.put("adapter_dropout", dropout);
    hf.put("attention_output_modules", HfConfig.listOrNull(attentionOutputModules));
    hf.put("ffn_output_modules", HfConfig.listOrNull(ffnOutputModules));
    HfConfig.putModulesToSave(hf, modulesToSave);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("bottleneck_size", "placement", "non_linearity",
      "adapter_dropout", "attention_output_modules", "ffn_output_modules");

  /**
   * A config from the {@code adapter_config.json} that {@link #toHfConfig()} writes; unknown fields are returned in
   * {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field and the value, for a missing size, a value of the wrong JSON
   *     type, or an unknown placement or nonlinearity
   */
  public static BottleneckConfig fromHf(JsonObject json, Set<String> ignored) {
    JsonFields f = HfConfig.read(json, ignored, KNOWN_FIELDS);
    checkArgument(f.has("bottleneck_size"), "bottleneck_size is missing");
    Builder b = builder(f.integer("bottleneck_size", 0));
    b.placement = constant(Placement.class, "placement", f.string("placement", null));
    b.nonLinearity = constant(NonLinearity.class, "non_linearity", f.string("non_linearity", null));
    b.dropout = f.number("adapter_dropout", 0);
    if (f.has("attention_output_modules")) {
      b.attentionOutput(f.strings("attention_output_modules").toArray(String[]::new));
    }
    if (f.has("ffn_output_modules")) {
      b.ffnOutput(f.strings("ffn_output_modules").toArray(String[]::new));
    }
    return b.readHf(f).build();
  }

  /** The constant named {@code value}, ignoring case (the file holds it in lower case); null for null. */
  private static <E extends Enum<E>> E constant(Class<E> type, String field, String value) {
    List<E> all = List.of(type.getEnumConstants());
    return value == null ? null : all.stream().filter(e -> e.name().equalsIgnoreCase(value)).findFirst().orElseThrow(
        () -> new IllegalArgumentException(String.format("%s '%s' is not one of %s", field, value,
            all.stream().map(e -> e.name().toLowerCase(Locale.ROOT)).toList())));
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new Bottleneck(adapterName, this);
  }

  /** Kept in this form because merge refusals quote it ({@code BottleneckConfig{size=2, …}}). */
  @Override
  public String toString() {
    return "BottleneckConfig{size=" + size + ", placement=" + placement + ", nonLinearity=" + nonLinearity
        + ", dropout=" + dropout + ", attentionOutput=" + attentionOutput() + ", ffnOutput=" + ffnOutput()
        + ", seed=" + seed + ", modulesToSave=" + modulesToSave + "}";
  }

  /** Builds a {@link BottleneckConfig}; each option can be set once. */
  public static final class Builder extends ConfigBuilder<BottleneckConfig, Builder> {
    private final int size;
    private Placement placement;
    private NonLinearity nonLinearity;
    private Double dropout;
    private List<String> attentionOutput;
    private List<String> ffnOutput;

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

    /** The attention output projections (exact name or {@code .name} suffix), each of which must exist. */
    public Builder attentionOutput(String... modules) {
      checkState(attentionOutput == null, "attention-output modules were already set to %s", attentionOutput);
      this.attentionOutput = names(modules);
      return this;
    }

    /** The feed-forward output projections (exact name or {@code .name} suffix), each of which must exist. */
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

    /** @throws IllegalArgumentException naming the bad value: size ≤ 0, dropout outside [0, 1) */
    @Override
    public BottleneckConfig build() {
      return new BottleneckConfig(size, placement == null ? Placement.HOULSBY : placement,
          nonLinearity == null ? NonLinearity.RELU : nonLinearity, dropout == null ? 0 : dropout,
          attentionOutput == null ? List.of() : attentionOutput, ffnOutput == null ? List.of() : ffnOutput, seed(),
          modulesToSave());
    }
  }
}
