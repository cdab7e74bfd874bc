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
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.commons.csv.CSVFormat;
import org.apache.commons.csv.CSVParser;
import org.apache.commons.csv.CSVRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code compare --resume}: a run spread over sessions gives the results of one run in one go. */
class CompareResumeTest {

  @TempDir
  Path tmp;

  /** Thrown by {@link #stopAfter}'s stream: the parent "dies" right after a trial's record is written. */
  private static final class Killed extends RuntimeException {}

  /** A log that ends the run when the progress line of trial {@code k} is printed. */
  private static PrintStream stopAfter(int k, ByteArrayOutputStream sink) {
    return new PrintStream(sink, true, StandardCharsets.UTF_8) {
      @Override
      public void println(String line) {
        super.println(line);
        if (line.startsWith("[" + k + "/")) {
          throw new Killed();
        }
      }
    };
  }

  private Compare.Options options(Path out, String... more) throws IOException {
    Path model = Files.isDirectory(tmp.resolve("tiny-bert")) ? tmp.resolve("tiny-bert") : TinyTask.model(tmp);
    Path data = Files.isRegularFile(tmp.resolve("words.csv")) ? tmp.resolve("words.csv") : TinyTask.csv(tmp, 40);
    Map<String, String> args = new LinkedHashMap<>();
    List<String> defaults = List.of("--model", model.toString(), "--data", data.toString(), "--text-column",
        "sentence", "--label-column", "y", "--epochs", "2", "--batch", "4", "--seq", "16", "--train-rows", "16",
        "--workers", "1", "--out", out.toString());
    for (int i = 0; i < defaults.size(); i += 2) {
      args.put(defaults.get(i), defaults.get(i + 1));
    }
    args.put("--in-process", null);
    for (int i = 0; i < more.length; i++) { // an option followed by a value replaces the default; a flag is added
      boolean flag = i + 1 == more.length || more[i + 1].startsWith("--");
      args.put(more[i], flag ? null : more[++i]);
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

  /** results.csv without the columns of time and memory, which differ between any two runs. */
  private static List<Map<String, String>> metricColumns(Path out) throws IOException {
    List<Map<String, String>> rows = new ArrayList<>();
    try (CSVParser csv = CSVFormat.DEFAULT.builder().setHeader().get().parse(Files.newBufferedReader(
        out.resolve("results.csv")))) {
      for (CSVRecord record : csv) {
        Map<String, String> row = new LinkedHashMap<>(record.toMap());
        row.keySet().removeAll(List.of("train_seconds", "eval_seconds", "tokens_per_second", "peak_rss_mib"));
        rows.add(row);
      }
    }
    assertEquals(CompareReport.COLUMNS.size() - 4, rows.get(0).size());
    return rows;
  }

  @Test
  void aRunKilledAfterThreeTrialsAndResumedGivesTheResultsOfAnUninterruptedRun() throws IOException {
    String[] protocol = {"--methods", "linear-probe,lora", "--lr-sweep", "--seeds", "2", "--epochs", "1"};
    Compare.Runs whole = Compare.run(options(tmp.resolve("whole"), protocol), CompareTest.quiet());
    assertEquals(2, whole.results().size());

    Path out = tmp.resolve("split");
    ByteArrayOutputStream first = new ByteArrayOutputStream();
    assertThrows(Killed.class, () -> Compare.run(options(out, protocol), stopAfter(3, first)));
    Path trials = out.resolve(Compare.TRIALS);
    List<String> recorded = records(trials);
    assertEquals(List.of("linear-probe-lr1e-02-seed7.json", "linear-probe-lr2.5e-03-seed7.json",
        "linear-probe-lr5e-03-seed7.json"), recorded);
    String kept = Files.readString(trials.resolve(recorded.get(0)));
    // what a kill in the middle of lora's first trial could leave: a half-written record (a rename makes this
    // impossible for compare's own writes, so the file stands for any damage), its temporary file and an adapter
    String half = kept.substring(0, kept.length() / 2).replace("linear-probe", "lora");
    Files.writeString(trials.resolve("lora-lr2.5e-04-seed7.json"), half);
    Files.writeString(trials.resolve("lora-lr2.5e-04-seed7.json.tmp"), half);
    Files.createDirectories(trials.resolve("lora-lr2.5e-04-seed7"));
    Files.writeString(trials.resolve("lora-lr2.5e-04-seed7/adapter_model.safetensors"), "partial");

    // a session of lora alone: linear-probe's recorded sweep stays, the method is named as not done
    Compare.Runs loraOnly = Compare.run(options(out, Stream.concat(Arrays.stream(protocol), Stream.of("--resume",
        "--methods", "lora")).toArray(String[]::new)), CompareTest.quiet());
    assertEquals(List.of("lora"), loraOnly.results().stream().map(CompareResult::method).toList());
    assertTrue(Files.readString(out.resolve("results.md")).contains("; trials recorded but not all done: "
        + "linear-probe"));
    assertEquals(7, records(trials).size());
    // and the damage again, as the lora session replaced that record
    Files.writeString(trials.resolve("lora-lr2.5e-04-seed7.json"), half);

    ByteArrayOutputStream second = new ByteArrayOutputStream();
    Compare.Runs resumed = Compare.run(options(out, Stream.concat(Arrays.stream(protocol), Stream.of("--resume"))
        .toArray(String[]::new)), new PrintStream(second, true, StandardCharsets.UTF_8));
    String printed = second.toString(StandardCharsets.UTF_8);
    System.out.println(printed);
    assertTrue(printed.contains("[1/8] linear-probe lr 2.5e-03 seed 7: recorded by session 1")
        && printed.contains("[3/8] linear-probe lr 1e-02 seed 7: recorded by session 1")
        && printed.contains("lora-lr2.5e-04-seed7.json is not a finished trial of this run: it does not parse")
        && printed.contains("[4/8] linear-probe lr ") && !printed.contains("[4/8] linear-probe lr 2.5e-03 seed 7")
        && printed.contains("[5/8] lora lr 2.5e-04 seed 7: 1 epoch(s)")
        && printed.contains("[6/8] lora lr 5e-04 seed 7: recorded by session 2")
        && printed.contains("[8/8] lora lr "), printed);
    assertEquals(kept, Files.readString(trials.resolve(recorded.get(0))), "a finished trial is not run again");

    assertEquals(metricColumns(tmp.resolve("whole")), metricColumns(out));
    for (CompareResult r : resumed.results()) {
      assertTrue(Arrays.deepEquals(whole.runs().get(r.method()), resumed.runs().get(r.method())), r.method());
      assertTrue(Files.isRegularFile(out.resolve(r.adapterDir()).resolve("adapter_model.safetensors")));
    }
    assertEquals(8, records(trials).size(), "the records stay; working files and other trials' adapters go");
    try (Stream<Path> files = Files.list(trials)) {
      assertEquals(8, files.count());
    }
    String md = Files.readString(out.resolve("results.md"));
    assertTrue(md.contains("- sessions: 3 (started ") && md.contains("; resumed "), md);
    assertTrue(md.contains("- trials: 8, each in trials/ with its wall time"), md);
    assertTrue(md.contains("- methods: 2 reported; missing 19 of the default preset's 21: "), md);
  }

  @Test
  void resumeStartsAMissingRunRefusesOtherOptionsByNameAndAddsMethods() throws IOException {
    Path out = tmp.resolve("out");
    Compare.run(options(out, "--methods", "linear-probe", "--resume"), CompareTest.quiet());
    assertEquals(1, RunFile.read(out).sessions().size(), "--resume on a missing directory starts the run");
    assertEquals(List.of("linear-probe"), RunFile.read(out).sessions().get(0).methods());
    String run = Files.readString(out.resolve(RunFile.NAME));
    String results = Files.readString(out.resolve("results.csv"));

    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Compare.run(options(out,
        "--methods", "bitfit", "--resume", "--epochs", "3", "--seed", "8"), CompareTest.quiet()));
    assertEquals("--resume: " + out.resolve(RunFile.NAME) + " holds a run with other options: --epochs 2 in the "
        + "run, 3 now; --seed 7 in the run, 8 now; give the run's options (only --methods may change), or "
        + "--overwrite to start again", e.getMessage());
    assertEquals(run, Files.readString(out.resolve(RunFile.NAME)), "a refusal changes nothing");
    assertEquals(results, Files.readString(out.resolve("results.csv")));
    assertEquals("--overwrite and --resume exclude each other", assertThrows(IllegalArgumentException.class,
        () -> options(out, "--resume", "--overwrite")).getMessage());

    ByteArrayOutputStream log = new ByteArrayOutputStream();
    Compare.Runs runs = Compare.run(options(out, "--methods", "bitfit", "--resume"),
        new PrintStream(log, true, StandardCharsets.UTF_8));
    assertEquals(List.of("linear-probe", "bitfit"), runs.results().stream().map(CompareResult::method).toList(),
        "in the order the sessions first asked for them");
    assertTrue(log.toString(StandardCharsets.UTF_8).contains("[1/1] bitfit lr"), log.toString());
    assertEquals(2, RunFile.read(out).sessions().size());
    assertEquals(List.of("bitfit"), RunFile.read(out).sessions().get(1).methods());
    List<String> csv = Files.readAllLines(out.resolve("results.csv"));
    assertEquals(4, csv.size(), "header, two methods, baseline: " + csv);
    assertTrue(csv.contains(results.lines().filter(l -> l.startsWith("linear-probe,")).findFirst().orElseThrow()),
        "the first session's row is kept as it was");
    assertTrue(Files.isRegularFile(out.resolve("adapters/linear-probe/adapter_model.safetensors")));
    assertTrue(Files.isRegularFile(out.resolve("adapters/bitfit/adapter_model.safetensors")));
    assertTrue(Files.readString(out.resolve("results.md")).contains("- methods: 2 reported; missing 19 of the "
        + "default preset's 21: "));

    // the chosen trial's adapter lost: that trial runs again, and nothing else
    List<Map<String, String>> before = metricColumns(out);
    deleteTree(out.resolve("adapters/linear-probe"));
    ByteArrayOutputStream third = new ByteArrayOutputStream();
    Compare.run(options(out, "--methods", "linear-probe", "--resume"), new PrintStream(third, true,
        StandardCharsets.UTF_8));
    String printed = third.toString(StandardCharsets.UTF_8);
    assertTrue(printed.contains("the adapter of linear-probe lr 5e-03 seed 7 is missing; running it again")
        && printed.contains("[1/1] linear-probe lr 5e-03 seed 7: 2 epoch(s)"), printed);
    assertTrue(Files.isRegularFile(out.resolve("adapters/linear-probe/adapter_model.safetensors")));
    assertEquals(before, metricColumns(out), "the same rows but for the times");
  }

  private static void deleteTree(Path root) throws IOException {
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  @Test
  void trialsRunOnAMachineBusierThanItsCoresAreNamedInTheResults() {
    CompareTrial.Result result = new CompareTrial.Result("lora", 5e-4, 7, 10, 100, 1, 1, 2, 3.0, 1.0, 100, -1,
        0.5, new double[0][], new double[0][]);
    CompareTrial.Spec spec = new CompareTrial.Spec("lora", 5e-4, 7, 1, 1, 4, 16, null, 1, Path.of("d.json"),
        Path.of("r.json"), Path.of("a"));
    TrialRecord quiet = new TrialRecord(spec, result, 12, 0.5, 1.9, 2, 1);
    TrialRecord busy = new TrialRecord(spec, result, 30, 1.5, 3.25, 2, 2);
    TrialRecord unknown = new TrialRecord(spec, result, 20, Double.NaN, Double.NaN, 2, 2);
    assertFalse(quiet.loaded());
    assertTrue(busy.loaded());
    assertFalse(unknown.loaded());
    RunFile run = new RunFile(Map.of(), List.of(new RunFile.Session("2026-12-06T23:00:00Z", "abc", 2,
        List.of("lora")), new RunFile.Session("2026-12-07T08:00:00Z", "def", 2, List.of("lora"))));
    Map<String, Object> notes = Compare.withRunNotes(Map.of(), Compare.Options.parse("--quick"), run, List.of(
        CompareReportTest.LORA, CompareReportTest.IA3), List.of(), List.of(quiet, busy, unknown));
    assertEquals("2 reported; missing 1 of the quick preset's 3: bottleneck", notes.get("methods"));
    assertEquals("2 (started 2026-12-06T23:00:00Z at commit abc, methods lora; resumed 2026-12-07T08:00:00Z at "
        + "commit def, methods lora)", notes.get("sessions"));
    assertEquals("3, each in trials/ with its wall time (12–30 s here), peak RSS and the 1-minute load average at "
        + "its start and end; 1 ran while the load average was above the machine's cores + 1 (at start or end), so "
        + "their times are not comparable with a quiet machine's: lora lr 5e-04 seed 7 (load 1.50 → 3.25, 2 cores); load average unknown "
        + "for 1", notes.get("trials"));
  }

  private static List<String> records(Path trials) throws IOException {
    try (Stream<Path> files = Files.list(trials)) {
      return files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".json") && !n.endsWith("-spec.json")
          && !n.endsWith("-result.json") && !n.equals("data.json")).sorted().toList();
    }
  }
}
