package dev.peft4j.bitfit;

import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.selective.SelectiveAdapter;
import java.util.List;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * BitFit: only the bias vectors of the chosen linear layers train; see the package documentation for the math.
 * The trainable copies live at {@code peft/<adapter>/bitfit/<module>.bias}; the saved keys are the biases' own
 * ({@code <module>.bias}). Layers without a bias are never touched: in peft4j's graphs they add a shared zero
 * constant ({@code zero_bias_<out>}), which is no parameter.
 */
public final class BitFit extends SelectiveAdapter<BitFitConfig> {

  BitFit(String name, BitFitConfig config) {
    super(name, config, "bitfit");
  }

  @Override
  protected List<String> select(SameDiff sameDiff, GraphRewriter g) {
    return config().select(g).stream().map(LinearModule::bias).toList();
  }
}
