package dev.peft4j.bitfit;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.Targets;
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
    return chosenLayers(config(), g).stream().map(LinearModule::bias).toList();
  }

  /**
   * The linear layers whose bias trains, in graph order: the targeted ones (every linear layer by default) that have
   * a bias, without the modules to save (trained in full anyway).
   *
   * @throws IllegalArgumentException if no linear layer of the graph has a bias (the Llama/Qwen family), if a
   *     target named explicitly has no bias (listing the layers that have one), or if nothing is left
   */
  static List<LinearModule> chosenLayers(BitFitConfig config, GraphRewriter g) {
    List<LinearModule> all = g.linearModules();
    List<String> withBias = all.stream().filter(LinearModule::hasBias).map(LinearModule::name).toList();
    checkArgument(!withBias.isEmpty(), "BitFit trains the biases of linear layers, but this model's linear layers "
        + "have no biases (e.g. the Llama/Qwen family); linear layers: %s. Train norm layers with "
        + "Peft.lnTuning() or use Peft.lora(...) instead", all.stream().map(LinearModule::name).toList());
    Targets targets = config.targetsAllLinearLayers() ? null : config.targets();
    List<LinearModule> targeted = targets == null ? all : targets.selectLinear(g, "BitFit");
    if (targets != null && targets.regex().isEmpty() && !targets.isAllLinear()) {
      List<String> biasFree = targeted.stream().filter(m -> !m.hasBias()).map(LinearModule::name).toList();
      checkArgument(biasFree.isEmpty(), "BitFit target modules %s have no bias (they use no bias parameter); "
          + "linear layers with a bias: %s", biasFree, withBias);
    }
    List<String> modulesToSave = config.modulesToSave();
    List<LinearModule> chosen = targeted.stream().filter(LinearModule::hasBias)
        .filter(m -> modulesToSave.stream().noneMatch(s -> m.name().equals(s) || m.name().endsWith("." + s)))
        .toList();
    checkArgument(!chosen.isEmpty(), "BitFit: none of the targeted linear layers %s has a bias outside "
        + "modules_to_save %s; linear layers with a bias: %s", targeted.stream().map(LinearModule::name).toList(),
        modulesToSave, withBias);
    return chosen;
  }
}
