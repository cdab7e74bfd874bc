package dev.peft4j.train;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * Adam with decoupled weight decay (Loshchilov &amp; Hutter), as {@code torch.optim.AdamW} computes it, holding state
 * for exactly the parameters it was given:
 * <pre>
 *   p ← p · (1 − lr·λ)
 *   m ← β₁m + (1 − β₁)g        v ← β₂v + (1 − β₂)g²
 *   p ← p − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
 * </pre>
 */
final class AdamW {

  private final SameDiff sd;
  private final double beta1;
  private final double beta2;
  private final double epsilon;
  private final double weightDecay;
  private final Map<String, INDArray> m = new LinkedHashMap<>();
  private final Map<String, INDArray> v = new LinkedHashMap<>();
  private int t;

  AdamW(SameDiff sd, List<String> parameters, double beta1, double beta2, double epsilon, double weightDecay) {
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

  /** Applies one update with learning rate {@code lr}; {@code gradients} are consumed (modified in place). */
  void step(Map<String, INDArray> gradients, double lr) {
    t++;
    double bias1 = 1 - Math.pow(beta1, t);
    double bias2 = Math.sqrt(1 - Math.pow(beta2, t));
    for (Map.Entry<String, INDArray> e : m.entrySet()) {
      String name = e.getKey();
      INDArray param = sd.getArrForVarName(name);
      INDArray g = gradients.get(name);
      INDArray mt = e.getValue().muli(beta1).addi(g.mul(1 - beta1));
      INDArray vt = v.get(name).muli(beta2).addi(g.muli(g).muli(1 - beta2));
      if (weightDecay != 0) {
        param.muli(1 - lr * weightDecay);
      }
      INDArray denominator = Transforms.sqrt(vt, true).divi(bias2).addi(epsilon);
      param.subi(mt.div(denominator).muli(lr / bias1));
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
