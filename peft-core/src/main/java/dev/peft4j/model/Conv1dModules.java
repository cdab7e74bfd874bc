package dev.peft4j.model;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.graph.LinearModule;
import java.util.List;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which linear modules of a graph are Hugging Face {@code Conv1D} layers (GPT-2's {@code c_attn}, {@code c_proj},
 * {@code c_fc}): they store their weight {@code [in, out]} in a checkpoint, where {@code nn.Linear} stores
 * {@code [out, in]}. In the graph both are {@code x·W} with W {@code [in, out]}, so an adapter computes the same
 * either way; the difference matters only for Hugging Face PEFT's {@code fan_in_fan_out} flag, which says the base
 * weight is stored {@code [in, out]} and which Hugging Face sets for {@code Conv1D} targets.
 *
 * <p>The graph records it as a boolean constant {@code <module>.conv1d} beside the weight, so that the fact survives
 * {@code SameDiff.save}/{@code load} and needs no side table.
 */
public final class Conv1dModules {

  static final String SUFFIX = ".conv1d";
  private static final Logger LOG = LoggerFactory.getLogger(Conv1dModules.class);

  private Conv1dModules() {}

  /** Records that {@code module}'s checkpoint weight is a {@code Conv1D} one, stored {@code [in, out]}. */
  static void mark(SameDiff sd, String module) {
    sd.constant(module + SUFFIX, Nd4j.scalar(true));
  }

  /** Whether linear module {@code module} of {@code sd} is a Hugging Face {@code Conv1D} (weight stored [in, out]). */
  public static boolean isConv1d(SameDiff sd, String module) {
    return sd.hasVariable(module + SUFFIX);
  }

  /**
   * The {@code fan_in_fan_out} value an adapter on {@code targets} records, as Hugging Face PEFT decides it: true
   * when the targets are {@code Conv1D} layers, false for {@code nn.Linear} ones. A {@code requested} false on
   * {@code Conv1D} targets is corrected to true with a warning, as Hugging Face does (the flag does not change the
   * adapter's arithmetic in peft4j, whose graph holds every weight {@code [in, out]}; it is what a saved file tells
   * Hugging Face about the base).
   *
   * @throws IllegalArgumentException when {@code requested} is true but a target is an {@code nn.Linear} (naming
   *     the module and both shapes), or when the targets mix {@code Conv1D} and {@code nn.Linear} layers (one flag
   *     cannot describe both); checked before anything is changed
   */
  public static boolean fanInFanOut(SameDiff sd, List<LinearModule> targets, boolean requested, String method) {
    List<String> conv = targets.stream().map(LinearModule::name).filter(n -> isConv1d(sd, n)).toList();
    for (LinearModule m : targets) {
      checkArgument(!requested || isConv1d(sd, m.name()), "%s fan_in_fan_out=true says module '%s' stores its "
          + "weight [in, out] = [%s, %s] (a Conv1D), but the checkpoint stores it [out, in] = [%s, %s] (nn.Linear); "
          + "leave fan_in_fan_out false for it", method, m.name(), m.inFeatures(), m.outFeatures(), m.outFeatures(),
          m.inFeatures());
    }
    checkArgument(conv.isEmpty() || conv.size() == targets.size(), "%s targets mix Conv1D layers %s, stored [in, "
        + "out], with nn.Linear ones, stored [out, in]; one fan_in_fan_out flag cannot describe both: target them "
        + "in two adapters", method, conv);
    if (!conv.isEmpty() && !requested) {
      LOG.warn("{}: fan_in_fan_out is false but the targets {} are Conv1D layers; setting fan_in_fan_out to true "
          + "(as Hugging Face PEFT does)", method, conv.size() > 3 ? conv.subList(0, 3) + "…" : conv);
    }
    return !conv.isEmpty();
  }
}
