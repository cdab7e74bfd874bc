package dev.peft4j.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The machine's 1-minute load average, from Linux's {@code /proc/loadavg} (its first field: the mean number of
 * runnable and uninterruptible tasks over the last minute). A trial's wall time is comparable with another's only if
 * the machine was not busier than its cores + 1 (its own workers load every core) while it ran; {@link Compare}
 * records this at each trial's start and end.
 */
final class LoadAverage {

  private static final Path LOADAVG = Path.of("/proc/loadavg");

  private LoadAverage() {}

  /** The 1-minute load average; NaN where {@code /proc/loadavg} cannot be read. */
  static double oneMinute() {
    try {
      String[] fields = Files.readString(LOADAVG, StandardCharsets.US_ASCII).trim().split("\\s+"); // "0.52 0.58 …"
      return Double.parseDouble(fields[0]);
    } catch (IOException | NumberFormatException | SecurityException | ArrayIndexOutOfBoundsException e) {
      return Double.NaN;
    }
  }
}
