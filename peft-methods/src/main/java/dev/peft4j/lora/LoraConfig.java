package dev.peft4j.lora;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.ModulesToSave;
import dev.peft4j.PeftModel;
import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import java.util.List;
import java.util.Objects;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of a LoRA (or rsLoRA) adapter; built by {@code Peft.lora(r)}.
 *
 * <pre>{@code
 * LoraConfig cfg = Peft.lora(16).alpha(32).dropout(0.05).target("q_proj", "v_proj").build();
 * PeftModel m = cfg.apply(sameDiff);
 * }</pre>
 *
 * @see Lora
 */
public final class LoraConfig implements AdapterConfig {

  private final int r;
  private final double alpha;
  private final double dropout;
  private final boolean rsLora;
  private final Targets targets;
  private final long seed;
  private final List<String> modulesToSave;

  private LoraConfig(int r, double alpha, double dropout, boolean rsLora, Targets targets, long seed,
      List<String> modulesToSave) {
    this.r = r;
    this.alpha = alpha;
    this.dropout = dropout;
    this.rsLora = rsLora;
    this.targets = targets;
    this.seed = seed;
    this.modulesToSave = modulesToSave;
  }

  /** A builder for rank {@code r}; validated in {@link Builder#build()}. */
  public static Builder builder(int r) {
    return new Builder(r);
  }

  @Override
  public String peftType() {
    return "LORA";
  }

  /** The rank r of the update. */
  public int r() {
    return r;
  }

  /** α, Hugging Face's {@code lora_alpha}. */
  public double alpha() {
    return alpha;
  }

  /** Probability of zeroing an input element of the low-rank branch while training. */
  public double dropout() {
    return dropout;
  }

  /** Whether the scaling is α/√r (rank-stabilised) rather than α/r. */
  public boolean rsLora() {
    return rsLora;
  }

  @Override
  public Targets targets() {
    return targets;
  }

  /** Seed of the initial A matrices. */
  public long seed() {
    return seed;
  }

  @Override
  public List<String> modulesToSave() {
    return modulesToSave;
  }

  /** The scale s of the update: α/r, or α/√r with rsLoRA. */
  public double scaling() {
    return rsLora ? alpha / Math.sqrt(r) : alpha / r;
  }

  /** Σ r·(in + out) over the targeted linear layers, plus every parameter of the modules to save. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    long lora = targets.selectLinear(GraphRewriter.of(sameDiff), "LoRA").stream()
        .mapToLong((LinearModule m) -> (long) r * (m.inFeatures() + m.outFeatures())).sum();
    return lora + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new Lora(adapterName, this);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof LoraConfig c && r == c.r && alpha == c.alpha && dropout == c.dropout && rsLora == c.rsLora
        && targets.equals(c.targets) && seed == c.seed && modulesToSave.equals(c.modulesToSave);
  }

  @Override
  public int hashCode() {
    return Objects.hash(r, alpha, dropout, rsLora, targets, seed, modulesToSave);
  }

  @Override
  public String toString() {
    return "LoraConfig{r=" + r + ", alpha=" + alpha + ", dropout=" + dropout + ", rsLora=" + rsLora
        + ", targets=" + targets + ", seed=" + seed + ", modulesToSave=" + modulesToSave + "}";
  }

  /** Builds a {@link LoraConfig}; each option can be set once. */
  public static final class Builder {
    private final int r;
    private Double alpha;
    private Double dropout;
    private boolean rsLora;
    private Targets targets;
    private String[] exclude;
    private int[] layers;
    private Long seed;
    private List<String> modulesToSave;

    private Builder(int r) {
      this.r = r;
    }

    /** α; default 8, as Hugging Face's {@code lora_alpha}. Must be &gt; 0. */
    public Builder alpha(double alpha) {
      checkState(this.alpha == null, "alpha was already set to %s", this.alpha);
      this.alpha = alpha;
      return this;
    }

    /** Dropout on the branch's input while training; default 0. Must be in [0, 1). */
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

    /** Target modules by name (exact or {@code .name} suffix), or {@code "all-linear"}. Required (or a regex). */
    public Builder target(String... modules) {
      checkState(targets == null, "targets were already set to %s", targets);
      this.targets = Targets.names(modules);
      return this;
    }

    /** Target modules whose whole name matches {@code regex}. */
    public Builder targetRegex(String regex) {
      checkState(targets == null, "targets were already set to %s", targets);
      this.targets = Targets.regex(regex);
      return this;
    }

    /** Leave out these modules (exact name or {@code .name} suffix). */
    public Builder exclude(String... modules) {
      checkState(exclude == null, "exclude was already set");
      this.exclude = modules.clone();
      return this;
    }

    /** Adapt only modules inside these layer indices. */
    public Builder layers(int... indices) {
      checkState(layers == null, "layers were already set");
      this.layers = indices.clone();
      return this;
    }

    /** Seed of the initial A matrices; default 0. */
    public Builder seed(long seed) {
      checkState(this.seed == null, "seed was already set to %s", this.seed);
      this.seed = seed;
      return this;
    }

    /** Modules (e.g. a task head) trained in full beside the adapter, as HF's {@code modules_to_save}; default none. */
    public Builder modulesToSave(String... modules) {
      checkState(modulesToSave == null, "modules to save were already set to %s", modulesToSave);
      this.modulesToSave = List.of(modules);
      return this;
    }

    /**
     * @throws IllegalArgumentException naming the bad value and the allowed range: r ≤ 0, α ≤ 0 or not finite,
     *     dropout outside [0, 1), no targets
     */
    public LoraConfig build() {
      checkArgument(r > 0, "LoRA rank r must be > 0, got %s", r);
      double a = alpha == null ? 8 : alpha;
      checkArgument(a > 0 && Double.isFinite(a), "lora alpha must be > 0 and finite, got %s", a);
      double p = dropout == null ? 0 : dropout;
      checkArgument(p >= 0 && p < 1, "lora dropout must be in [0, 1), got %s", p);
      checkArgument(targets != null, "no target modules: call target(...) or targetRegex(...)");
      Targets t = targets;
      if (exclude != null) {
        t = t.exclude(exclude);
      }
      if (layers != null) {
        t = t.layers(layers);
      }
      return new LoraConfig(r, a, p, rsLora, t, seed == null ? 0 : seed,
          modulesToSave == null ? List.of() : modulesToSave);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
