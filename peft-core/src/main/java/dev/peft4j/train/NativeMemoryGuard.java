package dev.peft4j.train;

import com.sun.jna.Library;
import com.sun.jna.Native;
import org.bytedeco.javacpp.Pointer;

/**
 * Keeps ND4J's off-heap memory from growing without bound during training.
 *
 * <p>Every SameDiff step allocates its activations and gradients off-heap, and that memory returns only when the
 * garbage collector finalises the small Java objects that own it. A training loop makes little Java garbage, so the
 * collector seldom runs: on all-MiniLM-L6-v2 at batch 8 × 128 the process grew by about 1.9 GB per step (20 GB after
 * ten steps with {@code -Xmx8g}), and a step that has to fault in fresh memory took 5–6 s instead of 1.3–1.6 s.
 * Measured there: a collection after every step held the process at 5.5 GB for about 40 ms a step; collecting only
 * when resident memory grew still let it creep up (8 GB after 12 steps). So the guard collects after every step
 * that took longer than {@value #LONG_STEP_MILLIS} ms (where a collection costs a few percent), and after shorter
 * steps only when resident memory ({@code Pointer.physicalBytes()}; ND4J's buffers are not in JavaCPP's own count)
 * grew by more than 256 MiB since the previous one.
 *
 * <p>Those figures are for ND4J's own {@code calculateGradients}, which allocates every array of a step afresh.
 * {@link Gradients} (what {@link Trainer} uses) reuses a step's buffers through SameDiff's array cache and held the
 * same MiniLM step at 1.3–2 GB; what still accumulates there is each step's returned gradients and outputs.
 *
 * <p>The first guard also tells glibc's allocator to keep freed memory for reuse ({@link #keepFreedMemory}), unless
 * the system property {@value #KEEP_FREED_PROPERTY} is {@code false}.
 */
public final class NativeMemoryGuard {

  /** System property: {@code false} leaves glibc's allocator settings alone. */
  public static final String KEEP_FREED_PROPERTY = "peft4j.malloc.keepFreed";
  private static final int M_TRIM_THRESHOLD = -1;
  private static final int M_MMAP_THRESHOLD = -3;
  /** glibc's largest allowed mmap threshold on 64-bit: 4 MiB · sizeof(long). */
  private static final int MMAP_THRESHOLD_MAX = 32 << 20;
  private static Boolean keptFreed; // guarded by the class lock (keepFreedMemory is synchronized)

  static final long LONG_STEP_MILLIS = 250;
  private static final long GROWTH = 256L << 20;

  private long lastResident = -1;
  private long lastCall = System.nanoTime();
  private int collections;

  public NativeMemoryGuard() {
    if (!"false".equalsIgnoreCase(System.getProperty(KEEP_FREED_PROPERTY))) {
      keepFreedMemory();
    }
  }

  /**
   * Tells glibc's {@code malloc} to serve buffers of up to 32 MiB from its heap instead of fresh {@code mmap}s and
   * never to return freed heap memory to the kernel ({@code mallopt(M_MMAP_THRESHOLD, 32 MiB)},
   * {@code mallopt(M_TRIM_THRESHOLD, INT_MAX)}; the same as {@code MALLOC_MMAP_THRESHOLD_=33554432
   * MALLOC_TRIM_THRESHOLD_=2147483647}). ND4J allocates every activation and gradient of a step afresh; by default
   * each buffer above glibc's dynamic threshold is a new mapping whose pages the kernel must fault in and zero, which
   * on MiniLM training steps cost a large share of the CPU time in the kernel. Process-wide and idempotent; the
   * resident size then stays near its peak, which a training process reaches anyway.
   *
   * @return whether glibc accepted both settings (false where the C library is not glibc or cannot be reached)
   */
  public static synchronized boolean keepFreedMemory() {
    if (keptFreed == null) {
      boolean ok;
      try {
        LibC c = Native.load("c", LibC.class);
        ok = c.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1
            && c.mallopt(M_TRIM_THRESHOLD, Integer.MAX_VALUE) == 1;
      } catch (LinkageError | RuntimeException e) {
        ok = false;
      }
      keptFreed = ok;
    }
    return keptFreed;
  }

  /** The one libc function the guard calls. */
  interface LibC extends Library {
    int mallopt(int param, int value);
  }

  /** Call after every step. */
  public void afterStep() {
    long now = System.nanoTime();
    long resident = Pointer.physicalBytes();
    boolean longStep = (now - lastCall) / 1_000_000 > LONG_STEP_MILLIS;
    if (longStep || (lastResident >= 0 && resident - lastResident > GROWTH)) {
      System.gc();
      collections++;
    }
    lastResident = resident;
    lastCall = System.nanoTime();
  }

  /** How many collections the guard asked for. */
  public int collections() {
    return collections;
  }
}
