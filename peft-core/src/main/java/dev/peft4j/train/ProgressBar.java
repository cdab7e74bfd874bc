package dev.peft4j.train;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A one-line terminal progress bar: {@code [#######.....] 70/100 loss 0.4123 1,234 tok/s ETA 0:12}. On a terminal it
 * redraws in place; otherwise (a log, CI) it prints a line every tenth of the run.
 */
final class ProgressBar {

  private static final int WIDTH = 24;

  private final PrintStream out;
  private final int total;
  private final boolean interactive;
  private final long started = System.nanoTime();
  private long tokens;

  ProgressBar(PrintStream out, int total, boolean interactive) {
    this.out = out;
    this.total = total;
    this.interactive = interactive;
  }

  void update(int step, double loss, long stepTokens) {
    tokens += stepTokens;
    double elapsed = (System.nanoTime() - started) / 1e9;
    double rate = elapsed > 0 ? tokens / elapsed : 0;
    long eta = Math.round(elapsed / step * (total - step));
    int filled = (int) ((long) WIDTH * step / total);
    String line = String.format(Locale.ROOT, "[%s%s] %d/%d loss %.4f %,.0f tok/s ETA %d:%02d",
        "#".repeat(filled), ".".repeat(WIDTH - filled), step, total, loss, rate, eta / 60, eta % 60);
    if (interactive) {
      out.print('\r' + line + (step == total ? "\n" : ""));
      out.flush();
    } else if (step == total || step % Math.max(1, total / 10) == 0 || step == 1) {
      out.println(line);
    }
  }
}
