package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.bench.TextClassificationData.Example;
import dev.peft4j.lora.LoraConfig;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.Tokenizer;
import dev.peft4j.quant.QuantizedBase;
import dev.peft4j.train.Batch;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;

/** Options and presets, the method table, and real compare runs whose saved adapters reproduce their results. */
class CompareTest {

  static PrintStream quiet() {
    return new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
  }

  @Test
  void presetsAndOptions() {
    Compare.Options quick = Compare.Options.parse("--quick", "--seed", "3");
    assertEquals(Compare.Preset.QUICK, quick.preset());
    assertEquals(List.of("lora", "ia3", "bottleneck"), quick.methods());
    assertEquals(List.of(160, 64, 128, 1, 1), List.of(quick.trainRows(), quick.validationRows(), quick.testRows(),
        quick.epochs(), quick.seeds()));
    assertFalse(quick.sweep());
    assertEquals(3, quick.seed());
    Compare.Options plain = Compare.Options.parse("--methods", "ia3, lora", "--batch", "4", "--epochs", "3");
    assertEquals(Compare.Preset.DEFAULT, plain.preset());
    assertEquals(List.of("ia3", "lora"), plain.methods());
    assertEquals(List.of(320, 128, 0, 3, 1), List.of(plain.trainRows(), plain.validationRows(), plain.testRows(),
        plain.epochs(), plain.seeds()));
    assertEquals(4, plain.batch());
    assertEquals(Runtime.getRuntime().availableProcessors(), plain.workers(), "--workers auto is every core");
    assertTrue(plain.fork());
    Compare.Options full = Compare.Options.parse("--full", "--seeds", "5");
    assertEquals(CompareMethods.all().size(), full.methods().size());
    assertEquals(List.of(0, 0, 0, 5, 5), List.of(full.trainRows(), full.validationRows(), full.testRows(),
        full.epochs(), full.seeds()));
    assertTrue(full.sweep());
    assertFalse(Compare.Options.parse("--full", "--no-lr-sweep").sweep());
    assertEquals(2, Compare.Options.parse("--workers", "2").workers());
    assertEquals("--workers must be > 0 or auto, got 0",
        assertThrows(IllegalArgumentException.class, () -> Compare.Options.parse("--workers", "0")).getMessage());
    assertEquals("--workers needs an integer or auto, got 'all'",
        assertThrows(IllegalArgumentException.class, () -> Compare.Options.parse("--workers", "all")).getMessage());
    assertEquals("--quick and --full exclude each other",
        assertThrows(IllegalArgumentException.class, () -> Compare.Options.parse("--quick", "--full")).getMessage());
    assertEquals("Unknown options: '--step', '3'",
        assertThrows(IllegalArgumentException.class, () -> Compare.Options.parse("--step", "3")).getMessage());
    assertTrue(assertThrows(IllegalArgumentException.class, () -> Compare.Options.parse("--epochs", "ten"))
        .getMessage().contains("'ten' is not an int"));
    assertEquals("--batch must be > 0, got 0",
        assertThrows(IllegalArgumentException.class, () -> Compare.Options.parse("--batch", "0")).getMessage());
  }

  @Test
  void theDefaultPositiveLabelIsTheTrainingMinority() {
    List<String> labels = List.of("ham", "spam", "x");
    assertEquals(2, Compare.positiveLabel(null, labels, new int[] {0, 0, 1, 1, 2}));
    assertEquals(0, Compare.positiveLabel(null, labels, new int[] {0, 1, 1, 2, 2}));
    assertEquals(1, Compare.positiveLabel(null, List.of("0", "1"), new int[] {0, 1}), "a tie: the last label");
    assertEquals(0, Compare.positiveLabel("ham", labels, new int[] {0, 1}));
    assertEquals("--positive-label 'Spam' is not a label of the data; labels: [ham, spam, x]",
        assertThrows(IllegalArgumentException.class, () -> Compare.positiveLabel("Spam", labels, new int[] {0}))
            .getMessage());
  }

