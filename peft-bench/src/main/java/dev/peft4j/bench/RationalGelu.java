package dev.peft4j.bench;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * Exact GELU {@code ½x(1 + erf(x/√2))} with erf replaced by the float-accurate rational minimax approximation that
 * Eigen ({@code generic_fast_erf_float}) and XLA ({@code ErfImpl32}) use, in two forms measured by
 * {@link GeluBenchmark}: built from ND4J element-wise ops in a graph (so that autodiff differentiates it), and as a
 * plain Java loop over a {@code float[]} (forward and its derivative).
 * <pre>
 *   erf(u) ≈ u·α(u²)/β(u²),  u clamped to [−4, 4]        α of degree 6, β of degree 4 in u²   (|error| ≤ 7e-8)
 *   with u = x/√2, s = x_c² (x_c = x clamped to ±4√2), α, β rewritten in s and divided by β's leading coefficient:
 *   GELU(x) = x · (½ + x_c·p(s)/q(s))                      q monic, p carrying the ½/√2
 *   GELU'(x) = Φ(x) + x·φ(x),   Φ(x) = ½ + x_c·p(s)/q(s),   φ(x) = exp(−x²/2)/√(2π)
 * </pre>
 * Not used by the models: in a graph it costs more than ND4J's {@code erf} (measurements in peft-bench/HISTORY.md,
 * round 5, "GELU / erf"); the Java loop could only run between graph segments.
 */
final class RationalGelu {

  /** α's coefficients in u², highest power first (Eigen's alpha_13 … alpha_1 for erf(u) = u·α/β). */
  static final double[] ALPHA = {-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
      -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02};
  /** β's coefficients in u², highest power first (Eigen's beta_8 … beta_0). */
  static final double[] BETA = {-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
      -7.37332916720468e-03, -1.42647390514189e-02};

  /** erf(u) is taken at u clamped to ±4, that is x clamped to ±4√2. */
  static final double LIMIT = 4 * Math.sqrt(2);

  /** p(s), highest power first: α's coefficient of u^2k over 2^k (u² = s/2), times ½/√2, over β's leading one. */
  static final double[] P = new double[ALPHA.length];
  /** q(s), highest power first, monic: β's coefficient of u^2k over 2^k, over its leading one. */
  static final double[] Q = new double[BETA.length];

  static {
    int a = ALPHA.length - 1;
    int b = BETA.length - 1;
    double lead = BETA[0] / Math.pow(2, b);
    for (int i = 0; i <= a; i++) {
      P[i] = ALPHA[i] / Math.pow(2, a - i) * (0.5 / Math.sqrt(2)) / lead;
    }
    for (int i = 0; i <= b; i++) {
      Q[i] = BETA[i] / Math.pow(2, b - i) / lead;
    }
  }

  private static final float INV_SQRT_2PI = (float) (1 / Math.sqrt(2 * Math.PI));

  private RationalGelu() {}

  /** The graph form: a clip, a square, 12 + 7 Horner ops and 4 more: 25 element-wise ops where the erf form has 5. */
  static SDVariable graph(SameDiff sd, SDVariable x) {
    SDVariable clamped = sd.math.clipByValue(x, -LIMIT, LIMIT);
    SDVariable s = clamped.mul(clamped);
    SDVariable p = s.mul(P[0]).add(P[1]);
    for (int i = 2; i < P.length; i++) {
      p = p.mul(s).add(P[i]);
    }
    SDVariable q = s.add(Q[1]);
    for (int i = 2; i < Q.length; i++) {
      q = q.mul(s).add(Q[i]);
    }
    return x.mul(clamped.mul(p).div(q).add(0.5));
  }

  /** {@code y = GELU(x)}, element by element; a loop simple enough for the JIT to vectorise. */
  static void forward(float[] x, float[] y) {
    float lim = (float) LIMIT;
    float p0 = (float) P[0], p1 = (float) P[1], p2 = (float) P[2], p3 = (float) P[3], p4 = (float) P[4];
    float p5 = (float) P[5], p6 = (float) P[6];
    float q1 = (float) Q[1], q2 = (float) Q[2], q3 = (float) Q[3], q4 = (float) Q[4];
    for (int i = 0; i < x.length; i++) {
      float v = x[i];
      float c = Math.min(Math.max(v, -lim), lim);
      float s = c * c;
      float p = (((((p0 * s + p1) * s + p2) * s + p3) * s + p4) * s + p5) * s + p6;
      float q = (((s + q1) * s + q2) * s + q3) * s + q4;
      y[i] = v * (c * p / q + 0.5f);
    }
  }

  /**
   * {@code dx = g ⊙ GELU'(x)}. {@code Math.exp} keeps this loop scalar (JDK 17 does not vectorise it), which makes
   * it ~15× slower than {@link #forward}; the Vector API's {@code EXP} lane op would not (HISTORY.md, round 5).
   */
  static void backward(float[] x, float[] g, float[] dx) {
    float lim = (float) LIMIT;
    float p0 = (float) P[0], p1 = (float) P[1], p2 = (float) P[2], p3 = (float) P[3], p4 = (float) P[4];
    float p5 = (float) P[5], p6 = (float) P[6];
    float q1 = (float) Q[1], q2 = (float) Q[2], q3 = (float) Q[3], q4 = (float) Q[4];
    for (int i = 0; i < x.length; i++) {
      float v = x[i];
      float c = Math.min(Math.max(v, -lim), lim);
      float s = c * c;
      float p = (((((p0 * s + p1) * s + p2) * s + p3) * s + p4) * s + p5) * s + p6;
      float q = (((s + q1) * s + q2) * s + q3) * s + q4;
      float phi = INV_SQRT_2PI * (float) Math.exp(-0.5f * v * v);
      dx[i] = g[i] * (c * p / q + 0.5f + v * phi);
    }
  }
}
