package dev.peft4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class BackendTest {

  @Test
  void reportsTheCpuBackendOnTheDefaultBuild() {
    Backend b = Backend.current();
    assertEquals(Backend.Kind.CPU, b.kind(), "the default build depends on nd4j-native only");
    assertEquals("CpuBackend", b.name());
    assertTrue(b.threads() >= 1);
    assertTrue(b.toString().startsWith("CPU (CpuBackend, "), b.toString());
  }
}
