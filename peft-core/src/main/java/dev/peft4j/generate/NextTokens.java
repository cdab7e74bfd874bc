package dev.peft4j.generate;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks each row's next token from its last-position logits, as transformers' logits processors and warpers do, in
 * their order: repetition penalty, then (sampling) temperature, top-k, top-p, softmax and a draw.
 */
final class NextTokens {

  private final GenerationConfig config;
  private final SplittableRandom random;

  NextTokens(GenerationConfig config) {
    this.config = config;
    this.random = new SplittableRandom(config.seed());
  }

  /**
   * @param logits one row's scores {@code [V]} (changed in place)
   * @param history the row's tokens so far (pads, prompt, generated)
   */
  long choose(float[] logits, long[] history) {
    penalise(logits, history, config.repetitionPenalty());
    if (!config.doSample()) {
      return argmax(logits);
    }
    float t = (float) config.temperature();
    for (int i = 0; i < logits.length; i++) {
      logits[i] /= t;
    }
    if (config.topK() > 0 && config.topK() < logits.length) {
      float kth = kthLargest(logits, config.topK());
      for (int i = 0; i < logits.length; i++) {
        if (logits[i] < kth) {          // HF keeps ties with the k-th score
          logits[i] = Float.NEGATIVE_INFINITY;
        }
      }
    }
    double[] p = softmax(logits);
    if (config.topP() < 1) {
      topP(p, config.topP());
    }
    return draw(p);
  }

  /** HF's CTRL penalty: each distinct token of the history once, whatever its count. */
  static void penalise(float[] logits, long[] history, double penalty) {
    if (penalty == 1) {
      return;
    }
    boolean[] seen = new boolean[logits.length];
    for (long id : history) {
      int i = (int) id;
      if (!seen[i]) {
        seen[i] = true;
        logits[i] = (float) (logits[i] < 0 ? logits[i] * penalty : logits[i] / penalty);
      }
    }
  }

  /** The first index of the largest value (torch.argmax's choice among ties). */
  static long argmax(float[] logits) {
    int best = 0;
    for (int i = 1; i < logits.length; i++) {
      if (logits[i] > logits[best]) {
        best = i;
      }
    }
    return best;
  }

  private static float kthLargest(float[] logits, int k) {
    float[] sorted = logits.clone();
    Arrays.sort(sorted);
    return sorted[sorted.length - k];
  }

  private static double[] softmax(float[] logits) {
    double max = Double.NEGATIVE_INFINITY;
    for (float l : logits) {
      max = Math.max(max, l);
    }
    double[] p = new double[logits.length];
    double sum = 0;
    for (int i = 0; i < p.length; i++) {
      p[i] = Math.exp(logits[i] - max);
      sum += p[i];
    }
    for (int i = 0; i < p.length; i++) {
      p[i] /= sum;
    }
    return p;
  }

  /**
   * HF's top-p: sorted ascending, tokens whose cumulative probability is ≤ 1 − p are removed (the most likely always
   * stays); the rest is renormalised.
   */
  static void topP(double[] p, double topP) {
    Integer[] order = new Integer[p.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> Double.compare(p[a], p[b]));                // ascending, stable
    double cumulative = 0;
    double kept = 0;
    for (int j = 0; j < order.length; j++) {
      cumulative += p[order[j]];
      if (cumulative <= 1 - topP && j < order.length - 1) {
        p[order[j]] = 0;
      } else {
        kept += p[order[j]];
      }
    }
    for (int i = 0; i < p.length; i++) {
      p[i] /= kept;
    }
  }

  private long draw(double[] p) {
    double u = random.nextDouble();
    double cumulative = 0;
    int last = 0;
    for (int i = 0; i < p.length; i++) {
      if (p[i] > 0) {
        cumulative += p[i];
        last = i;
        if (u < cumulative) {
          return i;
        }
      }
    }
    return last; // rounding left u above the total
  }
}
