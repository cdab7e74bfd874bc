package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.bench.TextClassificationData.Example;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** predict on the adapters a tiny compare run saved: the run's test probabilities again, as CSV and JSON Lines. */
class PredictTest {

  @TempDir
  static Path tmp;
  static Compare.Options options;
  static Compare.Runs runs;
  static List<Example> test;

  @BeforeAll
  static void compare() throws IOException {
    options = Compare.Options.parse("--model", TinyTask.model(tmp).toString(), "--data",
        TinyTask.csv(tmp, 40).toString(), "--text-column", "sentence", "--label-column", "y", "--methods",
        "lora,qlora", "--epochs", "1", "--batch", "4", "--seq", "16", "--train-rows", "8", "--workers", "1",
        "--in-process", "--out", tmp.resolve("out").toString());
    runs = Compare.run(options, CompareTest.quiet());
    test = CompareTest.testSplit(options);
  }

  private static String predict(String method, String input, Predict.Format format, InputStream stdin,
      ByteArrayOutputStream progress) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Predict.run(options.out().resolve("adapters/" + method), null, null, input, format, 3, stdin,
        new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(progress, true, StandardCharsets.UTF_8));
    return out.toString(StandardCharsets.UTF_8);
  }

  @Test
  void csvFromAFileGivesTheRunsTestProbabilities() throws IOException {
    // a blank line between texts: skipped, and the line numbers still name the file's lines
    StringBuilder texts = new StringBuilder();
    for (Example e : test) {
      texts.append(e.text()).append("\n\n");
    }
    Path file = Files.writeString(tmp.resolve("texts.txt"), texts);
    for (String method : List.of("lora", "qlora")) {
      ByteArrayOutputStream progress = new ByteArrayOutputStream();
      List<String> lines = predict(method, file.toString(), Predict.Format.CSV, InputStream.nullInputStream(),
          progress).lines().toList();
      assertEquals("line,label,p_neg,p_pos", lines.get(0));
      assertEquals(test.size() + 1, lines.size());
      double[][] expected = runs.runs().get(method);
      for (int i = 0; i < test.size(); i++) {
        String[] cells = lines.get(i + 1).split(",");
        assertEquals(Integer.toString(2 * i + 1), cells[0]);
        assertEquals(expected[i][1] > expected[i][0] ? "pos" : "neg", cells[1], method + " row " + i);
        assertEquals(expected[i][0], Double.parseDouble(cells[2]), 1e-5, method + " row " + i);
        assertEquals(expected[i][1], Double.parseDouble(cells[3]), 1e-5, method + " row " + i);
      }
      // 4 texts in batches of 3: two progress lines
      String printed = progress.toString(StandardCharsets.UTF_8);
      assertTrue(printed.contains("predict: 3/4 texts") && printed.contains("predict: 4/4 texts"), printed);
    }
  }

  @Test
  void jsonLinesFromStandardInput() throws IOException {
    String texts = String.join("\n", test.stream().map(Example::text).toList());
    String out = predict("lora", "-", Predict.Format.JSONL, new ByteArrayInputStream(
        texts.getBytes(StandardCharsets.UTF_8)), new ByteArrayOutputStream());
    List<String> lines = out.lines().toList();
    assertEquals(test.size(), lines.size());
    double[][] expected = runs.runs().get("lora");
    for (int i = 0; i < lines.size(); i++) {
      JsonObject o = JsonParser.parseString(lines.get(i)).getAsJsonObject();
      assertEquals(i + 1, o.get("line").getAsInt());
      assertEquals(expected[i][1], o.getAsJsonObject("probabilities").get("pos").getAsDouble(), 1e-5);
      assertEquals(expected[i][1] > expected[i][0] ? "pos" : "neg", o.get("label").getAsString());
    }
  }

  @Test
  void badInputIsNamed() throws IOException {
    Path adapter = options.out().resolve("adapters/lora");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> predict("nothing", "-",
        Predict.Format.CSV, InputStream.nullInputStream(), new ByteArrayOutputStream()));
    assertEquals("--adapter " + options.out().resolve("adapters/nothing") + ": not found (an adapter directory as "
        + "compare saves it is expected)", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> Predict.readTask(options.out()));
    assertEquals("--adapter " + options.out() + ": no peft4j-task.json; predict needs an adapter saved by compare "
        + "(its labels and method are recorded there)", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> predict("lora", "-", Predict.Format.CSV,
        new ByteArrayInputStream(new byte[] {'o', 'k', '\n', 'b', (byte) 0xFF}), new ByteArrayOutputStream()));
    assertEquals("standard input:2: byte offset 4: a byte not UTF-8 (0xFF); UTF-8 is expected", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> predict("lora", "-", Predict.Format.CSV,
        new ByteArrayInputStream("\n  \n".getBytes(StandardCharsets.UTF_8)), new ByteArrayOutputStream()));
    assertEquals("standard input: no texts (one per line expected)", e.getMessage());
    Path missing = tmp.resolve("none.txt");
    e = assertThrows(IllegalArgumentException.class, () -> predict("lora", missing.toString(), Predict.Format.CSV,
        InputStream.nullInputStream(), new ByteArrayOutputStream()));
    assertEquals(missing + ": not found", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> Predict.run(adapter, null, 65, "-", Predict.Format.CSV, 3,
        InputStream.nullInputStream(), CompareTest.quiet(), CompareTest.quiet()));
    assertTrue(e.getMessage().startsWith("--seq 65 is beyond the model's 64 positions"), e.getMessage());
  }
}
