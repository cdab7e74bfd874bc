package dev.peft4j.dora;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.lora.LoraConfig;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of a DoRA adapter; built by {@code Peft.dora(r)}. It holds the configuration of its
 * low-rank part as a {@link LoraConfig} (rank, α, rsLoRA, dropout, targets, seed, modules to save): DoRA adds only the
 * magnitude vectors, which need no options.
 *
 * <pre>{@code
 * DoraConfig cfg = Peft.dora(8).alpha(16).dropout(0.05).target("q_proj", "v_proj").build();
 * PeftModel m = cfg.apply(sameDiff);
 * }</pre>
 *
 * @see Dora
 */
public final class DoraConfig implements AdapterConfig {

  private final LoraConfig lowRank;

  private DoraConfig(LoraConfig lowRank) {
    this.lowRank = lowRank;
  }

  /** A builder for rank {@code r}; validated in {@link Builder#build()}. */
  public static Builder builder(int r) {
    return new Builder(r);
  }

  /** Hugging Face PEFT saves DoRA as a LoRA adapter with {@code "use_dora": true}. */
  @Override
  public String peftType() {
    return "LORA";
  }

  /** The low-rank part's options: r, α, dropout, rsLoRA, targets, seed, modules to save. */
  public LoraConfig lowRank() {
    return lowRank;
  }

  /** The rank r of the direction update. */
  public int r() {
    return lowRank.r();
  }

  /** α, Hugging Face's {@code lora_alpha}. */
  public double alpha() {
    return lowRank.alpha();
  }

  /** Probability of zeroing an input element of the adapted layer while training. */
  public double dropout() {
    return lowRank.dropout();
  }

  /** Whether the scaling is α/√r (rank-stabilised) rather than α/r. */
  public boolean rsLora() {
    return lowRank.rsLora();
  }

  /** The scale s of the low-rank update: α/r, or α/√r with rsLoRA. */
  public double scaling() {
    return lowRank.scaling();
  }

  /** Seed of the initial A matrices. */
  public long seed() {
    return lowRank.seed();
  }

  @Override
  public Targets targets() {
    return lowRank.targets();
  }

  @Override
  public List<String> modulesToSave() {
    return lowRank.modulesToSave();
  }

  /** LoRA's count plus one magnitude per output feature: Σ (r·(in + out) + out), plus the modules to save. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    long magnitudes = targets().selectLinear(GraphRewriter.of(sameDiff), "DoRA").stream()
        .mapToLong(LinearModule::outFeatures).sum();
    return lowRank.parameterCount(sameDiff) + magnitudes;
  }

  /** Hugging Face PEFT's {@code LoraConfig} fields, with {@code use_dora: true}. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = lowRank.toHfConfig();
    hf.put("use_dora", true);
    return hf;
  }

  /**
   * A config from Hugging Face PEFT's {@code adapter_config.json} of a LoRA adapter with {@code "use_dora": true};
   * the other fields are read as {@link LoraConfig#fromHf} reads them.
   *
   * @throws IllegalArgumentException if {@code use_dora} is not true, or naming a field peft4j does not implement
   */
  public static DoraConfig fromHf(JsonObject json, Set<String> ignored) {
    checkArgument(json.has("use_dora") && !json.get("use_dora").isJsonNull() && json.get("use_dora").getAsBoolean(),
        "use_dora: a DoRA adapter's config has \"use_dora\": true, got %s", json.get("use_dora"));
    JsonObject lora = json.deepCopy();
    lora.add("use_dora", new JsonPrimitive(false)); // the low-rank part alone is a plain LoRA config
    return new DoraConfig(LoraConfig.fromHf(lora, ignored));
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new Dora(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof DoraConfig c && lowRank.equals(c.lowRank);
  }

  @Override
  public int hashCode() {
    return 31 * lowRank.hashCode() + 1;
  }

  @Override
  public String toString() {
    return "DoraConfig{r=" + r() + ", alpha=" + alpha() + ", dropout=" + dropout() + ", rsLora=" + rsLora()
        + ", targets=" + targets() + ", seed=" + seed() + ", modulesToSave=" + modulesToSave() + "}";
  }

  /** Builds a {@link DoraConfig}; each option can be set once. */
  public static final class Builder {
    private final int r;
    private final LoraConfig.Builder lowRank;

    private Builder(int r) {
      this.r = r;
      this.lowRank = LoraConfig.builder(r);
    }

    /** α; default 8, as Hugging Face's {@code lora_alpha}. Must be &gt; 0. */
    public Builder alpha(double alpha) {
      lowRank.alpha(alpha);
      return this;
    }

    /**
     * Dropout on the adapted layer's input while training; default 0. Must be in [0, 1). As in Hugging Face PEFT,
     * while training both the low-rank branch and the rescaled base product read the dropped input.
     */
    public Builder dropout(double p) {
      lowRank.dropout(p);
      return this;
    }

    /** Scale the low-rank update by α/√r instead of α/r (rsLoRA); default off. */
    public Builder rsLora() {
      lowRank.rsLora();
      return this;
    }

    /** Target modules by name (exact or {@code .name} suffix), or {@code "all-linear"}. Required (or a regex). */
    public Builder target(String... modules) {
      lowRank.target(modules);
      return this;
    }

    /** Target modules whose whole name matches {@code regex}. */
    public Builder targetRegex(String regex) {
      lowRank.targetRegex(regex);
      return this;
    }

    /** Leave out these modules (exact name or {@code .name} suffix). */
    public Builder exclude(String... modules) {
      lowRank.exclude(modules);
      return this;
    }

    /** Adapt only modules inside these layer indices. */
    public Builder layers(int... indices) {
      lowRank.layers(indices);
      return this;
    }

    /** Seed of the initial A matrices; default 0. */
    public Builder seed(long seed) {
      lowRank.seed(seed);
      return this;
    }

    /** Modules (e.g. a task head) trained in full beside the adapter, as HF's {@code modules_to_save}; default none. */
    public Builder modulesToSave(String... modules) {
      lowRank.modulesToSave(modules);
      return this;
    }

    /**
     * @throws IllegalArgumentException naming the bad value and the allowed range: r ≤ 0, α ≤ 0 or not finite,
     *     dropout outside [0, 1), no targets
     */
    public DoraConfig build() {
      checkArgument(r > 0, "DoRA rank r must be > 0, got %s", r);
      return new DoraConfig(lowRank.build());
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
