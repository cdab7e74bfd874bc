package dev.peft4j;

import java.util.List;
import java.util.Optional;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * An adapter that may consist only of low-rank updates added to the outputs of linear modules (plain LoRA), which lets
 * {@link PeftModel#outputMixed} run a batch whose rows name different such adapters in one forward: the base once
 * for the whole batch, each row's own update beside it.
 * <pre>
 *   module m:   y' = y + s · (x·A)·B        x: [n, in]   A: [in, r]   B: [r, out]   y: [n, out]
 * </pre>
 */
public interface LowRankAdapter extends Adapter {

  /**
   * This adapter's updates, one per adapted module, when they are its whole effect on the graph's outputs; empty
   * when it does more (modules to save), or when it is merged.
   */
  Optional<List<LowRankUpdate>> lowRankUpdates();

  /**
   * The update {@code s · (x·A)·B} on module {@code module}.
   *
   * @param module  the module's name ({@code encoder.layer.0.attention.self.query})
   * @param a       the live {@code [in, r]} array (not a copy: read it under the model's lock)
   * @param b       the live {@code [r, out]} array
   * @param scaling s
   */
  record LowRankUpdate(String module, INDArray a, INDArray b, double scaling) {}
}
