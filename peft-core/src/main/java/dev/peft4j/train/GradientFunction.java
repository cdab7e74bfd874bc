package dev.peft4j.train;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * Builds a graph's gradient function ahead of its first use.
 *
 * <p>SameDiff 1.0.0-M2.1 prints one line {@code Added differentiated op <op name>} to {@code System.out} for every op
 * it differentiates, while it builds the gradient function ({@code SameDiff.createGradFunction}: an unconditional
 * {@code System.out.println}, no logger, on the only path that builds one): hundreds of lines for a transformer,
 * once per rewrite. Nothing short of replacing {@code System.out} silences them, and that is process-wide state, so
 * it is opt-in: with the system property {@value #QUIET_PROPERTY}{@code =true} the lines are dropped, by swapping
 * {@code System.out} for a filter for the duration of the build (every other line passes through; output another
 * thread prints meanwhile goes through the filter too; builds on several threads at once share one filter). Without
 * it {@code System.out} is left alone.
 */
public final class GradientFunction {

  /** The system property that, set to {@code true}, drops SameDiff's {@code Added differentiated op} lines. */
  public static final String QUIET_PROPERTY = "peft4j.quietGradientBuild";

  private static final String NOISE = "Added differentiated op";

  private GradientFunction() {}

  /**
   * Builds the gradient function for the graph's loss variables, unless it exists, also differentiating with respect
   * to {@code placeholders}, which SameDiff otherwise treats as fixed inputs. See the class comment for what it
   * prints.
   */
  public static void prepare(SameDiff sameDiff, String... placeholders) {
    if (sameDiff.hasGradientFunction()) {
      return;
    }
    if (!Boolean.getBoolean(QUIET_PROPERTY)) {
      create(sameDiff, placeholders);
      return;
    }
    quiet(true);
    try {
      create(sameDiff, placeholders);
    } finally {
      quiet(false);
    }
  }

  // builds on several threads at once (DataParallel's replicas) share one filter: the first installs it, the last
  // puts System.out back
  private static int quietBuilds;
  private static PrintStream original;

  private static synchronized void quiet(boolean starting) {
    if (starting && quietBuilds++ == 0) {
      original = System.out;
      System.setOut(new PrintStream(new DropLinesStartingWith(original, NOISE), true, StandardCharsets.UTF_8));
    } else if (!starting && --quietBuilds == 0) {
      System.setOut(original);
      original = null;
    }
  }

  private static void create(SameDiff sameDiff, String[] placeholders) {
    sameDiff.createGradFunction(placeholders.length == 0 ? null : placeholders);
  }

  /** Forwards output line by line, dropping lines that start with a prefix. */
  private static final class DropLinesStartingWith extends OutputStream {
    private final PrintStream target;
    private final byte[] prefix;
    private final ByteArrayOutputStream line = new ByteArrayOutputStream();

    DropLinesStartingWith(PrintStream target, String prefix) {
      this.target = target;
      this.prefix = prefix.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public void write(int b) {
      line.write(b);
      if (b == '\n') {
        byte[] bytes = line.toByteArray();
        line.reset();
        if (!startsWith(bytes)) {
          target.write(bytes, 0, bytes.length);
        }
      }
    }

    @Override
    public void flush() {
      target.flush();
    }

    private boolean startsWith(byte[] bytes) {
      if (bytes.length < prefix.length) {
        return false;
      }
      for (int i = 0; i < prefix.length; i++) {
        if (bytes[i] != prefix[i]) {
          return false;
        }
      }
      return true;
    }
  }
}
