package dev.peft4j.bench;

import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
import java.util.Optional;

/**
 * One finished trial of a {@link Compare} run as {@code trials/<method>-lr<rate>-seed<n>.json} keeps it: the trial's
 * spec, its {@link CompareTrial.Result}, and how long the whole trial took on how busy a machine. The file is written
 * to a temporary name and renamed, so a run killed at any moment leaves either the whole file or none; a file that
 * does not parse or does not match the trial it is named for is not taken as done, and {@code --resume} runs that
 * trial again.
 *
 * @param wallSeconds wall time of the whole trial: the child JVM's start, tokenising, training and scoring
 * @param loadStart   the machine's 1-minute load average when the trial started ({@link LoadAverage}); NaN if unknown
 * @param loadEnd     the same when it ended
 * @param cores       the cores Java saw
 * @param session     the run's session (1: the start, 2: the first {@code --resume}, …) that ran the trial
 */
record TrialRecord(CompareTrial.Spec spec, CompareTrial.Result result, double wallSeconds, double loadStart,
    double loadEnd, int cores, int session) {

  /**
   * Whether the load average exceeded the cores + 1 at the trial's start or end: then its times are not comparable.
   * Not the cores alone: a trial's own workers keep every core busy, and with its parent JVM the 1-minute average of
   * a run on an otherwise idle 2-core machine sits at 1.9–2.6.
   */
  boolean loaded() {
    return loadStart > cores + 1 || loadEnd > cores + 1;
  }

  /** {@code lora lr 5e-04 seed 7}. */
  String label() {
    return String.format(Locale.ROOT, "%s lr %s seed %d", spec.method(), CompareReport.sci(spec.learningRate()),
        spec.seed());
  }

  /** Writes this record to {@code file} through a temporary file and an atomic rename. */
  void write(Path file) throws IOException {
    JsonObject o = new JsonObject();
    o.add("spec", spec.json());
    o.add("result", CompareTrial.GSON.toJsonTree(result));
    o.addProperty("wall_seconds", wallSeconds);
    o.addProperty("load_average_start", loadStart);
    o.addProperty("load_average_end", loadEnd);
    o.addProperty("cores", cores);
    o.addProperty("session", session);
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.writeString(tmp, CompareTrial.GSON.toJson(o), StandardCharsets.UTF_8);
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  /**
   * The record in {@code file} if it exists and holds a complete result of {@code expected}'s trial (method, learning
   * rate, seed, epochs, patience, batch, sequence length) with probabilities for {@code validationRows} and
   * {@code testRows} rows of {@code labels} labels; otherwise empty, saying on {@code log} why an existing file was
   * not taken.
   */
  static Optional<TrialRecord> read(Path file, CompareTrial.Spec expected, int validationRows, int testRows,
      int labels, PrintStream log) throws IOException {
    if (!Files.isRegularFile(file)) {
      return Optional.empty();
    }
    String problem;
    try {
      TrialRecord r = parse(Files.readString(file, StandardCharsets.UTF_8));
      problem = mismatch(r, expected, validationRows, testRows, labels);
      if (problem == null) {
        return Optional.of(r);
      }
    } catch (JsonParseException | IllegalStateException | NullPointerException | UnsupportedOperationException
        | ClassCastException | NumberFormatException e) {
      // whatever a truncated or edited file throws: it is not a finished trial
      problem = "it does not parse (" + e.getClass().getSimpleName() + ": "
          + String.valueOf(e.getMessage()).lines().findFirst().orElse("") + ")";
    }
    log.printf("  %s is not a finished trial of this run: %s%n", file.getFileName(), problem);
    return Optional.empty();
  }

  /** The record's method name, or empty if {@code file} does not parse. */
  static Optional<String> method(Path file) throws IOException {
    try {
      return Optional.of(parse(Files.readString(file, StandardCharsets.UTF_8)).spec().method());
    } catch (JsonParseException | IllegalStateException | NullPointerException | UnsupportedOperationException
        | ClassCastException | NumberFormatException e) {
      return Optional.empty();
    }
  }

  private static TrialRecord parse(String text) {
    JsonObject o = JsonParser.parseString(text).getAsJsonObject();
    CompareTrial.Result result = CompareTrial.GSON.fromJson(o.get("result"), CompareTrial.Result.class);
    return new TrialRecord(CompareTrial.Spec.fromJson(o.getAsJsonObject("spec")), result,
        o.get("wall_seconds").getAsDouble(), o.get("load_average_start").getAsDouble(), // NaN reads back too
        o.get("load_average_end").getAsDouble(), o.get("cores").getAsInt(), o.get("session").getAsInt());
  }

  private static String mismatch(TrialRecord r, CompareTrial.Spec expected, int validationRows, int testRows,
      int labels) {
    CompareTrial.Spec s = r.spec();
    if (!s.method().equals(expected.method()) || s.learningRate() != expected.learningRate()
        || s.seed() != expected.seed() || s.epochs() != expected.epochs() || s.patience() != expected.patience()
        || s.batch() != expected.batch() || s.seqLength() != expected.seqLength()) {
      return "its spec is " + s.json() + ", expected " + expected.json();
    }
    CompareTrial.Result result = r.result();
    if (result == null || !expected.method().equals(result.method())) {
      return "it holds no result of method " + expected.method();
    }
    if (!rows(result.validationProbabilities(), validationRows, labels) || !rows(result.testProbabilities(),
        testRows, labels)) {
      return String.format(Locale.ROOT, "its probabilities are not %d validation and %d test rows of %d labels",
          validationRows, testRows, labels);
    }
    return null;
  }

  private static boolean rows(double[][] p, int rows, int labels) {
    if (p == null || p.length != rows) {
      return false;
    }
    for (double[] row : p) {
      if (row == null || row.length != labels) {
        return false;
      }
    }
    return true;
  }
}
