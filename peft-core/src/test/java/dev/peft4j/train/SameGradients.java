package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collection;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.ndarray.INDArray;

/** One pass's loss and gradients against another's: what the alternative gradient computations must reproduce. */
final class SameGradients {

  private SameGradients() {}

  /**
   * Asserts the same loss (to {@code lossTolerance}, absolute) and, for every parameter, the same gradient
   * ({@code ‖want − got‖ / max(1e-3, ‖want‖) < gradientTolerance}); {@code where} ends every message.
   */
  static void assertSame(OutAndGrad expected, OutAndGrad actual, String loss, Collection<String> params,
      double lossTolerance, double gradientTolerance, String where) {
    assertEquals(expected.getOutputs().get(loss).getDouble(0), actual.getOutputs().get(loss).getDouble(0),
        lossTolerance, "loss" + where);
    assertEquals(params.size(), actual.getGradients().size(), "gradients" + where);
    for (String p : params) {
      INDArray want = expected.getGradients().get(p);
      INDArray got = actual.getGradients().get(p);
      double scale = Math.max(1e-3, want.norm2Number().doubleValue());
      assertTrue(want.sub(got).norm2Number().doubleValue() / scale < gradientTolerance,
          p + where + ": " + want.sub(got).norm2Number() + " against ‖g‖ " + scale);
    }
  }
}
