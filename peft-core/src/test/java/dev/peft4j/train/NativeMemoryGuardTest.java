package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class NativeMemoryGuardTest {

  @Test
  void glibcAcceptsTheAllocatorSettingsAndTheCallIsIdempotent() {
    // the project's machines are glibc Linux; elsewhere the guard reports false and changes nothing
    assertTrue(NativeMemoryGuard.keepFreedMemory(), "mallopt refused M_MMAP_THRESHOLD or M_TRIM_THRESHOLD");
    assertTrue(NativeMemoryGuard.keepFreedMemory());
  }

  @Test
  void theDefaultGuardCollectsAfterLongStepsAndShortOnesOnlyWhenTheyGrewMemory() throws InterruptedException {
    long[] resident = {1000};
    NativeMemoryGuard guard = new NativeMemoryGuard(true, 100, () -> resident[0]);
    guard.afterStep();                                          // a short step since construction
    resident[0] = 1050;
    guard.afterStep();                                          // short, +50
    assertEquals(0, guard.collections());
    resident[0] = 1200;
    guard.afterStep();                                          // short, +150
    assertEquals(1, guard.collections());
    Thread.sleep(NativeMemoryGuard.LONG_STEP_MILLIS + 50);
    guard.afterStep();                                          // long, no growth
    assertEquals(2, guard.collections());
  }

  @Test
  void theReusingGuardCollectsOnlyOnceMemoryGrewPastTheThresholdSinceTheLastCollection() {
    long[] resident = {1000};
    NativeMemoryGuard guard = new NativeMemoryGuard(false, 100, () -> resident[0]);
    guard.afterStep();                      // the first step sets the baseline, 1000
    resident[0] = 1060;
    guard.afterStep();
    resident[0] = 1099;                     // slow creep: +60, +39, never +100 in one step
    guard.afterStep();
    assertEquals(0, guard.collections(), "99 above the baseline");
    resident[0] = 1101;
    guard.afterStep();
    assertEquals(1, guard.collections(), "101 above the baseline");
    guard.afterStep();                      // the new baseline is the level after the collection, 1101
    resident[0] = 1150;
    guard.afterStep();
    assertEquals(1, guard.collections());
    resident[0] = 1202;
    guard.afterStep();
    assertEquals(2, guard.collections());
  }
}
