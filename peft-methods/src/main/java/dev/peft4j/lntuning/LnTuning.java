package dev.peft4j.lntuning;

import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.selective.SelectiveAdapter;
import java.util.List;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * LayerNorm tuning: only the norm layers' γ (and β) train; see the package documentation. As Hugging Face PEFT's
 * {@code LNTuningLayer} trains a copy of the norm layer ({@code ln_tuning_layers}), the copies live at
 * {@code peft/<adapter>/ln_tuning/<module>.<param>} and are saved under {@code <module>.ln_tuning_layers.<param>}.
 */
public final class LnTuning extends SelectiveAdapter<LnTuningConfig> {

  LnTuning(String name, LnTuningConfig config) {
    super(name, config, "ln_tuning");
  }

  @Override
  protected List<String> select(SameDiff sameDiff, GraphRewriter g) {
    return config().select(sameDiff, g).values().stream().flatMap(List::stream).toList();
  }

  /** {@code <module>.ln_tuning_layers.<param>}, as Hugging Face PEFT saves it. */
  @Override
  protected String key(String parameter) {
    int dot = parameter.lastIndexOf('.');
    return parameter.substring(0, dot) + ".ln_tuning_layers" + parameter.substring(dot);
  }
}
