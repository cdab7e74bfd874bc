package dev.peft4j.spark;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What the shards of one step (or one local-SGD round) send to the driver, summed over the shards by
 * {@code treeAggregate}. Shard {@code p} of a global batch of {@code n} rows holds {@code nₚ} rows and contributes
 * <pre>
 *   losses[j]  += (nₚ/n) · Lₚ          for the round's j-th step
 *   weighted   += (nₚ/n) · ∂Lₚ/∂θ      (synchronous)   or   (nₚ/n) · θₚ   (local SGD: the shard's weights after the round)
 * </pre>
 * so the sum is {@code DataParallel}'s row-weighted combination. A retried task replaces its failed attempt (Spark
 * keeps one result per partition), and {@link #shards}/{@link #rows} let the driver check that every shard counted once.
 */
final class ShardResult implements Serializable {

  private static final long serialVersionUID = 1L;

  int shards;
  long rows;
  long tokens;
  double[] losses;
  LinkedHashMap<String, float[]> weighted;
  /** The longest time one shard spent computing (its forward, backward and local updates). */
  long computeNanos;
  /** The time all shards spent computing, summed. */
  long computeNanosSum;

  /** The aggregation's zero: no shard. */
  static ShardResult zero() {
    return new ShardResult();
  }

  static ShardResult of(long rows, long tokens, double[] losses, LinkedHashMap<String, float[]> weighted,
      long computeNanos) {
    ShardResult r = new ShardResult();
    r.shards = 1;
    r.rows = rows;
    r.tokens = tokens;
    r.losses = losses;
    r.weighted = weighted;
    r.computeNanos = computeNanos;
    r.computeNanosSum = computeNanos;
    return r;
  }

  /** This plus {@code other}, summed into this (Spark allows the aggregation to reuse its first argument). */
  ShardResult plus(ShardResult other) {
    if (other.shards == 0) {
      return this;
    }
    if (shards == 0) {
      return other;
    }
    shards += other.shards;
    rows += other.rows;
    tokens += other.tokens;
    computeNanos = Math.max(computeNanos, other.computeNanos);
    computeNanosSum += other.computeNanosSum;
    for (int j = 0; j < losses.length; j++) {
      losses[j] += other.losses[j];
    }
    for (Map.Entry<String, float[]> e : weighted.entrySet()) {
      float[] sum = e.getValue();
      float[] add = other.weighted.get(e.getKey());
      for (int i = 0; i < sum.length; i++) {
        sum[i] += add[i];
      }
    }
    return this;
  }

  /** Bytes of the arrays a shard sends: what crosses the network per shard, besides Java serialisation's framing. */
  long arrayBytes() {
    return weighted.values().stream().mapToLong(a -> 4L * a.length).sum() + 8L * losses.length;
  }
}