  @Test
  void methodTableNamesEachMethodOnceAndEveryConfigTrainsTheHead() throws IOException {
    List<String> names = CompareMethods.all().stream().map(CompareMethods.Method::name).toList();
    assertEquals(names.size(), names.stream().distinct().count());
    assertTrue(names.containsAll(List.of("lora", "rslora", "lora-all-linear", "ia3", "bottleneck", "hybrid")));
    SameDiff graph = Compare.classifier(null, 16, 2, 7);
    for (CompareMethods.Method m : CompareMethods.all()) {
      AdapterConfig config = m.config(1, 40);
      assertTrue(m.learningRate() > 0 && m.learningRate() < 0.1, m.name());
      PeftModel applied = config.apply(graph);
      assertTrue(applied.trainableParameters().names().stream().anyMatch(n -> n.contains(Heads.CLASSIFIER)),
          m.name() + " does not train the head: " + applied.trainableParameters().names());
      applied.unload();
    }
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> CompareMethods.named(List.of("lora", "dora9")));
    assertEquals("unknown method 'dora9'; methods: " + names, e.getMessage());
    assertEquals("method 'lora' is named twice", assertThrows(IllegalArgumentException.class,
        () -> CompareMethods.named(List.of("lora", "lora"))).getMessage());
  }

  @Test
  void tinyRealRunWritesCompleteRowsAndAdaptersThatReproduceItsPredictions(@TempDir Path out) throws IOException {
    Compare.Options options = Compare.Options.parse("--methods", "lora,ia3", "--train-rows", "8", "--validation",
        "8", "--test", "8", "--epochs", "2", "--batch", "4", "--seq", "16", "--workers", "1", "--data",
        "data/spam-assassin.jsonl", "--out", out.toString(), "--in-process");
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    Compare.Runs runs = Compare.run(options, new PrintStream(log, true, StandardCharsets.UTF_8));
    String printed = log.toString(StandardCharsets.UTF_8);
    assertEquals(List.of("lora", "ia3"), runs.results().stream().map(CompareResult::method).toList());
    assertEquals("1", runs.positiveLabel()); // the committed data is balanced: a tie goes to the last label
    for (CompareResult r : runs.results()) {
      System.out.println(r);
      assertTrue(r.trainableParams() > 0 && r.trainableParams() < r.allParams(), r.toString());
      assertEquals(100.0 * r.trainableParams() / r.allParams(), r.trainablePercent(), 1e-9);
      assertTrue(r.epochs() >= 1 && r.epochs() <= 2, r.toString());
      assertTrue(r.steps() == 2 * r.epochs(), "8 rows at batch 4 are 2 steps an epoch: " + r);
      assertTrue(r.trainSeconds() > 0 && r.evalSeconds() > 0 && r.tokensPerSecond() > 0, r.toString());
      assertTrue(Double.isFinite(r.validationLoss()), r.toString());
      Metrics.Scores s = Metrics.of(runs.testLabels(), runs.runs().get(r.method()), 1);
      assertEquals(s.accuracy(), r.accuracy().mean(), 0);
      assertEquals(s.macroF1(), r.macroF1().mean(), 0);
      assertEquals(s.positiveF1(), r.positiveF1().mean(), 0);
      assertEquals(s.rocAuc(), r.rocAuc().mean(), 0);
      assertEquals(8, runs.runs().get(r.method()).length);
      if (Files.exists(Path.of("/proc/self/clear_refs"))) {
        assertTrue(r.peakRssBytes() > 100L << 20, r.toString());
      }
      assertTrue(Files.isRegularFile(out.resolve(r.adapterDir()).resolve("adapter_model.safetensors")));
      assertTrue(Files.isRegularFile(out.resolve(r.adapterDir()).resolve(Predict.LABELS_FILE)));
    }
    // the test split is stratified: 4 of each label; the baseline predicts the training majority (a tie: label 0)
    assertEquals(4, java.util.Arrays.stream(runs.testLabels()).filter(y -> y == 1).count());
    assertEquals(CompareResult.BASELINE, runs.baseline().method());
    assertEquals(0.5, runs.baseline().accuracy().mean(), 0);
    assertEquals(1.0 / 3, runs.baseline().macroF1().mean(), 1e-12); // F1 of label 0: 2·4/(8 + 4); label 1: 0
    assertEquals(0.0, runs.baseline().positiveF1().mean(), 0);
    assertEquals(0.5, runs.baseline().rocAuc().mean(), 0);
    // the closed-form count of each method's config on a fresh graph equals the run's count from the arrays
    SameDiff fresh = Compare.classifier(null, 16, 2, 7);
    assertEquals(CompareMethods.named(List.of("lora")).get(0).config(7, 4).parameterCount(fresh),
        runs.results().get(0).trainableParams());
    assertFalse(java.util.Arrays.deepEquals(runs.runs().get("lora"), runs.runs().get("ia3")),
        "two methods gave identical predictions");
    assertAdaptersReproduce(options, runs, testSplit(options));

    List<String> csv = Files.readAllLines(out.resolve("results.csv"));
    assertEquals(4, csv.size(), "header, two methods and the baseline");
    assertTrue(csv.stream().anyMatch(l -> l.startsWith(CompareResult.BASELINE + ",")), csv.toString());
    String md = Files.readString(out.resolve("results.md"));
    assertTrue(md.contains("| ia3 |") && md.contains("**majority-class**"), md);
    assertTrue(md.contains("- train rows used: 8 {0=4, 1=4}") && md.contains("- test rows used: 8 {0=4, 1=4}")
        && md.contains("- positive label: 1 (the training split's minority class)")
        && md.contains("- sequence length: 16 tokens, special tokens included; 100% of the training texts fill it") && md.contains("- seeds: [7]"), md);
    assertTrue(Files.readString(out.resolve("results.json")).contains("\"method\": \"lora\""));
    assertTrue(Files.size(out.resolve("results.png")) > 1000);
    try (var kept = Files.list(out.resolve(Compare.TRIALS))) { // the records only: working files are removed
      assertEquals(List.of("ia3-lr3e-03-seed7.json", "lora-lr5e-04-seed7.json"),
          kept.map(p -> p.getFileName().toString()).sorted().toList());
    }
    assertTrue(printed.contains("[1/2] lora lr 5e-04 seed 7") && printed.contains("[2/2] ia3") && printed
        .contains("ETA"), printed);
    assertTrue(printed.contains("1 data-parallel worker(s) per trial") && printed.contains("positive label '1'"),
        printed);
  }

  @Test
  void everyMethodOfTheTableRunsOnAHuggingFaceDirectoryWithCsvData(@TempDir Path tmp) throws IOException {
    Path model = TinyTask.model(tmp);
    Path data = TinyTask.csv(tmp, 40);
    Path out = tmp.resolve("out");
    Compare.Options options = Compare.Options.parse("--model", model.toString(), "--data", data.toString(),
        "--text-column", "sentence", "--label-column", "y", "--epochs", "1", "--batch", "4", "--seq", "16",
        "--train-rows", "16", "--workers", "1", "--out", out.toString(), "--in-process");
    Compare.Runs runs = Compare.run(options, quiet());
    assertEquals(CompareMethods.all().stream().map(CompareMethods.Method::name).toList(),
        runs.results().stream().map(CompareResult::method).toList());
    for (CompareResult r : runs.results()) {
      assertEquals(4, runs.runs().get(r.method()).length, r.method()); // a stratified tenth of 40 rows
      assertTrue(r.trainableParams() > 0, r.toString());
    }
    assertEquals("pos", runs.positiveLabel()); // 16 of 32: a tie, the last label
    // "the movie was very good, good": 8 words and a comma, 11 tokens with [CLS] and [SEP], below 16
    assertEquals(0.0, Compare.filledShare(model, 16, testSplit(options)), 0);
    assertEquals(1.0, Compare.filledShare(model, 8, testSplit(options)), 0);
    assertAdaptersReproduce(options, runs, testSplit(options));
  }

  @Test
  void threeLabelsAreScoredWithMacroOneVsRestAucLabelledSo(@TempDir Path tmp) throws IOException {
    StringBuilder csv = new StringBuilder("sentence,y\n");
    for (int i = 0; i < 45; i++) {
      String[] kinds = {"pos", "neg", "other"};
      String text = i % 3 == 2 ? "it is a day" : TinyTask.sentence(i % 3 == 0 ? 2 * i : 2 * i + 1);
      csv.append(text).append(',').append(kinds[i % 3]).append('\n');
    }
    Path data = Files.writeString(tmp.resolve("three.csv"), csv);
    Compare.Options options = Compare.Options.parse("--model", TinyTask.model(tmp).toString(), "--data",
        data.toString(), "--text-column", "sentence", "--label-column", "y", "--methods", "linear-probe",
        "--epochs", "1", "--batch", "4", "--seq", "16", "--workers", "1", "--in-process", "--out",
        tmp.resolve("out").toString(), "--positive-label", "other");
    Compare.Runs runs = Compare.run(options, quiet());
    assertEquals("ROC AUC (macro one-vs-rest)", runs.aucName());
    assertEquals("other", runs.positiveLabel());
    CompareResult r = runs.results().get(0);
    Metrics.Scores s = Metrics.of(runs.testLabels(), runs.runs().get("linear-probe"), 1); // [neg, other, pos]
    assertEquals(s.rocAuc(), r.rocAuc().mean(), 0);
    assertEquals(s.positiveF1(), r.positiveF1().mean(), 0);
    assertEquals(3, java.util.Arrays.stream(runs.testLabels()).distinct().count(), "a stratified test split");
    String md = Files.readString(options.out().resolve("results.md"));
    assertTrue(md.contains("| accuracy | ROC AUC (macro one-vs-rest) |") && md.contains("F1 of 'other'"), md);
  }

  /** The test rows of a run, chosen again as {@link Compare#run} chose them. */
  static List<Example> testSplit(Compare.Options options) throws IOException {
    TextClassificationData file = TextClassificationData.read(options.data(),
        new TextClassificationData.Columns(options.textColumn(), options.labelColumn(), options.splitColumn()));
    return CompareData.of(file, options.data(), new CompareData.Limits(options.trainRows(),
        options.validationRows(), options.testRows()), options.seed(), false, quiet()).data().test();
  }

  /** Each saved adapter, loaded onto a fresh model, gives the run's test probabilities. */
  private static void assertAdaptersReproduce(Compare.Options options, Compare.Runs runs, List<Example> test)
      throws IOException {
    List<Batch> batches;
    try (Tokenizer tokenizer = Compare.tokenizer(options.model(), options.seqLength())) {
      batches = Compare.batches(tokenizer, test, 32);
    }
    List<String> failures = new ArrayList<>();
    for (CompareResult r : runs.results()) {
      SameDiff base = Compare.classifier(options.model(), options.seqLength(), 2, 99); // the head is loaded
      // a QLoRA adapter is an ordinary LoRA file: as in HF PEFT, it goes onto the base loaded quantised
      AdapterConfig trained = CompareMethods.named(List.of(r.method())).get(0).config(1, 4);
      if (trained instanceof LoraConfig lora && lora.quantizeBase().isPresent()) {
        QuantizedBase.quantize(base, lora.quantizeBase().get());
      }
      PeftModel loaded = Peft.load(base, options.out().resolve(r.adapterDir()));
      double[][] again = Compare.probabilities(loaded, batches);
      double[][] expected = runs.runs().get(r.method());
      assertEquals(expected.length, again.length);
      for (int i = 0; i < again.length; i++) {
        for (int c = 0; c < 2; c++) {
          if (Math.abs(expected[i][c] - again[i][c]) > 1e-5) {
            failures.add(r.method() + " row " + i + ": " + expected[i][c] + " vs " + again[i][c]);
          }
        }
      }
    }
    assertEquals(List.of(), failures);
    assertNull(runs.baseline().adapterDir());
  }
}
