package dev.peft4j.model;

import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.factory.Nd4j;

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

  private Conv1dModules() {}

  /** Records that {@code module}'s checkpoint weight is a {@code Conv1D} one, stored {@code [in, out]}. */
  static void mark(SameDiff sd, String module) {
    sd.constant(module + SUFFIX, Nd4j.scalar(true));
  }

  /** Whether linear module {@code module} of {@code sd} is a Hugging Face {@code Conv1D} (weight stored [in, out]). */
  public static boolean isConv1d(SameDiff sd, String module) {
    return sd.hasVariable(module + SUFFIX);
  }
}
