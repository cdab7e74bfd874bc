package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.bench.TextClassificationData.Example;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.TreeMap;

/**
 * The train / validation / test rows of a {@link Compare} run, chosen from a {@link TextClassificationData} file.
 *
 * <ul>
 *   <li>A file with a split column gives its three splits. Without {@code test} rows, the file's validation rows
 *       become the test split and a stratified tenth of the training rows the validation split (nothing is tuned on
 *       what is reported); without {@code validation} rows, a stratified tenth of the training rows.</li>
 *   <li>A file without splits: a stratified, seeded 80 / 10 / 10 split.</li>
 *   <li>Then each split is cut to its row limit by a stratified random sample ({@link Stratified}), never by taking
 *       the file's first rows.</li>
 * </ul>
 * A validation or test split with a single class is refused (its F1 and ROC AUC would say nothing), unless
 * {@code allowSingleClass}, which prints a warning instead.
 *
 * @param data  the rows every trial uses
 * @param notes how the splits were made, for the records
 */
record CompareData(CompareTrial.Data data, List<String> notes) {

  /** Limits on rows per split; 0 is "all". */
  record Limits(int train, int validation, int test) {}

  static CompareData of(TextClassificationData file, Path path, Limits limits, long seed, boolean allowSingleClass,
      PrintStream log) {
    List<String> notes = new ArrayList<>();
    List<Example> train;
    List<Example> validation;
    List<Example> test;
    if (file.hasSplits()) {
      train = file.split("train");
      validation = file.split("validation");
      test = file.split("test");
      checkArgument(!train.isEmpty(), "%s: no rows with split 'train'", path);
      if (test.isEmpty() && !validation.isEmpty()) {
        test = validation;
        validation = List.of();
        notes.add("the file has no test rows: its validation rows are the test split");
      }
      if (validation.isEmpty()) {
        Stratified.Cut cut = Stratified.sample(train, Math.max(1, train.size() / 10), seed);
        validation = cut.sample();
        train = cut.rest();
        notes.add("validation: a stratified tenth of the file's training rows");
      }
      if (test.isEmpty()) {
        Stratified.Cut cut = Stratified.sample(train, Math.max(1, train.size() / 9), seed + 1);
        test = cut.sample();
        train = cut.rest();
        notes.add("test: a stratified ninth of the remaining training rows");
      }
    } else {
      List<Example> all = file.examples();
      Stratified.Cut first = Stratified.sample(all, Math.max(1, all.size() / 10), seed);
      Stratified.Cut second = Stratified.sample(first.rest(), Math.max(1, all.size() / 10), seed + 1);
      test = first.sample();
      validation = second.sample();
      train = second.rest();
      notes.add("no split column: a stratified, seeded 80 / 10 / 10 split");
    }
    train = limit("train", train, limits.train(), seed, notes);
    validation = limit("validation", validation, limits.validation(), seed, notes);
    test = limit("test", test, limits.test(), seed, notes);
    checkArgument(!train.isEmpty(), "%s: no training rows", path);
    for (var split : List.of(List.of("validation", validation), List.of("test", test))) {
      String name = (String) split.get(0);
      @SuppressWarnings("unchecked")
      List<Example> rows = (List<Example>) split.get(1);
      TreeMap<String, Integer> counts = counts(file.labelNames(), rows);
      if (counts.size() < 2) {
        String message = String.format(Locale.ROOT, "%s: the %s split (%d rows) holds the single label %s: its F1 "
            + "and ROC AUC would mean nothing", path, name, rows.size(), counts.keySet());
        checkArgument(allowSingleClass, "%s; give a %s split with every label, or pass --allow-single-class", message,
            name);
        log.println("warning: " + message);
        notes.add("warning: " + message);
      }
    }
    return new CompareData(new CompareTrial.Data(file.labelNames(), train, validation, test), List.copyOf(notes));
  }

  private static List<Example> limit(String name, List<Example> rows, int limit, long seed, List<String> notes) {
    if (limit <= 0 || limit >= rows.size()) {
      return rows;
    }
    notes.add(String.format(Locale.ROOT, "%s: a stratified random %d of %d rows", name, limit, rows.size()));
    return Stratified.sample(rows, limit, seed + 2).sample();
  }

  /** Label name → rows, for the labels present. */
  static TreeMap<String, Integer> counts(List<String> labelNames, List<Example> rows) {
    TreeMap<String, Integer> out = new TreeMap<>();
    rows.forEach(r -> out.merge(labelNames.get(r.label()), 1, Integer::sum));
    return out;
  }
}
