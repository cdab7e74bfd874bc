package dev.peft4j.train;

import com.sun.jna.Library;
import com.sun.jna.Native;
import java.util.function.LongSupplier;
import org.bytedeco.javacpp.Pointer;

/**
 * Keeps ND4J's off-heap memory from growing without bound during training.
 *
 * <p>Every SameDiff step allocates its activations and gradients off-heap, and that memory returns only when the
 * garbage collector finalises the small Java objects that own it. A training loop makes little Java garbage, so the
 * collector seldom runs: with ND4J's own {@code calculateGradients} on all-MiniLM-L6-v2 at batch 8 × 128 the process
 * grew by about 1.9 GB per step (20 GB after ten steps with {@code -Xmx8g}). {@link Gradients} (what {@link Trainer}
 * uses) reuses most of a step's buffers through SameDiff's array cache; what still accumulates is each step's
 * returned gradients and outputs and the session's bookkeeping.
 *
 * <p>{@code new NativeMemoryGuard()} is for steps that allocate afresh ({@code calculateGradients}): it collects after
 * every step that took longer than {@value #LONG_STEP_MILLIS} ms (a collection costs ~40 ms, a few percent of such a
 * step; measured there: the process held at 4.5–5.5 GB), and after shorter steps when resident memory grew by more
 * than {@value #GROWTH_MIB} MiB since the previous call. Resident memory alone cannot drive it: freed memory is kept
 * for reuse, so a step after a collection shows no growth and the next one doubles the peak (8.7 GB measured).
 *
 * <p>{@link #forReusingSteps()} is for steps through {@link Gradients}: it collects only when resident memory
 * ({@code Pointer.physicalBytes()}; ND4J's buffers are not in JavaCPP's own count) has grown by more than
 * {@value #GROWTH_MIB} MiB since the last collection: on MiniLM most steps pay no collection (the median over 16 steps
 * was 0 ms), and the process stays within {@value #GROWTH_MIB} MiB of its level after the last collection.
 *
 * <p>The first guard also tells glibc's allocator to keep freed memory for reuse ({@link #keepFreedMemory}), unless
 * the system property {@value #KEEP_FREED_PROPERTY} is {@code false}.
 *
 * <p>Both effects are process-wide: {@code System.gc()} pauses every thread of the JVM, and the {@code mallopt}
 * settings apply to every native allocation of the process, the application's included, for the rest of its life.
 * {@link Trainer} runs a guard unless {@code Trainer.Builder.nativeMemoryGuard(false)} or the system property
 * {@value Trainer#MEMORY_GUARD_PROPERTY}{@code =false} turns it off; {@value #KEEP_FREED_PROPERTY}{@code =false}
 * turns off the {@code mallopt} call alone.
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
  static final int GROWTH_MIB = 256;

  private final boolean afterLongSteps;
  private final long growthBytes;
  private final LongSupplier resident;
  private long lastResident = -1;
  private long baseline = -1;
  private long lastCall = System.nanoTime();
  private int collections;

  /** A guard for steps that allocate every array afresh (ND4J's {@code calculateGradients}). */
  public NativeMemoryGuard() {
    this(true, (long) GROWTH_MIB << 20, Pointer::physicalBytes);
  }

  /** A guard for steps that reuse their buffers ({@link Gradients}, {@link Trainer}). */
  public static NativeMemoryGuard forReusingSteps() {
    return new NativeMemoryGuard(false, (long) GROWTH_MIB << 20, Pointer::physicalBytes);
  }

  /** For tests: the policy, the growth threshold and a stand-in for the resident size. */
  NativeMemoryGuard(boolean afterLongSteps, long growthBytes, LongSupplier resident) {
    this.afterLongSteps = afterLongSteps;
    this.growthBytes = growthBytes;
    this.resident = resident;
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
    long now = resident.getAsLong();
    boolean collect;
    if (afterLongSteps) {
      boolean longStep = (System.nanoTime() - lastCall) / 1_000_000 > LONG_STEP_MILLIS;
      collect = longStep || (lastResident >= 0 && now - lastResident > growthBytes);
    } else {
      collect = baseline >= 0 && now - baseline > growthBytes;
    }
    if (collect) {
      System.gc();
      collections++;
      baseline = resident.getAsLong(); // the level after the collection
    } else if (baseline < 0) {
      baseline = now;
    }
    lastResident = now;
    lastCall = System.nanoTime();
  }

  /** How many collections the guard asked for. */
  public int collections() {
    return collections;
  }
}
