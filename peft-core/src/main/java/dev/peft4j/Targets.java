package dev.peft4j;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableSortedSet;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import java.util.stream.Collectors;

/**
 * Which modules a method adapts, matched as Hugging Face PEFT matches {@code target_modules}.
 *
 * <ul>
 *   <li>{@link #names(String...)}: a module matches when its full name equals an entry or ends with
 *       {@code "." + entry}; {@code names("q_proj")} matches {@code layers.3.self_attn.q_proj}. Every entry must
 *       match at least one module.
 *   <li>{@link #regex(String)}: the pattern must match the whole module name.
 *   <li>{@code names("all-linear")}: every linear module except the output head (a linear with no linear after it;
 *       when that is a top-level module's sub-linear, {@code classifier.out_proj}, the whole {@code classifier}).
 *   <li>{@link #exclude(String...)} removes modules by the same list rule; {@link #layers(int...)} keeps only
 *       modules inside the given layer indices ({@code layers.<i>.}, {@code layer.<i>.}, {@code h.<i>.},
 *       {@code block.<i>.} or {@code blocks.<i>.}, as HF's {@code layers_to_transform}).
 * </ul>
 *
 * <p>Immutable; {@code exclude} and {@code layers} return new instances.
 */
public final class Targets {

  /** The special {@code target_modules} value for every linear layer but the output head. */
  public static final String ALL_LINEAR = "all-linear";

  private static final Pattern LAYER_INDEX = Pattern.compile("(?:^|\\.)(?:layers|layer|h|block|blocks)\\.(\\d+)\\.");

  private final ImmutableList<String> names; // empty when regex is set
  private final Pattern regex;               // null for list matching
  private final ImmutableList<String> excluded;
  private final ImmutableSortedSet<Integer> layers; // empty: all layers

  private Targets(ImmutableList<String> names, Pattern regex, ImmutableList<String> excluded,
      ImmutableSortedSet<Integer> layers) {
    this.names = names;
    this.regex = regex;
    this.excluded = excluded;
    this.layers = layers;
  }

  /**
   * Modules named {@code names} (exact name or {@code .name} suffix), or {@value #ALL_LINEAR}.
   *
   * @throws IllegalArgumentException if {@code names} is empty or holds a blank entry, or mixes
   *     {@value #ALL_LINEAR} with other names
   */
  public static Targets names(String... names) {
    checkArgument(names != null && names.length > 0, "target modules must not be empty");
    for (String n : names) {
      checkArgument(n != null && !n.isBlank(), "target module names must not be blank: %s", Arrays.toString(names));
    }
    ImmutableList<String> list = ImmutableList.copyOf(names);
    checkArgument(!list.contains(ALL_LINEAR) || list.size() == 1,
        "'%s' stands alone; got %s", ALL_LINEAR, list);
    return new Targets(list, null, ImmutableList.of(), ImmutableSortedSet.of());
  }

  /**
   * The longest target regex accepted. Hugging Face's are a few hundred characters; java.util.regex compiles a long
   * literal in quadratic time (5 s for 65,536 characters), which a file must not be able to demand.
   */
  public static final int MAX_REGEX_CHARS = 4096;

  /**
   * Modules whose whole name matches {@code regex}.
   *
   * @throws IllegalArgumentException if the pattern is longer than {@value #MAX_REGEX_CHARS} characters or does not
   *     compile
   */
  public static Targets regex(String regex) {
    checkArgument(regex != null && !regex.isBlank(), "target regex must not be blank");
    checkArgument(regex.length() <= MAX_REGEX_CHARS, "target regex has %s characters; at most %s are supported",
        regex.length(), MAX_REGEX_CHARS);
    try {
      return new Targets(ImmutableList.of(), Pattern.compile(regex), ImmutableList.of(), ImmutableSortedSet.of());
    } catch (PatternSyntaxException e) {
      throw new IllegalArgumentException("target regex does not compile: " + e.getMessage(), e);
    }
  }

  /** These targets without the modules named {@code names} (exact name or {@code .name} suffix). */
  public Targets exclude(String... names) {
    checkArgument(names != null && names.length > 0, "exclude needs at least one module name");
    return new Targets(this.names, regex,
        ImmutableList.<String>builder().addAll(excluded).add(names).build(), layers);
  }

  /**
   * These targets restricted to the given layer indices.
   *
   * @throws IllegalArgumentException if an index is negative or none is given
   */
  public Targets layers(int... indices) {
    checkArgument(indices != null && indices.length > 0, "layers needs at least one index");
    for (int i : indices) {
      checkArgument(i >= 0, "layer indices must be >= 0, got %s", i);
    }
    return new Targets(names, regex, excluded,
        ImmutableSortedSet.copyOf(Arrays.stream(indices).boxed().collect(Collectors.toList())));
  }

