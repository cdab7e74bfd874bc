package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The main job on the real MiniLM: the loss falls, accuracy rises, the merged graph matches and is clean. */
class DemoTest {

  @Test
  void learnsAndMergesCleanly() {
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    PrintStream original = System.out;
    PrintStream originalErr = System.err;
    System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    try {
      Demo.main(new String[0]);
    } finally {
      System.setOut(original);
      System.setErr(originalErr);
    }
    String out = captured.toString(StandardCharsets.UTF_8);
    // 12 × 8·(384 + 384) LoRA on query and value, plus the classifier copy 384·2 + 2
    assertTrue(out.contains("trainable params: 74,498 || all params: 22,640,644"), out);
    Matcher loss = Pattern.compile("loss: (\\d+\\.\\d+) → (\\d+\\.\\d+)").matcher(out);
    assertTrue(loss.find(), out);
    assertTrue(Double.parseDouble(loss.group(2)) < 0.85 * Double.parseDouble(loss.group(1)), out);
    Matcher accuracy = Pattern.compile("validation accuracy: (\\d\\.\\d+) \\(untrained head\\) → (\\d\\.\\d+)")
        .matcher(out);
    assertTrue(accuracy.find(), out);
    assertTrue(Double.parseDouble(accuracy.group(2)) >= Double.parseDouble(accuracy.group(1)) + 0.2, out);
    Matcher merge = Pattern.compile("max relative difference merged vs adapted (\\S+), 0 adapter variables left, "
        + "graph links consistent: true").matcher(out);
    assertTrue(merge.find(), out);
    assertTrue(Double.parseDouble(merge.group(1)) < 1e-4, out);
  }
}
