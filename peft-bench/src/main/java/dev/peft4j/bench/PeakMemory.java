package dev.peft4j.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The process's peak resident set size (heap, ND4J's off-heap buffers and native libraries together), per run, from
 * Linux's {@code /proc/self/status} ({@code VmHWM}). Writing {@code 5} to {@code /proc/self/clear_refs} resets the
 * peak to the current resident size (Linux ≥ 4.0), so each run's peak is its own. Elsewhere, or where the files
 * cannot be used, the peak is unknown: -1.
 */
public final class PeakMemory {

  private static final Path STATUS = Path.of("/proc/self/status");
  private static final Path CLEAR_REFS = Path.of("/proc/self/clear_refs");

  private PeakMemory() {}

  /** Resets the peak to the current resident size; false if this system does not allow it. */
  public static boolean reset() {
    try {
      Files.writeString(CLEAR_REFS, "5", StandardCharsets.US_ASCII);
      return true;
    } catch (IOException | UnsupportedOperationException | SecurityException e) {
      return false;
    }
  }

  /** The peak resident size since the last {@link #reset()} (or since start) in bytes; -1 if unknown. */
  public static long peakBytes() {
    return statusKiloBytes("VmHWM:");
  }

  /** The current resident size in bytes; -1 if unknown. */
  public static long residentBytes() {
    return statusKiloBytes("VmRSS:");
  }

  private static long statusKiloBytes(String field) {
    try {
      for (String line : Files.readAllLines(STATUS, StandardCharsets.US_ASCII)) {
        if (line.startsWith(field)) {
          String[] parts = line.substring(field.length()).trim().split("\\s+");  // "123456 kB"
          return Long.parseLong(parts[0]) * 1024;
        }
      }
      return -1;
    } catch (IOException | NumberFormatException | SecurityException e) {
      return -1;
    }
  }
}