  /** The list entries (empty for a regex). */
  public List<String> entries() {
    return names;
  }

  /** The regex, if these targets are a regex. */
  public Optional<String> regex() {
    return Optional.ofNullable(regex).map(Pattern::pattern);
  }

  public List<String> excluded() {
    return excluded;
  }

  public Set<Integer> layers() {
    return layers;
  }

  public boolean isAllLinear() {
    return names.equals(List.of(ALL_LINEAR));
  }

  /**
   * The linear modules of {@code graph} these targets select, in graph order.
   *
   * @throws IllegalArgumentException if an entry matches no module (the message lists the modules that exist), if
   *     nothing is left after {@code exclude} and {@code layers}, or if a selected module is not a linear layer
   */
  public List<LinearModule> selectLinear(GraphRewriter graph, String method) {
    List<LinearModule> linear = graph.linearModules();
    List<String> modules = graph.moduleNames();
    List<String> selected = new ArrayList<>();
    if (isAllLinear()) {
      Set<String> heads = graph.outputHeads();
      // a top-level head of several linears (RoBERTa's classifier.dense → classifier.out_proj) is left out whole, as
      // PEFT leaves out a SEQ_CLS model's classifier module
      Set<String> headModules = heads.stream().filter(h -> h.indexOf('.') > 0 && h.indexOf('.') == h.lastIndexOf('.'))
          .map(h -> h.substring(0, h.indexOf('.') + 1)).collect(Collectors.toSet());
      linear.stream().map(LinearModule::name)
          .filter(n -> !heads.contains(n) && headModules.stream().noneMatch(n::startsWith)).forEach(selected::add);
    } else if (regex != null) {
      modules.stream().filter(m -> regex.matcher(m).matches()).forEach(selected::add);
      checkArgument(!selected.isEmpty(), "target regex '%s' matches no module. Modules that exist: %s",
          regex.pattern(), modules);
    } else {
      List<String> unmatched = names.stream()
          .filter(n -> modules.stream().noneMatch(m -> matchesEntry(m, n)))
          .collect(Collectors.toList());
      checkArgument(unmatched.isEmpty(), "target modules %s not found in the graph. Modules that exist: %s",
          unmatched, modules);
      modules.stream().filter(m -> names.stream().anyMatch(n -> matchesEntry(m, n))).forEach(selected::add);
    }
    selected.removeIf(m -> excluded.stream().anyMatch(e -> matchesEntry(m, e)));
    if (!layers.isEmpty()) {
      selected.removeIf(m -> layerIndex(m).map(i -> !layers.contains(i)).orElse(true));
    }
    checkArgument(!selected.isEmpty(), "no module left to adapt after exclude %s and layers %s (targets %s)",
        excluded, layers, this);
    Set<String> notLinear = new TreeSet<>(selected);
    linear.forEach(l -> notLinear.remove(l.name()));
    checkArgument(notLinear.isEmpty(), "%s adapts linear layers, but target modules %s are not linear layers. "
        + "Linear layers that exist: %s", method, notLinear, linear.stream().map(LinearModule::name).toList());
    Set<String> chosen = Set.copyOf(selected);
    return linear.stream().filter(l -> chosen.contains(l.name())).collect(ImmutableList.toImmutableList());
  }

  /** The layer index in a module name such as {@code model.layers.7.mlp.up_proj}, if any. */
  static Optional<Integer> layerIndex(String module) {
    Matcher m = LAYER_INDEX.matcher(module + ".");
    return m.find() ? Optional.of(Integer.parseInt(m.group(1))) : Optional.empty();
  }

  private static boolean matchesEntry(String module, String entry) {
    return module.equals(entry) || module.endsWith("." + entry);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Targets t && names.equals(t.names) && Objects.equals(regex(), t.regex())
        && excluded.equals(t.excluded) && layers.equals(t.layers);
  }

  @Override
  public int hashCode() {
    return Objects.hash(names, regex(), excluded, layers);
  }

  @Override
  public String toString() {
    StringBuilder s = new StringBuilder(regex != null ? "regex(" + regex.pattern() + ")" : names.toString());
    if (!excluded.isEmpty()) {
      s.append(" exclude ").append(excluded);
    }
    if (!layers.isEmpty()) {
      s.append(" layers ").append(layers);
    }
    return s.toString();
  }
}
