package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;

/** Options, the method table, and one tiny real compare run on MiniLM whose saved adapters reproduce its results. */
class CompareTest {

  @Test
  void optionsAndQuickDefaults() {
    Compare.Options quick = Compare.Options.parse("--quick", "--seed", "3");
    assertEquals(List.of("lora", "ia3", "bottleneck"), quick.methods());
    assertEquals(Compare.QUICK_STEPS, quick.steps());
    assertEquals(Compare.QUICK_VALIDATION, quick.validationSize());
    assertEquals(3, quick.seed());
    Compare.Options plain = Compare.Options.parse("--methods", "ia3, lora", "--batch", "4");
    assertEquals(List.of("ia3", "lora"), plain.methods());
    assertEquals(Compare.DEFAULT_STEPS, plain.steps());
    assertEquals(4, plain.batch());
    assertEquals(1, plain.workers());
    assertEquals(2, Compare.Options.parse("--workers", "2").workers());
    assertEquals("--workers must be > 0, got 0",
        assertThrows(IllegalArgumentException.class, () -> Compare.Options.parse("--workers", "0")).getMessage());
    assertEquals(CompareMethods.all().size(), Compare.Options.parse().methods().size());
    assertEquals("unknown option '--step'; options: [--methods, --steps, --batch, --seq, --validation, --data, "
            + "--text-column, --label-column, --model, --out, --seed, --workers], --quick, --help",
        assertThrows(IllegalArgumentException.class, () -> Compare.Options.parse("--step", "3")).getMessage());
    assertEquals("--steps needs an integer, got 'ten'",
        assertThrows(IllegalArgumentException.class, () -> Compare.Options.parse("--steps", "ten")).getMessage());
    assertEquals("--batch must be > 0, got 0",
        assertThrows(IllegalArgumentException.class, () -> Compare.Options.parse("--batch", "0")).getMessage());
  }

