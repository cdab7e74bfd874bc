package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class AdamWTest {

  @Test
  void matchesTorchAdamWStepByStep() {
    SameDiff sd = SameDiff.create();
    sd.var("p", Nd4j.createFromArray(1.0, -2.0));
    sd.var("frozen", Nd4j.createFromArray(5.0));
    double lr = 0.1;
    double wd = 0.01;
    double b1 = 0.9;
    double b2 = 0.999;
    double eps = 1e-8;
    AdamW adam = new AdamW(sd, List.of("p"), b1, b2, eps, wd);
    double[] p = {1.0, -2.0};
    double[] m = new double[2];
    double[] v = new double[2];
    double[][] grads = {{0.5, -1.0}, {0.25, 2.0}, {-0.75, 0.1}};
    for (int t = 1; t <= grads.length; t++) {
      INDArray gradient = Nd4j.createFromArray(grads[t - 1].clone());
      adam.step(Map.of("p", gradient), lr);
      assertArrayEquals(grads[t - 1], gradient.toDoubleVector(), 0.0, "the gradient is left as it was");
      for (int i = 0; i < 2; i++) {
        double g = grads[t - 1][i];
        p[i] *= 1 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        double mHat = m[i] / (1 - Math.pow(b1, t));
        double vHat = v[i] / (1 - Math.pow(b2, t));
        p[i] -= lr * mHat / (Math.sqrt(vHat) + eps);
      }
      INDArray actual = sd.getArrForVarName("p");
      assertEquals(p[0], actual.getDouble(0), 1e-12, "step " + t);
      assertEquals(p[1], actual.getDouble(1), 1e-12, "step " + t);
    }
    assertEquals(5.0, sd.getArrForVarName("frozen").getDouble(0), 0.0);
    assertEquals(2 * 2 * DataType.DOUBLE.width(), adam.stateBytes(), "state for the given parameters only");
  }
}
