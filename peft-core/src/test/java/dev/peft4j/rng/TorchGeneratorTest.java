package dev.peft4j.rng;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * torch's CPU generator reproduced: values printed by torch 2.13 (CPU), e.g.
 * {@code torch.randperm(10, generator=torch.Generator().manual_seed(777))}. (VeRA's and FourierFT's tests check
 * larger draws against Hugging Face PEFT's own.)
 */
class TorchGeneratorTest {

  @Test
  void mersenneTwisterReferenceOutput() {
    // the MT19937 reference: seed 5489 gives 3499211612 first, and its 10000th output is 4123659995 (C++11 std)
    TorchGenerator g = new TorchGenerator(5489);
    assertEquals(3499211612L, g.next32());
    for (int i = 1; i < 9999; i++) {
      g.next32();
    }
    assertEquals(4123659995L, g.next32());
  }

  @Test
  void randpermAsTorch() {
    assertArrayEquals(new long[] {5, 9, 0, 3, 1, 7, 4, 8, 6, 2}, new TorchGenerator(777).randpermPrefix(10, 10));
    TorchGenerator g = new TorchGenerator(0);
    assertArrayEquals(new long[] {0}, g.randpermPrefix(1, 1), "n = 1 draws nothing");
    assertArrayEquals(new long[] {0, 1}, g.randpermPrefix(2, 2));
    assertArrayEquals(new long[] {70690, 23614, 49863, 398, 56884},
        new TorchGenerator(12345).randpermPrefix(100_000, 5));
  }

  /** The prefix is the start of the full permutation, and a permutation; seeded. */
  @Test
  void prefixIsTheStartOfAPermutation() {
    long seed = 20261130L;
    Random random = new Random(seed);
    for (int trial = 0; trial < 20; trial++) {
      int n = 1 + random.nextInt(300);
      long s = random.nextLong();
      long[] full = new TorchGenerator(s).randpermPrefix(n, n);
      long[] sorted = full.clone();
      Arrays.sort(sorted);
      for (int i = 0; i < n; i++) {
        assertEquals(i, sorted[i], "seed " + seed + ": not a permutation of " + n);
      }
      int k = random.nextInt(n + 1);
      assertArrayEquals(Arrays.copyOf(full, k), new TorchGenerator(s).randpermPrefix(n, k), "seed " + seed);
    }
  }

  @Test
  void uniformAsTorchFloat32() {
    // torch.empty(4).uniform_(-1, 1, generator=torch.Generator().manual_seed(5)); only the low 32 bits of a seed count
    float[] expected = {0.6605037450790405f, -0.7477781772613525f, 0.8149393796920776f, 0.6398540735244751f};
    assertArrayEquals(expected, new TorchGenerator(5).uniform(4, -1, 1));
    assertArrayEquals(expected, new TorchGenerator((1L << 40) + 5).uniform(4, -1, 1));
  }

  @Test
  void refusesWhatItCannotReproduce() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> new TorchGenerator(0).randpermPrefix(TorchGenerator.RANDPERM_LIMIT, 3));
    assertTrue(e.getMessage().contains(String.valueOf(TorchGenerator.RANDPERM_LIMIT)), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> new TorchGenerator(0).randpermPrefix(5, 6));
  }
}
