package dev.peft4j.train;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.updaters.AdamUpdater;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Adam with decoupled weight decay (Loshchilov &amp; Hutter), as {@code torch.optim.AdamW} computes it, holding state
 * for exactly the parameters it was given:
 * <pre>
 *   p ← p · (1 − lr·λ)
 *   m ← β₁m + (1 − β₁)g        v ← β₂v + (1 − β₂)g²
 *   p ← p − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
 * </pre>
 */
public final class AdamW {

  private final SameDiff sd;
  private final double beta1;
  private final double beta2;
  private final double epsilon;
  private final double weightDecay;
  private final Map<String, INDArray> m = new LinkedHashMap<>();
  private final Map<String, INDArray> v = new LinkedHashMap<>();
  private final Map<String, INDArray> scratch = new HashMap<>();
  private int t;

  /** Zero moments for {@code parameters} (variables of {@code sd}); β₁, β₂, ε and the decay λ as torch's. */
  public AdamW(SameDiff sd, List<String> parameters, double beta1, double beta2, double epsilon, double weightDecay) {
    this.sd = sd;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.epsilon = epsilon;
    this.weightDecay = weightDecay;
    for (String p : parameters) {
      INDArray param = sd.getArrForVarName(p);
      m.put(p, param.ulike().assign(0));
      v.put(p, param.ulike().assign(0));
    }
  }

  /**
   * One update of every parameter from its gradient; the gradient arrays are left as they were. Runs as ND4J's fused
   * {@code adam_updater} op (one pass over each array instead of a dozen), whose update is
   * {@code lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε')}: with {@code ε' = ε·√(1 − β₂ᵗ)} that is exactly torch's
   * {@code lr · m̂ / (√v̂ + ε)}.
   */
  public void step(Map<String, INDArray> gradients, double lr) {
    t++;
    double epsilonT = epsilon * Math.sqrt(1 - Math.pow(beta2, t));
    for (Map.Entry<String, INDArray> e : m.entrySet()) {
      String name = e.getKey();
      INDArray param = sd.getArrForVarName(name);
      INDArray g = gradients.get(name);
      INDArray mt = e.getValue();
      INDArray vt = v.get(name);
      INDArray update = scratch.computeIfAbsent(name, k -> param.ulike());
      // adam_updater counts iterations from 0: its bias corrections use β^(iteration + 1)
      Nd4j.exec(new AdamUpdater(g, vt, mt, update, vt, mt, lr, beta1, beta2, epsilonT, t - 1));
      if (weightDecay != 0) {
        param.muli(1 - lr * weightDecay);
      }
      param.subi(update);
    }
  }

  /** Bytes of optimizer state: two moments per trainable scalar. */
  long stateBytes() {
    long bytes = 0;
    for (INDArray a : m.values()) {
      bytes += a.length() * a.dataType().width();
    }
    for (INDArray a : v.values()) {
      bytes += a.length() * a.dataType().width();
    }
    return bytes;
  }

  /** Parameters that have optimizer state. */
  List<String> parameters() {
    return List.copyOf(m.keySet());
  }
}
