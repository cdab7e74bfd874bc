package dev.peft4j;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.io.JsonFields;
import java.util.List;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The options every method's builder shares: the modules trained in full beside the adapter and the seed of its
 * random initialisation, each settable once, and {@link #apply}. Methods that rewrite chosen modules build on
 * {@link TargetedConfigBuilder}, which adds the targets. Self-typed, so a method's own options chain in any order:
 * {@code Peft.promptTuning(20).seed(3).modulesToSave("classifier").init(PromptInit.RANDOM)}.
 *
 * @param <C> the config built
 * @param <B> the builder itself
 */
public abstract class ConfigBuilder<C extends AdapterConfig, B extends ConfigBuilder<C, B>> {

  private List<String> modulesToSave;
  private Long seed;

  protected ConfigBuilder() {}

  /** Modules (e.g. a task head) trained in full beside the adapter, as HF's {@code modules_to_save}; default none. */
  public B modulesToSave(String... modules) {
    checkState(modulesToSave == null, "modules to save were already set to %s", modulesToSave);
    for (String m : modules) {
      checkArgument(m != null && !m.isBlank(), "modules to save must not be blank: %s", List.of(modules));
    }
    this.modulesToSave = List.of(modules);
    return self();
  }

  /** Seed of the adapter's random initialisation; default 0. */
  public B seed(long seed) {
    checkState(this.seed == null, "seed was already set to %s", this.seed);
    this.seed = seed;
    return self();
  }

  /**
   * The config.
   *
   * @throws IllegalArgumentException naming a bad value and the allowed range
   */
  public abstract C build();

  /** {@code build().apply(sameDiff)}. */
  public PeftModel apply(SameDiff sameDiff) {
    return build().apply(sameDiff);
  }

  /** The modules to save given, or none. */
  protected List<String> modulesToSave() {
    return modulesToSave == null ? List.of() : modulesToSave;
  }

  /** The seed given, or 0. */
  protected long seed() {
    return seed == null ? 0 : seed;
  }

  /** Reads the fields every method shares from a Hugging Face config: {@code modules_to_save}. */
  public B readHf(JsonFields f) {
    if (f.has("modules_to_save")) {
      modulesToSave(f.strings("modules_to_save").toArray(String[]::new));
    }
    return self();
  }

  @SuppressWarnings("unchecked")
  protected final B self() {
    return (B) this;
  }
}
