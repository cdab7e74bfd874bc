package dev.peft4j;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.gson.JsonElement;
import dev.peft4j.io.JsonFields;

/**
 * A {@link ConfigBuilder} for methods that rewrite chosen modules: the targets by name or regex, the modules left
 * out, and the layers kept, each settable once, read from and written to Hugging Face's {@code target_modules},
 * {@code exclude_modules} and {@code layers_to_transform}.
 *
 * @param <C> the config built
 * @param <B> the builder itself
 */
public abstract class TargetedConfigBuilder<C extends AdapterConfig, B extends TargetedConfigBuilder<C, B>>
    extends ConfigBuilder<C, B> {

  private Targets targets;
  private String[] exclude;
  private int[] layers;

  protected TargetedConfigBuilder() {}

  /** Target modules by name (exact or {@code .name} suffix), or {@code "all-linear"}. */
  public B target(String... modules) {
    checkState(targets == null, "targets were already set to %s", targets);
    this.targets = Targets.names(modules);
    return self();
  }

  /** Target modules whose whole name matches {@code regex}. */
  public B targetRegex(String regex) {
    checkState(targets == null, "targets were already set to %s", targets);
    this.targets = Targets.regex(regex);
    return self();
  }

  /** Leave out these modules (exact name or {@code .name} suffix). */
  public B exclude(String... modules) {
    checkState(exclude == null, "exclude was already set");
    this.exclude = modules.clone();
    return self();
  }

  /** Adapt only modules inside these layer indices. */
  public B layers(int... indices) {
    checkState(layers == null, "layers were already set");
    this.layers = indices.clone();
    return self();
  }

  /**
   * The targets given, with {@code exclude} and {@code layers} applied; null when none were given (the method's
   * default, if it has one).
   *
   * @throws IllegalArgumentException if {@code exclude} or {@code layers} was given without targets
   */
  protected Targets targets() {
    checkArgument(targets != null || (exclude == null && layers == null),
        "exclude and layers narrow the targets, but no targets were given: call target(...) or targetRegex(...)");
    Targets t = targets;
    if (t != null && exclude != null) {
      t = t.exclude(exclude);
    }
    if (t != null && layers != null) {
      t = t.layers(layers);
    }
    return t;
  }

  /**
   * The targets given, as {@link #targets()}.
   *
   * @throws IllegalArgumentException naming the method when no targets were given
   */
  protected Targets requiredTargets() {
    Targets t = targets();
    checkArgument(t != null, "no target modules: call target(...) or targetRegex(...)");
    return t;
  }

  /**
   * Also reads {@code target_modules} (a list of names, {@code "all-linear"}, or another string as a regex),
   * {@code exclude_modules} (a list) and {@code layers_to_transform} (an index or a list).
   */
  @Override
  public B readHf(JsonFields f) {
    JsonElement targetModules = f.get("target_modules");
    if (targetModules != null && targetModules.isJsonPrimitive()) {
      String value = f.string("target_modules", null);
      if (value.equals(Targets.ALL_LINEAR)) {
        target(Targets.ALL_LINEAR);
      } else {
        targetRegex(value);
      }
    } else if (targetModules != null) {
      target(f.strings("target_modules").toArray(String[]::new));
    }
    JsonElement excluded = f.get("exclude_modules");
    if (excluded != null) {
      checkArgument(excluded.isJsonArray(), "exclude_modules as a regex is not supported; give a list");
      checkArgument(targetModules != null, "exclude_modules needs target_modules");
      exclude(f.strings("exclude_modules").toArray(String[]::new));
    }
    if (f.has("layers_to_transform")) {
      layers(f.integers("layers_to_transform"));
    }
    return super.readHf(f);
  }
}
