package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.TrainableParameterSet;
import dev.peft4j.bench.CompareMethods.Method;
import dev.peft4j.bench.TextClassificationData.Example;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.BertConfig;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.PretrainedModels;
import dev.peft4j.model.Tokenizer;
import dev.peft4j.selective.LpFt;
import dev.peft4j.train.Batch;
import dev.peft4j.train.LearningRateSchedule;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.UnaryOperator;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The method comparison: fine-tunes a BERT encoder (the bundled all-MiniLM-L6-v2 by default) with a classification
 * head once per method of {@link CompareMethods}, each from the same pretrained weights, the same head
 * initialisation, the same data order, seed and step budget, at the method's recommended learning rate; then
 * reports trainable parameters, wall time, tokens/s, peak resident memory, and validation accuracy, F1 and ROC AUC,
 * as a terminal table and as {@code results.md}, {@code results.csv}, {@code results.json} and {@code results.png}
 * in the output directory, with each trained adapter in Hugging Face PEFT's format under {@code adapters/<method>}.
 *
 * <p>Run {@code --help} for the options. Training uses AdamW with weight decay 0.01, linear warm-up over the first
 * tenth of the steps then linear decay (Hugging Face Trainer's default schedule), gradient clipping at 1.0, and mean
 * pooling for the head. Before the timed runs, two untimed steps of the first method pay the JVM's and ND4J's
 * warm-up (JIT, native start-up), which would otherwise be charged to the first method.
 */
public final class Compare {

  static final String DEFAULT_DATA = "peft-bench/data/spam-assassin.jsonl";

  /** What one run does; see {@link #usage()}. */
  public record Options(List<String> methods, int steps, int batch, int seqLength, int validationSize, Path data,
      String textColumn, String labelColumn, Path model, Path out, long seed, int workers, boolean quick) {

    public Options {
      checkArgument(steps > 0, "--steps must be > 0, got %s", steps);
      checkArgument(batch > 0, "--batch must be > 0, got %s", batch);
      checkArgument(seqLength >= 8, "--seq must be >= 8, got %s", seqLength);
      checkArgument(validationSize > 0, "--validation must be > 0, got %s", validationSize);
      checkArgument(workers > 0, "--workers must be > 0, got %s", workers);
    }

    /** Parses command-line arguments; {@code --quick} changes the defaults of steps, validation size and methods. */
    public static Options parse(String... args) {
      Map<String, String> given = new LinkedHashMap<>();
      boolean quick = false;
      for (int i = 0; i < args.length; i++) {
        String a = args[i];
        if (a.equals("--quick")) {
          quick = true;
          continue;
        }
        checkArgument(OPTIONS.contains(a), "unknown option '%s'; options: %s, --quick, --help", a, OPTIONS);
        checkArgument(i + 1 < args.length, "%s needs a value", a);
        checkArgument(given.put(a, args[++i]) == null, "%s is given twice", a);
      }
      String methods = given.getOrDefault("--methods", quick ? QUICK_METHODS : "all");
      return new Options(
          methods.equals("all") ? CompareMethods.all().stream().map(Method::name).toList()
              : Arrays.stream(methods.split(",")).map(String::strip).toList(),
          integer(given, "--steps", quick ? QUICK_STEPS : DEFAULT_STEPS),
          integer(given, "--batch", 8),
          integer(given, "--seq", 64),
          integer(given, "--validation", quick ? QUICK_VALIDATION : DEFAULT_VALIDATION),
          given.containsKey("--data") ? Path.of(given.get("--data")) : defaultData(),
          given.getOrDefault("--text-column", "text"),
          given.getOrDefault("--label-column", "label"),
          given.containsKey("--model") ? Path.of(given.get("--model")) : null,
          Path.of(given.getOrDefault("--out", "compare-results")),
          integer(given, "--seed", 7),
          integer(given, "--workers", 1),
          quick);
    }

    private static int integer(Map<String, String> given, String name, int fallback) {
      String v = given.get(name);
      if (v == null) {
        return fallback;
      }
      try {
        return Integer.parseInt(v);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(name + " needs an integer, got '" + v + "'", e);
      }
    }
  }

  static final int DEFAULT_STEPS = 40;
  static final int DEFAULT_VALIDATION = 200;
  static final int QUICK_STEPS = 20;
  static final int QUICK_VALIDATION = 96;
  static final String QUICK_METHODS = "lora,ia3,bottleneck";
  private static final List<String> OPTIONS = List.of("--methods", "--steps", "--batch", "--seq", "--validation",
      "--data", "--text-column", "--label-column", "--model", "--out", "--seed", "--workers");
  private static final int EVAL_BATCH = 32;
  private static final int CHART_WIDTH = 960;
  private static final int CHART_HEIGHT = 600;

  /** One method's measured row, with its validation probabilities {@code [n][labels]} and the labels. */
  public record Run(CompareResult result, double[][] probabilities, int[] labels) {}

  private Compare() {}

  static String usage() {
    return String.join("\n",
        "compare: fine-tune one model with each PEFT method on one text-classification task and compare them",
        "  --methods a,b,...   methods to run, in order (default: all): " + String.join(", ",
            CompareMethods.all().stream().map(Method::name).toList()),
        "  --steps N           optimizer steps per method (default " + DEFAULT_STEPS + "; --quick: " + QUICK_STEPS
            + ")",
        "  --batch N           training batch size (default 8)",
        "  --seq N             tokens per text, special tokens included (default 64)",
        "  --validation N      validation examples used, at most (default " + DEFAULT_VALIDATION + "; --quick: "
            + QUICK_VALIDATION + ")",
        "  --data FILE         .jsonl or .csv with a text and a label column, optionally a split column",
        "                      (train/validation; default " + DEFAULT_DATA + "; without a split column, a seeded",
        "                      80/20 split)",
        "  --text-column C     (default text)    --label-column C   (default label)",
        "  --model DIR         a Hugging Face BERT checkpoint directory with tokenizer.json (default: the bundled",
        "                      all-MiniLM-L6-v2)",
        "  --out DIR           output directory (default compare-results)",
        "  --seed N            seed of the data order, head, adapter initialisation and dropout (default 7)",
        "  --workers N         data-parallel training over N cores (Trainer.dataParallel; default 1: off)",
        "  --quick             a ~2-minute try-out: methods " + QUICK_METHODS + ", " + QUICK_STEPS + " steps, "
            + QUICK_VALIDATION + " validation examples");
  }

  public static void main(String[] args) throws IOException {
    if (Arrays.asList(args).contains("--help")) {
      System.out.println(usage());
      return;
    }
    Options options;
    try {
      options = Options.parse(args);
      CompareMethods.named(options.methods());
    } catch (IllegalArgumentException e) {
      System.err.println("compare: " + e.getMessage() + "\n\n" + usage());
      System.exit(2);
      return;
    }
    List<Run> runs = run(options, System.out, System.err);
    System.out.println();
    System.out.print(CompareReport.table(runs.stream().map(Run::result).toList()));
    System.out.println("\nresults: " + options.out().toAbsolutePath());
  }

  /**
   * Runs every method of {@code options}, writes the results and the adapters to {@code options.out()}, and returns
   * the rows. Progress goes to {@code log}, the progress bars to {@code bars}.
   */
  public static List<Run> run(Options options, PrintStream log, PrintStream bars) throws IOException {
    List<Method> methods = CompareMethods.named(options.methods());
    TextClassificationData data = TextClassificationData.read(options.data(),
        TextClassificationData.Columns.of(options.textColumn(), options.labelColumn()));
    List<Example> train;
    List<Example> validation;
    if (data.hasSplits()) {
      train = data.split("train");
      validation = data.split("validation");
    } else {
      Map<String, List<Example>> split = data.randomSplit(0.2, options.seed());
      train = split.get("train");
      validation = split.get("validation");
    }
    checkArgument(!train.isEmpty() && !validation.isEmpty(), "%s: needs train and validation rows, has %s and %s",
        options.data(), train.size(), validation.size());
    validation = validation.subList(0, Math.min(validation.size(), options.validationSize()));
    int numLabels = data.labelNames().size();
    Files.createDirectories(options.out());

    List<Example> order = new ArrayList<>(train);
    Collections.shuffle(order, new Random(options.seed()));
    int needed = Math.min(order.size(), options.steps() * options.batch());
    List<Batch> trainBatches;
    List<Batch> validationBatches;
    String modelName;
    try (Tokenizer tokenizer = tokenizer(options)) {
      trainBatches = batches(tokenizer, order.subList(0, needed), options.batch());
      validationBatches = batches(tokenizer, validation, EVAL_BATCH);
      modelName = options.model() == null ? "all-MiniLM-L6-v2 (bundled)" : options.model().toString();
    }
    int[] labels = validation.stream().mapToInt(Example::label).toArray();

    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("model", modelName);
    settings.put("data", options.data().toString());
    settings.put("labels", String.join(", ", data.labelNames()));
    settings.put("train examples", train.size());
    settings.put("validation examples", validation.size());
    settings.put("steps", options.steps());
    settings.put("batch", options.batch());
    settings.put("sequence length", options.seqLength());
    settings.put("seed", options.seed());
    if (options.workers() > 1) { // only when set: the committed results' settings stay as they were
      settings.put("workers", options.workers());
    }
    settings.put("optimizer", "AdamW, weight decay 0.01, 10% linear warm-up then linear decay, clip 1.0");
    settings.put("threads", System.getenv().getOrDefault("OMP_NUM_THREADS", "default"));
    log.printf(Locale.ROOT, "compare: %d methods on %s, %d steps × batch %d × seq %d, %d train / %d validation "
            + "examples, seed %d%n", methods.size(), modelName, options.steps(), options.batch(),
        options.seqLength(), train.size(), validation.size(), options.seed());

    // The first training in a JVM also pays for JIT compilation and native start-up (seconds); a short untimed run
    // pays it here, so the first method's time is comparable with the others'.
    long warmupStart = System.nanoTime();
    warmUp(methods.get(0), options, numLabels, trainBatches.subList(0, Math.min(2, trainBatches.size())),
        validationBatches.subList(0, 1));
    log.printf(Locale.ROOT, "warm-up (2 untimed steps of %s): %.1f s%n", methods.get(0).name(),
        (System.nanoTime() - warmupStart) / 1e9);

    List<Run> runs = new ArrayList<>();
    for (int i = 0; i < methods.size(); i++) {
      Method method = methods.get(i);
      log.printf(Locale.ROOT, "[%d/%d] %s: %s, lr %s%n", i + 1, methods.size(), method.name(),
          method.description(), method.learningRate());
      Run r = runOne(method, options, numLabels, trainBatches, validationBatches, labels, bars);
      runs.add(r);
      CompareResult c = r.result();
      log.printf(Locale.ROOT, "    %,d trainable (%.4f%%), %.1f s training, %,.0f tokens/s, validation accuracy %.4f "
              + "F1 %.4f ROC AUC %.4f%n", c.trainableParams(), c.trainablePercent(), c.trainSeconds(),
          c.tokensPerSecond(), c.accuracy(), c.f1(), c.rocAuc());
      write(options.out(), settings, runs.stream().map(Run::result).toList()); // partial results survive a crash
    }
    return runs;
  }

  /** Writes results.csv, results.json, results.md and results.png into {@code out}. */
  static void write(Path out, Map<String, Object> settings, List<CompareResult> results) throws IOException {
    Files.writeString(out.resolve("results.csv"), CompareReport.csv(results), StandardCharsets.UTF_8);
    Files.writeString(out.resolve("results.json"), CompareReport.json(settings, results), StandardCharsets.UTF_8);
    Files.writeString(out.resolve("results.md"), CompareReport.markdown(settings, results), StandardCharsets.UTF_8);
    CompareChart.write(results, out.resolve("results.png"), CHART_WIDTH, CHART_HEIGHT);
  }

  private static void warmUp(Method method, Options options, int numLabels, List<Batch> train,
      List<Batch> validation) throws IOException {
    PeftModel model = method.config(options.seed(), options.steps()).apply(classifier(options, numLabels));
    Trainer.builder(model).steps(train.size()).learningRate(method.learningRate()).seed(options.seed())
        .dataParallel(options.workers()).progress(null).build().fit(train);
    probabilities(model.sameDiff(), validation);
  }

  private static Run runOne(Method method, Options options, int numLabels, List<Batch> trainBatches,
      List<Batch> validationBatches, int[] labels, PrintStream bars) throws IOException {
    System.gc(); // let the previous run's native buffers go before the peak is reset
    boolean peakKnown = PeakMemory.reset();
    SameDiff sd = classifier(options, numLabels);
    // percentages of the base model's parameters: an adapter that trains copies (modules_to_save, full fine-tuning)
    // would otherwise count those weights twice in the denominator
    long baseParameters = TrainableParameterSet.parameterCount(sd);
    AdapterConfig config = method.config(options.seed(), options.steps());
    int warmup = Math.max(1, options.steps() / 10);
    UnaryOperator<Trainer.Builder> schedule = t -> t.weightDecay(0.01).schedule(LearningRateSchedule.LINEAR)
        .seed(options.seed()).dataParallel(options.workers()).progress(bars);
    long start = System.nanoTime();
    PeftModel model;
    TrainingHistory history;
    if (method.probe() == null) {
      model = config.apply(sd);
      history = schedule.apply(Trainer.builder(model)).steps(options.steps()).learningRate(method.learningRate())
          .warmupSteps(Math.min(warmup, options.steps())).build().fit(trainBatches);
    } else { // LP-FT: the head alone first, then the config from the trained head; the step budget is shared
      int probeSteps = Math.max(1, (int) Math.round(options.steps() * method.probe().fraction()));
      int fineTuneSteps = Math.max(1, options.steps() - probeSteps);
      LpFt.Result lpFt = LpFt.builder(config).head(Peft.linearProbe().head(Heads.CLASSIFIER).build())
          .probe(t -> schedule.apply(t).steps(probeSteps).learningRate(method.probe().learningRate())
              .warmupSteps(Math.max(1, probeSteps / 10)))
          .fineTune(t -> schedule.apply(t).steps(fineTuneSteps).learningRate(method.learningRate())
              .warmupSteps(Math.max(1, fineTuneSteps / 10)))
          .fit(sd, trainBatches);
      model = lpFt.model();
      history = lpFt.fineTune();
    }
    TrainableParameterSet trainable = model.trainableParameters();
    checkArgument(trainable.names().stream().anyMatch(n -> n.contains(Heads.CLASSIFIER)), "method '%s' does not "
        + "train the head %s: its trainable set is %s", method.name(), Heads.CLASSIFIER, trainable.names());
    double trainSeconds = (System.nanoTime() - start) / 1e9;
    start = System.nanoTime();
    double[][] probabilities = probabilities(model.sameDiff(), validationBatches);
    double evalSeconds = (System.nanoTime() - start) / 1e9;
    long peak = peakKnown ? PeakMemory.peakBytes() : -1;
    Metrics.Scores scores = Metrics.of(labels, probabilities);
    String adapterDir = "adapters/" + method.name();
    model.save(options.out().resolve(adapterDir));
    CompareResult result = new CompareResult(method.name(), method.description(), trainable.count(),
        baseParameters, 100.0 * trainable.count() / baseParameters, method.learningRate(), options.steps(), trainSeconds,
        evalSeconds, history.tokensPerSecond(), peak, history.firstLoss(),
        history.meanLossOfLast(Math.max(1, options.steps() / 10)), scores.accuracy(), scores.f1(), scores.rocAuc(),
        adapterDir);
    return new Run(result, probabilities, labels);
  }

  /** A fresh encoder with a classification head; the same weights and head initialisation on every call. */
  static SameDiff classifier(Options options, int numLabels) throws IOException {
    if (options.model() == null) {
      PretrainedModels.Encoder encoder = PretrainedModels.miniLm(options.seqLength());
      encoder.tokenizer().close();
      return Heads.sequenceClassification(encoder.sameDiff(), encoder.config().hiddenSize(), numLabels,
          Heads.Pooling.MEAN, options.seed());
    }
    HfModels.Loaded loaded = HfModels.load(options.model());
    checkArgument(loaded.config() instanceof BertConfig, "%s: compare needs a BERT encoder, got %s",
        options.model(), loaded.config().getClass().getSimpleName());
    return Heads.sequenceClassification(loaded.sameDiff(), ((BertConfig) loaded.config()).hiddenSize(), numLabels,
        Heads.Pooling.MEAN, options.seed());
  }

  static Tokenizer tokenizer(Options options) throws IOException {
    if (options.model() == null) {
      return PretrainedModels.miniLm(options.seqLength()).tokenizer();
    }
    Path json = options.model().resolve("tokenizer.json");
    checkArgument(Files.isRegularFile(json), "%s: no tokenizer.json", options.model());
    try (InputStream in = Files.newInputStream(json)) {
      return Tokenizer.read(in, options.seqLength());
    }
  }

  static List<Batch> batches(Tokenizer tokenizer, List<Example> examples, int size) {
    List<Batch> out = new ArrayList<>();
    for (int i = 0; i < examples.size(); i += size) {
      List<Example> part = examples.subList(i, Math.min(examples.size(), i + size));
      Tokenizer.Encoded encoded = tokenizer.encode(part.stream().map(Example::text).toList());
      Map<String, INDArray> inputs = new HashMap<>(encoded.bertInputs());
      inputs.put(Heads.LABELS, Nd4j.createFromArray(part.stream().mapToLong(Example::label).toArray()));
      out.add(new Batch(inputs, encoded.tokens()));
    }
    return out;
  }

  /** Class probabilities of every example, {@code [n][labels]}, in inference mode. */
  static double[][] probabilities(SameDiff sd, List<Batch> batches) {
    List<double[]> rows = new ArrayList<>();
    for (Batch b : batches) {
      INDArray p = sd.output(b.inputs(), Heads.PROBABILITIES).get(Heads.PROBABILITIES);  // [b, labels]
      for (int i = 0; i < p.rows(); i++) {
        rows.add(p.getRow(i).toDoubleVector());
      }
    }
    return rows.toArray(double[][]::new);
  }

  private static Path defaultData() {
    Path fromRoot = Path.of(DEFAULT_DATA);
    Path fromModule = Path.of("data/spam-assassin.jsonl");
    if (Files.isRegularFile(fromRoot) || !Files.isRegularFile(fromModule)) {
      return fromRoot;
    }
    return fromModule;
  }
}
