package dev.peft4j.rng;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.HashMap;
import java.util.Map;

/**
 * {@code torch.Generator(device="cpu").manual_seed(seed)}: the 32-bit Mersenne Twister (MT19937) torch's CPU generator
 * runs, with the two draws Hugging Face PEFT makes from it reproduced exactly as torch computes them.
 * <pre>
 *   seeding:      state[0] = seed mod 2³², state[j] = 1812433253·(state[j−1] ⊕ (state[j−1] ≫ 30)) + j
 *   uniform_(a, b) on float32:  u = (next32() &amp; (2²⁴ − 1)) · 2⁻²⁴;   value = (float) (u·(b − a) + a)
 *                               with a and b rounded to float first, the product and sum in double
 *   randperm(n), n &lt; ⌊(2³² − 1)/20⌋:  r = [0, …, n−1];  for i in 0 … n−2: z = next32() mod (n − i), swap r[i], r[i+z]
 * </pre>
 * Checked against torch 2.13 in the tests (VeRA's projections from a seed, FourierFT's indices). Not thread-safe.
 */
public final class TorchGenerator {

  private static final int N = 624;
  private static final int M = 397;
  /** torch switches to a different shuffle (64-bit draws, "inside-out") from here on; not reproduced. */
  public static final long RANDPERM_LIMIT = 0xFFFFFFFFL / 20;

  private final int[] state = new int[N];
  private int next = N;

  /** A generator seeded as {@code torch.Generator().manual_seed(seed)} (only the low 32 bits of the seed count). */
  public TorchGenerator(long seed) {
    state[0] = (int) seed;
    for (int j = 1; j < N; j++) {
      int prev = state[j - 1];
      state[j] = 1812433253 * (prev ^ (prev >>> 30)) + j; // int arithmetic wraps mod 2³², as uint32_t does
    }
  }

  /** The next 32-bit output, as torch's {@code generator->random()}; in [0, 2³²). */
  public long next32() {
    if (next >= N) {
      twist();
    }
    int y = state[next++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y & 0xFFFFFFFFL;
  }

  private void twist() {
    for (int k = 0; k < N; k++) {
      int y = (state[k] & 0x80000000) | (state[(k + 1) % N] & 0x7fffffff);
      state[k] = state[(k + M) % N] ^ (y >>> 1) ^ ((y & 1) != 0 ? 0x9908b0df : 0);
    }
    next = 0;
  }

  /** {@code torch.empty(count).uniform_(from, to, generator=this)} in float32, in order. */
  public float[] uniform(int count, double from, double to) {
    float a = (float) from;
    float b = (float) to;
    double range = (float) (b - a); // torch subtracts in float
    float[] out = new float[count];
    for (int i = 0; i < count; i++) {
      float u = (next32() & ((1 << 24) - 1)) * (1.0f / (1 << 24)); // exact: 24 bits
      out[i] = (float) (u * range + a);
    }
    return out;
  }

  /**
   * The first {@code k} entries of {@code torch.randperm(n, generator=this)}. Only the first k swaps decide them, so
   * this draws k numbers (n − 1 at most) and keeps the displaced entries in a map: O(k) time and memory.
   *
   * @throws IllegalArgumentException if k is not in [0, n], or n ≥ {@link #RANDPERM_LIMIT} (torch shuffles
   *     differently there)
   */
  public long[] randpermPrefix(long n, int k) {
    checkArgument(k >= 0 && k <= n, "k = %s must be in [0, n = %s]", k, n);
    checkArgument(n < RANDPERM_LIMIT, "randperm of n = %s ≥ %s: torch shuffles with 64-bit draws there, which "
        + "peft4j does not reproduce", n, RANDPERM_LIMIT);
    Map<Long, Long> moved = new HashMap<>(); // position → value, for positions whose value is no longer the identity
    long[] out = new long[k];
    for (int i = 0; i < k; i++) {
      long value;
      if (i < n - 1) {
        long j = i + next32() % (n - i);
        value = moved.getOrDefault(j, j);
        moved.put(j, moved.getOrDefault((long) i, (long) i));
      } else {
        value = moved.getOrDefault((long) i, (long) i);
      }
      out[i] = value;
    }
    return out;
  }
}
