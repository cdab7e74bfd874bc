package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.testing.ToyModels;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

class GradientFunctionTest {

  /** Runs {@code prepare} with standard output captured, and the quiet property set as given. */
  private static String printedWhilePreparing(SameDiff sd, boolean quiet) {
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    PrintStream original = System.out;
    PrintStream capturing = new PrintStream(captured, true);
    String before = System.setProperty(GradientFunction.QUIET_PROPERTY, String.valueOf(quiet));
    System.setOut(capturing);
    try {
      GradientFunction.prepare(sd);
      assertSame(capturing, System.out, "standard output is the caller's again afterwards");
      System.out.println("kept line");
    } finally {
      System.setOut(original);
      if (before == null) {
        System.clearProperty(GradientFunction.QUIET_PROPERTY);
      } else {
        System.setProperty(GradientFunction.QUIET_PROPERTY, before);
      }
    }
    return captured.toString();
  }

  @Test
  void prepareGradientsKeepsStandardOutputClean() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    String printed = printedWhilePreparing(sd, true);
    assertTrue(sd.hasGradientFunction());
    assertEquals("kept line" + System.lineSeparator(), printed);
  }

  @Test
  void withoutTheQuietPropertyStandardOutputIsLeftAlone() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    String printed = printedWhilePreparing(sd, false);
    assertTrue(sd.hasGradientFunction());
    // SameDiff M2.1 prints one line per differentiated op; the toy MLP has a dozen or so ops
    long noise = printed.lines().filter(l -> l.startsWith("Added differentiated op ")).count();
    System.out.println("lines SameDiff printed while building the toy MLP's gradient function: " + noise);
    assertTrue(noise >= 5, printed);
    assertTrue(printed.endsWith("kept line" + System.lineSeparator()), printed);
  }
}