  @Test
  void methodTableNamesEachMethodOnceAndEveryConfigTrainsTheHead() throws IOException {
    List<String> names = CompareMethods.all().stream().map(CompareMethods.Method::name).toList();
    assertEquals(names.size(), names.stream().distinct().count());
    assertTrue(names.containsAll(List.of("lora", "rslora", "lora-all-linear", "ia3", "bottleneck", "hybrid")));
    SameDiff graph = null;
    for (CompareMethods.Method m : CompareMethods.all()) {
      AdapterConfig config = m.config(1, 40);
      assertTrue(m.learningRate() > 0 && m.learningRate() < 0.1, m.name());
      if (graph == null) {
        graph = Compare.classifier(Compare.Options.parse("--seq", "16"), 2);
      }
      // every method trains the head: in modules_to_save, or as its own parameters
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
    Compare.Options options = Compare.Options.parse("--methods", "lora,ia3", "--steps", "3", "--batch", "2",
        "--seq", "16", "--validation", "8", "--data", "data/spam-assassin.jsonl", "--out", out.toString());
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    List<Compare.Run> runs = Compare.run(options, new PrintStream(log, true, StandardCharsets.UTF_8),
        new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    assertEquals(List.of("lora", "ia3"), runs.stream().map(r -> r.result().method()).toList());
    for (Compare.Run run : runs) {
      CompareResult r = run.result();
      System.out.println(r);
      assertTrue(r.trainableParams() > 0 && r.trainableParams() < r.allParams(), r.toString());
      assertEquals(100.0 * r.trainableParams() / r.allParams(), r.trainablePercent(), 1e-9);
      assertEquals(3, r.steps());
      assertTrue(r.trainSeconds() > 0 && r.evalSeconds() > 0 && r.tokensPerSecond() > 0, r.toString());
      assertTrue(Double.isFinite(r.firstLoss()) && Double.isFinite(r.lastLoss()), r.toString());
      assertEquals(8, run.probabilities().length);
      double[] recomputed = {Metrics.of(run.labels(), run.probabilities()).accuracy(),
          Metrics.of(run.labels(), run.probabilities()).f1(), Metrics.of(run.labels(), run.probabilities()).rocAuc()};
      assertEquals(recomputed[0], r.accuracy(), 0);
      assertEquals(recomputed[1], r.f1(), 0);
      assertEquals(recomputed[2], r.rocAuc(), 0);
      if (Files.exists(Path.of("/proc/self/clear_refs"))) {
        assertTrue(r.peakRssBytes() > 100L << 20, r.toString());
      }
      assertTrue(Files.isRegularFile(out.resolve(r.adapterDir()).resolve("adapter_model.safetensors")));
    }
    // the closed-form count of each method's config on a fresh graph equals the run's count from the arrays
    SameDiff fresh = Compare.classifier(options, 2);
    assertEquals(CompareMethods.named(List.of("lora")).get(0).config(7, 3).parameterCount(fresh),
        runs.get(0).result().trainableParams());
    assertFalse(java.util.Arrays.deepEquals(runs.get(0).probabilities(), runs.get(1).probabilities()),
        "two methods gave identical predictions");

    TextClassificationData data = TextClassificationData.read(options.data(),
        TextClassificationData.Columns.of("text", "label"));
    assertAdaptersReproduce(options, runs, data.split("validation").subList(0, 8));

    List<String> csv = Files.readAllLines(out.resolve("results.csv"));
    assertEquals(3, csv.size());
    assertTrue(csv.get(1).startsWith("lora,") && csv.get(2).startsWith("ia3,"), csv.toString());
    assertTrue(Files.readString(out.resolve("results.md")).contains("| ia3 |"));
    assertTrue(Files.readString(out.resolve("results.json")).contains("\"method\": \"lora\""));
    assertTrue(Files.size(out.resolve("results.png")) > 1000);
    String printed = log.toString(StandardCharsets.UTF_8);
    assertTrue(printed.contains("[1/2] lora") && printed.contains("[2/2] ia3"), printed);
  }

  @Test
  void everyMethodOfTheTableRunsOnAHuggingFaceDirectoryWithCsvData(@TempDir Path tmp) throws IOException {
    Path model = Files.createDirectories(tmp.resolve("tiny-bert"));
    try (var files = Files.list(Path.of("../peft-core/src/test/resources/fixtures/tiny-bert"))) {
      for (Path f : files.filter(f -> !f.getFileName().toString().equals("golden.safetensors")).toList()) {
        Files.copy(f, model.resolve(f.getFileName()));
      }
    }
    try (var in = CompareTest.class.getResourceAsStream("/tiny-bert-tokenizer.json")) {
      Files.copy(in, model.resolve("tokenizer.json"));  // a WordLevel vocabulary of the words below
    }
    String[] good = {"good", "great", "fine", "love", "nice", "happy"};
    String[] bad = {"bad", "awful", "poor", "hate", "sad", "terrible"};
    StringBuilder csv = new StringBuilder("sentence,y\n");
    for (int i = 0; i < 40; i++) {
      boolean positive = i % 2 == 0;
      String word = (positive ? good : bad)[i % 6];
      csv.append(String.format("\"the %s was very %s, %s\",%s%n", i % 3 == 0 ? "movie" : "food", word, word,
          positive ? "pos" : "neg"));
    }
    Path data = Files.writeString(tmp.resolve("words.csv"), csv);
    Path out = tmp.resolve("out");
    Compare.Options options = Compare.Options.parse("--model", model.toString(), "--data", data.toString(),
        "--text-column", "sentence", "--label-column", "y", "--steps", "4", "--batch", "4", "--seq", "16",
        "--out", out.toString());
    List<Compare.Run> runs = Compare.run(options, new PrintStream(new ByteArrayOutputStream(), true,
        StandardCharsets.UTF_8), new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    assertEquals(CompareMethods.all().stream().map(CompareMethods.Method::name).toList(),
        runs.stream().map(r -> r.result().method()).toList());
    for (Compare.Run run : runs) {
      assertEquals(8, run.probabilities().length, run.result().method()); // 20% of 40, no split column
      assertTrue(run.result().trainableParams() > 0, run.result().toString());
    }
    TextClassificationData read = TextClassificationData.read(data,
        new TextClassificationData.Columns("sentence", "y", "split"));
    assertEquals(List.of("neg", "pos"), read.labelNames());
    assertAdaptersReproduce(options, runs, read.randomSplit(0.2, options.seed()).get("validation"));
  }

  /** Each saved adapter, loaded onto a fresh model, gives the run's validation probabilities. */
  private static void assertAdaptersReproduce(Compare.Options options, List<Compare.Run> runs,
      List<Example> validation) throws IOException {
    List<Batch> batches;
    try (Tokenizer tokenizer = Compare.tokenizer(options)) {
      batches = Compare.batches(tokenizer, validation, 32);
    }
    for (Compare.Run run : runs) {
      SameDiff base = Compare.classifier(options, 2);
      // a QLoRA adapter is an ordinary LoRA file: as in HF PEFT, it goes onto the base loaded quantised
      AdapterConfig trained = CompareMethods.named(List.of(run.result().method())).get(0).config(1, options.steps());
      if (trained instanceof LoraConfig lora && lora.quantizeBase().isPresent()) {
        QuantizedBase.quantize(base, lora.quantizeBase().get());
      }
      PeftModel loaded = Peft.load(base, options.out().resolve(run.result().adapterDir()));
      double[][] again = Compare.probabilities(loaded.sameDiff(), batches);
      assertEquals(run.probabilities().length, again.length);
      for (int i = 0; i < again.length; i++) {
        for (int c = 0; c < 2; c++) {
          assertEquals(run.probabilities()[i][c], again[i][c], 1e-5, run.result().method() + " row " + i);
        }
      }
    }
  }
}
