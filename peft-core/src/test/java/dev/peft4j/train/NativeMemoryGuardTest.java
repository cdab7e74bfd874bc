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
  void collectsAfterLongStepsOnly() throws InterruptedException {
    NativeMemoryGuard guard = new NativeMemoryGuard();
    guard.afterStep();                                          // a short step since construction
    int afterShort = guard.collections();
    Thread.sleep(NativeMemoryGuard.LONG_STEP_MILLIS + 50);
    guard.afterStep();                                          // a long step
    assertEquals(afterShort + 1, guard.collections());
  }
}
