package dev.peft4j.lora;

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
import dev.peft4j.graph.LinearModule;
import dev.peft4j.io.JsonFields;
import dev.peft4j.quant.Quantization;
import dev.peft4j.quant.QuantizedBase;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of a LoRA adapter, and of its variants rsLoRA ({@code rsLora}), DoRA ({@code useDora})
 * and QLoRA ({@code quantizeBase}); built by {@code Peft.lora(r)}.
 *
 * <pre>{@code
 * LoraConfig cfg = Peft.lora(16).alpha(32).dropout(0.05).target("q_proj", "v_proj").build();
 * PeftModel m = cfg.apply(sameDiff);
 * PeftModel d = Peft.lora(8).useDora().target("all-linear").apply(other);   // DoRA, as HF's use_dora=True
 * }</pre>
 *
 * @param r             the rank of the update, &gt; 0
 * @param alpha         α, Hugging Face's {@code lora_alpha}, &gt; 0 (default 8)
 * @param dropout       probability of zeroing an input element of the branch while training, in [0, 1) (default 0)
 * @param rsLora        whether the scaling is α/√r (rank-stabilised) rather than α/r
 * @param useDora       whether the adapter is DoRA ({@link Dora}): a trained magnitude per output feature times the
 *                      normalised direction of the weight plus the low-rank update
 * @param targets       the adapted linear layers
 * @param modulesToSave modules trained in full beside the adapter
 * @param seed          seed of the initial A matrices (default 0)
 * @param quantization  how the base's linear weights are stored while this adapter is applied (QLoRA), or null for
 *                      as they are; not part of the saved adapter: as in Hugging Face, quantisation is a property of the
 *                      base model
 * @param fanInFanOut   Hugging Face's {@code fan_in_fan_out}: the targets are {@code Conv1D} layers (GPT-2) whose
 *                      checkpoint weight is stored {@code [in, out]}. The arithmetic is the same either way (peft4j's
 *                      graph holds every weight {@code [in, out]}; merging adds {@code s·(B·A)ᵀ} to it); applying
 *                      sets it as Hugging Face does ({@link dev.peft4j.model.Conv1dModules#fanInFanOut}), so the
 *                      applied adapter's config says what a saved file must tell Hugging Face
 * @see Lora
 * @see Dora
 */
public record LoraConfig(int r, double alpha, double dropout, boolean rsLora, boolean useDora, Targets targets,
    List<String> modulesToSave, long seed, Quantization quantization, boolean fanInFanOut) implements AdapterConfig {

  /**
   * @throws IllegalArgumentException naming the bad value and the allowed range: r ≤ 0, α ≤ 0 or not finite,
   *     dropout outside [0, 1), no targets, DoRA over a quantised base
   */
  public LoraConfig {
    String method = useDora ? "DoRA" : "LoRA";
    checkArgument(r > 0, "%s rank r must be > 0, got %s", method, r);
    checkArgument(alpha > 0 && Double.isFinite(alpha), "lora alpha must be > 0 and finite, got %s", alpha);
    checkArgument(dropout >= 0 && dropout < 1, "lora dropout must be in [0, 1), got %s", dropout);
    checkArgument(targets != null, "no target modules: call target(...) or targetRegex(...)");
    checkArgument(!(useDora && quantization != null), "DoRA over a quantised base (QLoRA) is not supported");
    modulesToSave = List.copyOf(modulesToSave);
  }

  /** A builder for rank {@code r}; validated in {@link Builder#build()}. */
  public static Builder builder(int r) {
    return new Builder(r);
  }

  /** {@code "LORA"}: Hugging Face PEFT saves DoRA as a LoRA adapter with {@code "use_dora": true}. */
  @Override
  public String peftType() {
    return "LORA";
  }

  /** The storage of the base's linear weights while applied (QLoRA), or empty for as they are. */
  public Optional<Quantization> quantizeBase() {
    return Optional.ofNullable(quantization);
  }

  /** The scale s of the update: α/r, or α/√r with rsLoRA. */
  public double scaling() {
    return rsLora ? alpha / Math.sqrt(r) : alpha / r;
  }

  /**
   * Σ r·(in + out) over the targeted linear layers (DoRA: Σ r·(in + out) + out, the magnitude vector), plus every
   * parameter of the modules to save.
   */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    long adapter = targets.selectLinear(GraphRewriter.of(sameDiff), useDora ? "DoRA" : "LoRA").stream()
        .mapToLong((LinearModule m) -> (long) r * (m.inFeatures() + m.outFeatures()) + (useDora ? m.outFeatures() : 0))
        .sum();
    return adapter + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /** Hugging Face PEFT's {@code LoraConfig} fields for this config. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = HfConfig.of(peftType());
    hf.put("r", r);
    hf.put("lora_alpha", alpha);
    hf.put("lora_dropout", dropout);
    hf.put("use_rslora", rsLora);
    hf.put("use_dora", useDora);
    HfConfig.putTargets(hf, targets, true);
    HfConfig.putModulesToSave(hf, modulesToSave);
    hf.put("bias", "none");
    hf.put("fan_in_fan_out", fanInFanOut);
    hf.put("init_lora_weights", true);
    hf.put("rank_pattern", Map.of());
    hf.put("alpha_pattern", Map.of());
    return hf;
  }

  /** Fields of Hugging Face's LoraConfig that peft4j reads, or knows and may ignore (AdaLoRA's build on them). */
  public static final Set<String> KNOWN_FIELDS = Set.of("r", "lora_alpha", "lora_dropout", "use_rslora", "use_dora",
      "layers_pattern", "bias", "fan_in_fan_out", "init_lora_weights", "rank_pattern", "alpha_pattern", "lora_bias",
      "loftq_config", "megatron_config", "megatron_core", "layer_replication", "runtime_config", "eva_config",
      "corda_config", "use_qalora", "qalora_group_size", "target_parameters", "trainable_token_indices",
      "alora_invocation_tokens", "arrow_config", "ensure_weight_tying", "kasa_config", "lora_ga_config",
      "monteclora_config", "use_bdlora", "velora_config");

  /**
   * A config from Hugging Face PEFT's {@code adapter_config.json} (DoRA when {@code "use_dora": true}). A missing
   * field takes Hugging Face's default; fields peft4j does not know (from newer versions) are ignored and returned in
   * {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field, for values of the wrong JSON type and for values peft4j does
   *     not implement (trained biases, per-module rank or alpha patterns, a regex exclude_modules)
   */
  public static LoraConfig fromHf(JsonObject json, Set<String> ignored) {
    JsonFields f = HfConfig.read(json, ignored, KNOWN_FIELDS);
    requireSupported(f, "rank_pattern", "alpha_pattern");
    Builder b = builder(f.integer("r", 8)).alpha(f.number("lora_alpha", 8)).dropout(f.number("lora_dropout", 0.0));
    if (f.bool("use_rslora", false)) {
      b.rsLora();
    }
    if (f.bool("use_dora", false)) {
      b.useDora();
    }
    if (f.bool("fan_in_fan_out", false)) {
      b.fanInFanOut();
    }
    return b.readHf(f).build();
  }

  /**
   * Refuses the fields of Hugging Face's LoraConfig (and of configs built on it, as AdaLoRA's) that peft4j does not
   * implement: trained biases, lora_bias, QA-LoRA, layer replication, trainable token indices, aLoRA invocation
   * tokens, per-module values in {@code patternFields}, and a missing target_modules. ({@code fan_in_fan_out} is read
   * by each method that honours it and refused by the others.)
   *
   * @throws IllegalArgumentException naming the field
   */
  public static void requireSupported(JsonFields f, String... patternFields) {
    checkArgument(f.string("bias", "none").equals("none"), "bias '%s' is not supported; only 'none'",
        f.string("bias", "none"));
    checkArgument(!f.bool("lora_bias", false), "lora_bias: true is not supported");
    // options that change the forward pass; HF writes null / false when they are off
    checkArgument(!f.bool("use_qalora", false), "use_qalora: true is not supported");
    for (String field : List.of("layer_replication", "trainable_token_indices", "alora_invocation_tokens")) {
      checkArgument(!f.has(field), "%s is not supported; only null, got %s", field, f.get(field));
    }
    for (String pattern : patternFields) {
      JsonObject values = f.object(pattern);
      checkArgument(values == null || values.size() == 0, "%s: per-module values are not supported", pattern);
    }
    checkArgument(f.has("target_modules"), "target_modules is missing: peft4j has no per-architecture default targets");
  }

  /** This config with {@code fan_in_fan_out} set to {@code value} (what applying decided). */
  LoraConfig withFanInFanOut(boolean value) {
    return new LoraConfig(r, alpha, dropout, rsLora, useDora, targets, modulesToSave, seed, quantization, value);
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return useDora ? new Dora(adapterName, this) : new Lora(adapterName, this);
  }

  @Override
  public String toString() {
    return (useDora ? "LoraConfig{DoRA, r=" : "LoraConfig{r=") + r + ", alpha=" + alpha + ", dropout=" + dropout
        + ", rsLora=" + rsLora + ", targets=" + targets + ", seed=" + seed + ", modulesToSave=" + modulesToSave
        + (quantization == null ? "" : ", quantizeBase=" + quantization) + (fanInFanOut ? ", fanInFanOut" : "") + "}";
  }

  /** Builds a {@link LoraConfig}; each option can be set once. */
  public static final class Builder extends TargetedConfigBuilder<LoraConfig, Builder> {
    private final int r;
    private Double alpha;
    private Double dropout;
    private boolean rsLora;
    private boolean useDora;
    private Quantization quantizeBase;
    private boolean fanInFanOut;

    private Builder(int r) {
      this.r = r;
    }

    /** α; default 8, as Hugging Face's {@code lora_alpha}. Must be &gt; 0. */
    public Builder alpha(double alpha) {
      checkState(this.alpha == null, "alpha was already set to %s", this.alpha);
      this.alpha = alpha;
      return this;
    }

    /**
     * Dropout on the branch's input while training; default 0. Must be in [0, 1). With DoRA, as in Hugging Face
     * PEFT, both the low-rank branch and the rescaled base product read the dropped input while training.
     */
    public Builder dropout(double p) {
      checkState(dropout == null, "dropout was already set to %s", dropout);
      this.dropout = p;
      return this;
    }

    /** Scale by α/√r instead of α/r (rsLoRA); default off. */
    public Builder rsLora() {
      checkState(!rsLora, "rsLora was already set");
      this.rsLora = true;
      return this;
    }

    /** DoRA instead of LoRA (Hugging Face's {@code use_dora=True}); default off. */
    public Builder useDora() {
      checkState(!useDora, "useDora was already set");
      this.useDora = true;
      return this;
    }

    /**
     * The targets are Hugging Face {@code Conv1D} layers, stored {@code [in, out]} (GPT-2's {@code c_attn},
     * {@code c_proj}, {@code c_fc}): Hugging Face's {@code fan_in_fan_out=True}. Default off; as in Hugging Face,
     * applying to {@code Conv1D} targets turns it on (with a warning), and applying it to {@code nn.Linear} targets
     * is refused, naming the module and both shapes.
     */
    public Builder fanInFanOut() {
      checkState(!fanInFanOut, "fanInFanOut was already set");
      this.fanInFanOut = true;
      return this;
    }

    /**
     * Store the base's linear weights quantised (QLoRA): when applied, every linear layer except the output heads
     * and the modules to save is replaced by its packed form ({@link QuantizedBase}), unless already stored in this
     * form, and the adapter trains on top. The base stays quantised after unload, as a base loaded in 4 bits does in
     * Hugging Face. Default: leave the base as it is.
     */
    public Builder quantizeBase(Quantization quantization) {
      checkState(quantizeBase == null, "quantizeBase was already set to %s", quantizeBase);
      checkArgument(quantization != null, "quantization must not be null");
      this.quantizeBase = quantization;
      return this;
    }

    /**
     * @throws IllegalArgumentException naming the bad value and the allowed range: r ≤ 0, α ≤ 0 or not finite,
     *     dropout outside [0, 1), no targets
     */
    @Override
    public LoraConfig build() {
      return new LoraConfig(r, alpha == null ? 8 : alpha, dropout == null ? 0 : dropout, rsLora, useDora,
          requiredTargets(), modulesToSave(), seed(), quantizeBase, fanInFanOut);
    }
  }
}
