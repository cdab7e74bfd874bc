package dev.peft4j.selective;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.graph.GraphRewriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * Linear probing: only the task head trains (a classifier's weight and bias, or an untied {@code lm_head}); the
 * copies live at {@code peft/<adapter>/linear_probe/<module>.<param>} and are saved under the parameters' own names.
 */
public final class LinearProbe extends SelectiveAdapter<LinearProbeConfig> {

  LinearProbe(String name, LinearProbeConfig config) {
    super(name, config, "linear_probe");
  }

  @Override
  protected List<String> select(SameDiff sameDiff, GraphRewriter g) {
    return chosenParameters(config(), sameDiff, g);
  }

  /**
   * The head's parameters, in graph order: every parameter of the named modules, or of the output heads (linear
   * layers no matmul follows, as {@code all-linear} defines them).
   *
   * @throws IllegalArgumentException if a named module does not exist (listing the modules that do), or the graph
   *     has no output head (a tied {@code lm_head} reuses the embedding matrix, which cannot be trained here)
   */
  static List<String> chosenParameters(LinearProbeConfig config, SameDiff sameDiff, GraphRewriter g) {
    List<String> head = config.head();
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
}
