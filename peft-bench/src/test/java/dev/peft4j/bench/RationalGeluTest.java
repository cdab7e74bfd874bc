package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * {@link RationalGelu} is exact GELU to float precision in value, and its derivative is too in the Java loop (which
 * uses the exact φ); the graph form's autodiff derivative is the rational fit's own slope, off by up to ~7e-6 next to
 * the clamp at |x| = 4√2 (a minimax fit of values does not fit slopes; ND4J's erf form: 1.4e-7 in float).
 */
class RationalGeluTest {

  /** erf in double: 2/√π · e^(−u²) · Σ 2ⁿu^(2n+1) / (1·3·…·(2n+1)), a series of positive terms (no cancellation). */
  static double erf(double u) {
    double a = Math.abs(u);
    if (a > 6) {
      return Math.signum(u);
    }
    double term = a;
    double sum = a;
    for (int n = 1; term > 1e-17 * sum; n++) {
      term *= 2 * a * a / (2 * n + 1);
      sum += term;
    }
    return Math.signum(u) * 2 / Math.sqrt(Math.PI) * Math.exp(-a * a) * sum;
  }

  static double gelu(double x) {
    return 0.5 * x * (1 + erf(x / Math.sqrt(2)));
  }

  static double geluDerivative(double x) {
    return 0.5 * (1 + erf(x / Math.sqrt(2))) + x * Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI);
  }

  static float[] grid(double from, double to, int points) {
    float[] x = new float[points];
    for (int i = 0; i < points; i++) {
      x[i] = (float) (from + (to - from) * i / (points - 1));
    }
    return x;
  }

  @Test
  void rationalErfIsFloatAccurate() {
    double max = 0;
    for (float u : grid(-6, 6, 1_200_001)) {
      double c = Math.max(-4, Math.min(4, u));
      double a = 0;
      for (double k : RationalGelu.ALPHA) {
        a = a * c * c + k;
      }
      double b = 0;
      for (double k : RationalGelu.BETA) {
        b = b * c * c + k;
      }
      max = Math.max(max, Math.abs(c * a / b - erf(u)));
    }
    assertTrue(max < 1e-7, "max |erf error| on [-6, 6] " + max);
  }

  @Test
  void javaLoopsAreExactGeluAndItsDerivativeToFloatPrecision() {
    float[] x = grid(-10, 10, 400_001);
    float[] y = new float[x.length];
    float[] dx = new float[x.length];
    float[] ones = new float[x.length];
    java.util.Arrays.fill(ones, 1f);
    RationalGelu.forward(x, y);
    RationalGelu.backward(x, ones, dx);
    double value = 0;
    double slope = 0;
    for (int i = 0; i < x.length; i++) {
      // float rounding of ~25 operations; ND4J's erf form: 9.9e-8 by the same measure
      value = Math.max(value, Math.abs(y[i] - gelu(x[i])) / Math.max(1, Math.abs(x[i])));
      slope = Math.max(slope, Math.abs(dx[i] - geluDerivative(x[i])));
    }
    assertTrue(value < 3e-7, "max |GELU error| / max(1, |x|) on [-10, 10]: " + value);
    assertTrue(slope < 5e-7, "max |GELU' error| on [-10, 10]: " + slope);
  }

  @Test
  void graphFormMatchesNd4jErfInValueAndGradient() {
    long seed = new Random().nextLong();
    System.out.println("RationalGeluTest seed " + seed);
    Nd4j.getRandom().setSeed(seed);
    INDArray x = Nd4j.rand(DataType.FLOAT, 64, 96).muli(12).subi(6);   // uniform in [-6, 6]
    INDArray g = Nd4j.rand(DataType.FLOAT, 64, 96);
    SameDiff exact = GeluBenchmark.graph("nd4jErf", x, g);
    SameDiff rational = GeluBenchmark.graph("rationalErf", x, g);
    INDArray yExact = exact.output(Map.of(), "y").get("y");
    INDArray yRational = rational.output(Map.of(), "y").get("y");
    INDArray dExact = exact.calculateGradients(Map.of(), "x").get("x");
    INDArray dRational = rational.calculateGradients(Map.of(), "x").get("x");
    float[] dJava = new float[(int) x.length()];
    RationalGelu.backward(x.data().asFloat(), g.data().asFloat(), dJava);
    INDArray scale = Transforms.max(Transforms.abs(x), 1.0);                      // max(1, |x|), as above
    double value = yExact.sub(yRational).divi(scale).amaxNumber().doubleValue();
    double gradient = dExact.sub(dRational).amaxNumber().doubleValue();
    double java = dExact.sub(Nd4j.create(dJava, x.shape(), 'c')).amaxNumber().doubleValue();
    assertTrue(value < 4e-7, "GELU, rational graph vs ND4J erf, over max(1, |x|): " + value + " (seed " + seed + ")");
    assertTrue(gradient < 1e-5, "GELU', rational graph vs ND4J erf: " + gradient + " (seed " + seed + ")");
    assertTrue(java < 1e-6, "GELU', Java loop vs ND4J erf: " + java + " (seed " + seed + ")");
  }

  @Test
  void graphGradientEqualsFiniteDifferencesInDouble() {
    INDArray x = Nd4j.createFromArray(grid(-7, 7, 141)).castTo(DataType.DOUBLE).reshape(1, 141);
    INDArray g = Nd4j.ones(DataType.DOUBLE, 1, 141);
    INDArray autodiff = GeluBenchmark.graph("rationalErf", x, g).calculateGradients(Map.of(), "x").get("x");
    double h = 1e-5;
    INDArray plus = GeluBenchmark.graph("rationalErf", x.add(h), g).output(Map.of(), "y").get("y");
    INDArray minus = GeluBenchmark.graph("rationalErf", x.sub(h), g).output(Map.of(), "y").get("y");
    INDArray central = plus.sub(minus).divi(2 * h);
    double worst = 0;
    double toExact = 0;
    for (int i = 0; i < 141; i++) {
      double xi = x.getDouble(0, i);
      if (Math.abs(Math.abs(xi) - RationalGelu.LIMIT) > 2 * h) {   // the clamp's kink is not differentiable
        worst = Math.max(worst, Math.abs(autodiff.getDouble(0, i) - central.getDouble(0, i)));
      }
      toExact = Math.max(toExact, Math.abs(autodiff.getDouble(0, i) - geluDerivative(xi)));
    }
    assertTrue(worst < 1e-8, "autodiff vs central differences (double): " + worst);
    assertTrue(toExact < 1e-5, "autodiff of the rational form vs exact GELU' (double): " + toExact);
  }
}
