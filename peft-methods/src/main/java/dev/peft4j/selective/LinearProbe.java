package dev.peft4j.selective;

import dev.peft4j.graph.GraphRewriter;
import java.util.List;
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
    return config().select(sameDiff, g);
  }
}
