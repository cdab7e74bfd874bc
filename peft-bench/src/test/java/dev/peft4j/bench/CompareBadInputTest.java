package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each bad input of compare is refused with a message naming it, before anything is created. */
class CompareBadInputTest {

  @TempDir
  Path tmp;

  /** A one-method run on the tiny model; {@code changes} replace options ("--x", "v") or add flags ("--x"). */
  private Compare.Options options(String... changes) throws IOException {
    Map<String, String> args = new LinkedHashMap<>();
    Path model = Files.isDirectory(tmp.resolve("tiny-bert")) ? tmp.resolve("tiny-bert") : TinyTask.model(tmp);
    Path data = Files.isRegularFile(tmp.resolve("words.csv")) ? tmp.resolve("words.csv") : TinyTask.csv(tmp, 40);
    List<String> defaults = List.of("--model", model.toString(), "--data", data.toString(), "--text-column",
        "sentence", "--label-column", "y", "--methods", "bitfit", "--epochs", "1", "--batch", "4", "--seq", "16",
        "--train-rows", "8", "--workers", "1", "--out", tmp.resolve("out").toString());
    for (int i = 0; i < defaults.size(); i += 2) {
      args.put(defaults.get(i), defaults.get(i + 1));
    }
    args.put("--in-process", null);
    for (int i = 0; i < changes.length; i++) {
      boolean flag = i + 1 == changes.length || changes[i + 1].startsWith("--");
      args.put(changes[i], flag ? null : changes[++i]);
    }
    List<String> line = new ArrayList<>();
    args.forEach((k, v) -> {
      line.add(k);
      if (v != null) {
        line.add(v);
      }
    });
    return Compare.Options.parse(line.toArray(String[]::new));
  }

  private String refused(Compare.Options options) {
    String message = assertThrows(IllegalArgumentException.class, () -> Compare.run(options, CompareTest.quiet()))
        .getMessage();
    assertFalse(Files.exists(options.out()), "created " + options.out() + " although it refused: " + message);
    return message;
  }

  @Test
  void aSequenceBeyondTheModelsPositionsIsRefused() throws IOException {
    assertEquals("--seq 100000 is beyond the model's 64 positions (max_position_embeddings of " + tmp.resolve(
        "tiny-bert") + ")", refused(options("--seq", "100000")));
    assertEquals("--seq 100000 is beyond the model's 512 positions (max_position_embeddings of all-MiniLM-L6-v2 "
        + "(bundled))", assertThrows(IllegalArgumentException.class,
            () -> ModelOptions.checkSequenceLength(null, 100000)).getMessage());
  }

  @Test
  void aMissingModelOrDataFileIsNotFound() throws IOException {
    assertEquals("--model /nonexistent: not found (a directory with config.json and tokenizer.json is expected)",
        refused(options("--model", "/nonexistent")));
    Path missing = tmp.resolve("missing.csv");
    assertEquals(missing + ": not found", refused(options("--data", missing.toString())));
    Path noTokenizer = Files.createDirectories(tmp.resolve("half-model"));
    Files.copy(tmp.resolve("tiny-bert/config.json"), noTokenizer.resolve("config.json"));
    assertEquals("--model " + noTokenizer + ": no tokenizer.json", refused(options("--model",
        noTokenizer.toString())));
  }

  @Test
  void unknownMethodsAndPositiveLabelsAreRefused() throws IOException {
    assertTrue(refused(options("--methods", "lora,dora9")).startsWith("unknown method 'dora9'; methods: "));
    assertEquals("--positive-label 'Pos' is not a label of the data; labels: [neg, pos]",
        refused(options("--positive-label", "Pos")));
  }

  @Test
  void aSingleClassValidationSplitIsRefusedUnlessAllowed() throws IOException {
    StringBuilder csv = new StringBuilder("sentence,y,split\n");
    for (int i = 0; i < 24; i++) {
      String split = i < 16 ? "train" : i < 20 ? "validation" : "test";
      String label = split.equals("validation") ? "pos" : i % 2 == 0 ? "pos" : "neg";
      csv.append(TinyTask.sentence(i)).append(',').append(label).append(',').append(split).append('\n');
    }
    Path data = Files.writeString(tmp.resolve("sorted.csv"), csv);
    assertEquals(data + ": the validation split (4 rows) holds the single label [pos]: its F1 and ROC AUC would mean "
        + "nothing; give a validation split with every label, or pass --allow-single-class",
        refused(options("--data", data.toString())));
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    Compare.Options allowed = options("--data", data.toString(), "--allow-single-class");
    Compare.Runs runs = Compare.run(allowed, new PrintStream(log, true, StandardCharsets.UTF_8));
    assertEquals(1, runs.results().size());
    assertTrue(log.toString(StandardCharsets.UTF_8).contains("warning: " + data + ": the validation split (4 rows) "
        + "holds the single label [pos]"), log.toString(StandardCharsets.UTF_8));
    assertTrue(Files.readString(allowed.out().resolve("results.md")).contains("warning: "));
  }

  @Test
  void anOutDirectoryWithResultsIsRefusedUnlessOverwriteWhichCleansIt() throws IOException {
    Compare.Options options = options();
    Path out = Files.createDirectories(options.out());
    Files.writeString(out.resolve("results.md"), "old");
    Files.createDirectories(out.resolve("adapters/stale-method"));
    String message = assertThrows(IllegalArgumentException.class, () -> Compare.run(options, CompareTest.quiet()))
        .getMessage();
    assertEquals("--out " + out + " already holds [adapters, results.md]; pass --resume to continue that run, "
        + "--overwrite to replace it, or choose another directory", message);
    assertEquals("--resume: --out " + out + " holds [adapters, results.md] but no run.json, so it is not a run that "
        + "can be resumed; --overwrite replaces it, or choose another directory", assertThrows(
            IllegalArgumentException.class, () -> Compare.run(options("--resume"), CompareTest.quiet()))
        .getMessage());
    assertEquals("old", Files.readString(out.resolve("results.md")), "a refusal changes nothing");
    Compare.run(options("--overwrite"), CompareTest.quiet());
    assertFalse(Files.exists(out.resolve("adapters/stale-method")), "the earlier run's adapter is gone");
    assertTrue(Files.isDirectory(out.resolve("adapters/bitfit")));
    assertTrue(Files.readString(out.resolve("results.md")).startsWith("# peft4j compare"));

    // a directory holding anything else is never emptied
    Files.writeString(out.resolve("notes.txt"), "mine");
    assertEquals("--out " + out + " holds [notes.txt], which compare does not write; --overwrite replaces only "
        + "compare's own " + Compare.OUTPUTS + ": choose another directory", assertThrows(
            IllegalArgumentException.class, () -> Compare.run(options("--overwrite"), CompareTest.quiet()))
        .getMessage());
    assertEquals("mine", Files.readString(out.resolve("notes.txt")));
    assertTrue(Files.isDirectory(out.resolve("adapters/bitfit")), "a refusal changes nothing");
  }
}
