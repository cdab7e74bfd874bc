package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.PeftModel;
import dev.peft4j.bench.CompareMethods.Method;
import dev.peft4j.bench.TextClassificationData.Example;
import dev.peft4j.model.BertConfig;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfCheckpoint;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.model.LlamaConfig;
import dev.peft4j.model.PretrainedModels;
import dev.peft4j.model.Tokenizer;
import dev.peft4j.train.Batch;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.DoubleSummaryStatistics;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The method comparison: fine-tunes a BERT encoder (the bundled all-MiniLM-L6-v2 by default) with a classification
 * head, or a Llama-family decoder with Hugging Face's {@code score} head on the last non-padding token, once per method of {@link CompareMethods}, each from the same pretrained weights and the same data, and reports
 * the test split's accuracy, macro-F1, F1 of a stated positive class and ROC AUC (mean ± std over seeds) beside a
 * majority-class baseline, with trainable parameters, time, tokens/s and peak resident memory, as a terminal table
 * and as {@code results.md}, {@code results.csv}, {@code results.json} and {@code results.png}; each method's adapter
 * (of its chosen setting's first seed) goes in Hugging Face PEFT's format under {@code adapters/<method>}, with
 * {@value Predict#LABELS_FILE} for {@link Predict}.
 *
 * <p>The protocol ({@link CompareTrial} has the training): each trial trains by epochs over the whole training
 * split, shuffled per epoch, with early stopping on validation loss; with {@code --lr-sweep}, each method tries
 * {@link #SWEEP} times its recommended learning rate and keeps the one of the lowest validation loss; the kept setting
 * is run over {@code --seeds} seeds; the test split is scored only at the end and never chooses anything. Every trial
 * runs in its own JVM ({@link TrialProcess}: its time and peak memory are its own). Presets: {@code --quick}, the default, {@code --full}
 * ({@link Preset}). Each finished trial is recorded under {@code trials/} ({@link TrialRecord}) and the run's options
 * in {@link RunFile}, so {@code --resume} continues a run in later sessions.
 */
public final class Compare {

  static final String DEFAULT_DATA = "peft-bench/data/spam-assassin.jsonl";
  /** Multiples of a method's recommended learning rate that {@code --lr-sweep} tries. */
  static final double[] SWEEP = {0.5, 1, 2};

  /** What the three presets set; an option given on the command line wins. */
  enum Preset {
    /** A try-out in about two minutes: three methods, 160 training rows, one epoch. */
    QUICK("lora,ia3,bottleneck", 160, 64, 128, 1, 1, false),
    /** A fair single-seed run of every method: the same 320 training rows, two epochs, the better epoch kept. */
    DEFAULT("all", 320, 128, 0, 2, 1, false),
    /** The protocol: every training row, up to 5 epochs, learning-rate sweep, 3 seeds. */
    FULL("all", 0, 0, 0, 5, 3, true);

    final String methods;
    final int trainRows;
    final int validationRows;
    final int testRows;
    final int epochs;
    final int seeds;
    final boolean sweep;

    Preset(String methods, int trainRows, int validationRows, int testRows, int epochs, int seeds, boolean sweep) {
      this.methods = methods;
      this.trainRows = trainRows;
      this.validationRows = validationRows;
      this.testRows = testRows;
      this.epochs = epochs;
      this.seeds = seeds;
      this.sweep = sweep;
    }
  }

  /**
   * What one run does, resolved from the command line and its preset.
   *
   * @param trainRows      training rows used (a stratified sample); 0 for all; the same for validation and test
   * @param workers        data-parallel workers per trial (1: off)
   * @param positiveLabel  the label whose F1 is reported; null for the training split's minority class
   * @param resume         whether to continue the run in {@code out}: its finished trials are kept, the others run
   * @param fork           whether each trial runs in its own JVM (tests run them in this one)
   */
  public record Options(Preset preset, List<String> methods, int trainRows, int validationRows, int testRows,
      int epochs, int patience, int seeds, boolean sweep, int batch, int seqLength, Path data, String textColumn,
      String labelColumn, String splitColumn, Path model, Path out, boolean overwrite, boolean resume, long seed,
      int workers, String positiveLabel, boolean allowSingleClass, boolean fork) {

    public Options {
      checkArgument(trainRows >= 0 && validationRows >= 0 && testRows >= 0, "row limits must be >= 0 (0: all), got "
          + "%s, %s, %s", trainRows, validationRows, testRows);
      checkArgument(epochs > 0, "--epochs must be > 0, got %s", epochs);
      checkArgument(patience > 0, "--patience must be > 0, got %s", patience);
      checkArgument(seeds > 0, "--seeds must be > 0, got %s", seeds);
      checkArgument(batch > 0, "--batch must be > 0, got %s", batch);
      checkArgument(seqLength >= 8, "--seq must be >= 8, got %s", seqLength);
      checkArgument(workers > 0, "--workers must be > 0 or auto, got %s", workers);
      checkArgument(!(overwrite && resume), "--overwrite and --resume exclude each other");
      methods = List.copyOf(methods);
    }

    /** Parses a command line as {@code compare} does (picocli); errors as {@link IllegalArgumentException}. */
    public static Options parse(String... args) {
      Command command = new Command();
      try {
        new CommandLine(command).parseArgs(args);
      } catch (CommandLine.ParameterException e) {
        throw new IllegalArgumentException(e.getMessage(), e);
      }
      return command.options();
    }
  }

  /** The command line; {@link #options} resolves the preset. */
  @CommandLine.Command(name = "compare", mixinStandardHelpOptions = true, sortOptions = false,
      description = "Fine-tune one model with each PEFT method on one text-classification task and compare them on "
          + "a held-out test split.")
  static final class Command implements Callable<Integer> {
    @Option(names = "--quick", description = "a ~2-minute try-out: methods " + "lora,ia3,bottleneck, 160 training "
        + "rows, 1 epoch, 64 validation and 128 test rows")
    boolean quick;
    @Option(names = "--full", description = "the protocol: every training row, up to 5 epochs with early stopping, "
        + "a learning-rate sweep (0.5, 1, 2 × the method's rate) on validation, 3 seeds of the chosen rate")
    boolean full;
    @Option(names = "--methods", split = ",", paramLabel = "NAME", description = "methods to run, in order "
        + "(default: all): ${COMPLETION-CANDIDATES}", completionCandidates = MethodNames.class)
    List<String> methods;
    @Option(names = "--train-rows", paramLabel = "N", description = "training rows used, a stratified random sample; "
        + "0 = all (default 320; --quick 160; --full all)")
    Integer trainRows;
    @Option(names = "--validation", paramLabel = "N", description = "validation rows used, stratified; 0 = all "
        + "(default 128; --quick 64; --full all)")
    Integer validationRows;
    @Option(names = "--test", paramLabel = "N", description = "test rows used, stratified; 0 = all (default all; "
        + "--quick 128)")
    Integer testRows;
    @Option(names = "--epochs", paramLabel = "N", description = "most epochs per trial (default 2; --quick 1; "
        + "--full 5)")
    Integer epochs;
    @Option(names = "--patience", paramLabel = "N", defaultValue = "1", description = "stop after N epochs without a "
        + "lower validation loss; the best epoch's weights are kept (default ${DEFAULT-VALUE})")
    int patience;
    @Option(names = "--seeds", paramLabel = "N", description = "seeds of each method's chosen setting (default 1; "
        + "--full 3)")
    Integer seeds;
    @Option(names = "--lr-sweep", negatable = true, description = "try 0.5, 1 and 2 × each method's learning rate, "
        + "keep the lowest validation loss (default off; --full on)")
    Boolean sweep;
    @Option(names = "--batch", paramLabel = "N", defaultValue = "8", description = "training batch size (default "
        + "${DEFAULT-VALUE})")
    int batch;
    @Option(names = "--seq", paramLabel = "N", defaultValue = "64", description = "tokens per text, special tokens "
        + "included; at most the model's positions (default ${DEFAULT-VALUE})")
    int seq;
    @Option(names = "--data", paramLabel = "FILE", description = "a UTF-8 .jsonl or .csv file with a text and a label "
        + "column, optionally a split column (train / validation / test); default " + DEFAULT_DATA)
    Path data;
    @Option(names = "--text-column", paramLabel = "C", defaultValue = "text", description = "(default "
        + "${DEFAULT-VALUE})")
    String textColumn;
    @Option(names = "--label-column", paramLabel = "C", defaultValue = "label", description = "(default "
        + "${DEFAULT-VALUE})")
    String labelColumn;
    @Option(names = "--split-column", paramLabel = "C", defaultValue = "split", description = "(default "
        + "${DEFAULT-VALUE})")
    String splitColumn;
    @Mixin
    ModelOptions model = new ModelOptions();
    @Option(names = "--out", paramLabel = "DIR", defaultValue = "compare-results", description = "output directory; "
        + "refused if it is not empty, unless --resume or --overwrite (default ${DEFAULT-VALUE})")
    Path out;
    @Option(names = "--overwrite", description = "delete an earlier run's results in --out first (never other "
        + "files)")
    boolean overwrite;
    @Option(names = "--resume", description = "continue the run in --out (same options; --methods may differ): its "
        + "finished trials are kept, the others run, the results cover every method done; an empty or missing --out "
        + "starts a new run")
    boolean resume;
    @Option(names = "--seed", paramLabel = "N", defaultValue = "7", description = "seed of the splits' samples and of "
        + "the first trial (data order, head, adapter initialisation, dropout); seeds N, N+1, ... (default "
        + "${DEFAULT-VALUE})")
    long seed;
    @Option(names = "--workers", paramLabel = "N|auto", defaultValue = "auto", description = "data-parallel training "
        + "over N cores (DataParallel); auto = every core (default ${DEFAULT-VALUE})")
    String workers;
    @Option(names = "--positive-label", paramLabel = "LABEL", description = "the label whose F1 is reported "
        + "(default: the training split's minority class)")
    String positiveLabel;
    @Option(names = "--allow-single-class", description = "warn instead of refusing a validation or test split with "
        + "one label")
    boolean allowSingleClass;
    @Option(names = "--in-process", hidden = true, description = "run the trials in this JVM (tests)")
    boolean inProcess;

    Options options() {
      checkArgument(!(quick && full), "--quick and --full exclude each other");
      Preset preset = quick ? Preset.QUICK : full ? Preset.FULL : Preset.DEFAULT;
      List<String> names = methods != null ? methods.stream().map(String::strip).toList()
          : preset.methods.equals("all") ? CompareMethods.all().stream().map(Method::name).toList()
              : List.of(preset.methods.split(","));
      int cores = Runtime.getRuntime().availableProcessors();
      int workerCount;
      if (workers.equals("auto")) {
        workerCount = cores;
      } else {
        try {
          workerCount = Integer.parseInt(workers);
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException("--workers needs an integer or auto, got '" + workers + "'", e);
        }
      }
      return new Options(preset, names, or(trainRows, preset.trainRows), or(validationRows, preset.validationRows),
          or(testRows, preset.testRows), or(epochs, preset.epochs), patience, or(seeds, preset.seeds),
          sweep != null ? sweep : preset.sweep, batch, seq, data != null ? data : defaultData(), textColumn,
          labelColumn, splitColumn, model.model, out, overwrite, resume, seed, workerCount, positiveLabel,
          allowSingleClass, !inProcess);
    }

    private static int or(Integer given, int preset) {
      return given != null ? given : preset;
    }

    @Override
    public Integer call() throws IOException {
      Options options;
      try {
        options = options();
      } catch (IllegalArgumentException e) {
        System.err.println("compare: " + e.getMessage());
        return 2;
      }
      Runs runs;
      try {
        runs = run(options, System.out);
      } catch (IllegalArgumentException e) {
        System.err.println("compare: " + e.getMessage());
        return 2;
      }
      System.out.println();
      System.out.print(CompareReport.table(runs.ranked(), runs.positiveLabel(), runs.aucName()));
      System.out.println("\nresults: " + options.out().toAbsolutePath());
      return 0;
    }
  }

  /** The method names, for {@code --help}. */
  static final class MethodNames implements Iterable<String> {
    @Override
    public java.util.Iterator<String> iterator() {
      return CompareMethods.all().stream().map(Method::name).iterator();
    }
  }

  /**
   * The rows of a run.
   *
   * @param results       one row per method, in run order (with {@code --resume}: where a session first asked for
   *                      it)
   * @param baseline      the majority-class row
   * @param runs          per method, its saved adapter's test probabilities {@code [n][labels]}
   * @param testLabels    the test split's labels
   * @param positiveLabel the label whose F1 is reported
   * @param aucName       what the ROC AUC is ({@link Metrics#aucName}: binary, or macro one-vs-rest)
   */
  public record Runs(List<CompareResult> results, CompareResult baseline, Map<String, double[][]> runs,
      int[] testLabels, String positiveLabel, String aucName) {

    /** Every row with the baseline, best test macro-F1 first. */
    public List<CompareResult> ranked() {
      return Stream.concat(results.stream(), Stream.of(baseline))
          .sorted(Comparator.comparingDouble((CompareResult r) -> -r.macroF1().mean())).toList();
    }
  }

  private static final int CHART_WIDTH = 960;
  private static final int CHART_HEIGHT = 600;

  private Compare() {}

  public static void main(String[] args) {
    System.exit(new CommandLine(new Command()).execute(args));
  }

  /**
   * Validates every input, then runs every trial of {@code options} and writes the results and the adapters to
   * {@code options.out()}. Nothing is created before the inputs are validated. Progress goes to {@code log}.
   *
   * @throws IllegalArgumentException naming a bad input (data file and line, model, sequence length, out directory)
   */
  public static Runs run(Options options, PrintStream log) throws IOException {
    List<Method> named = CompareMethods.named(options.methods());
    ModelOptions.checkSequenceLength(options.model(), options.seqLength());
    Map<String, String> skipped = notOnThisModel(options.model(), named);
    List<Method> methods = named.stream().filter(m -> !skipped.containsKey(m.name())).toList();
    checkArgument(!methods.isEmpty(), "none of the methods %s runs on the decoder %s: %s", options.methods(),
        options.model(), skipped);
    TextClassificationData file = TextClassificationData.read(options.data(),
        new TextClassificationData.Columns(options.textColumn(), options.labelColumn(), options.splitColumn()));
    CompareData prepared = CompareData.of(file, options.data(), new CompareData.Limits(options.trainRows(),
        options.validationRows(), options.testRows()), options.seed(), options.allowSingleClass(), log);
    CompareTrial.Data data = prepared.data();
    List<String> labelNames = data.labelNames();
    int[] trainLabels = data.train().stream().mapToInt(Example::label).toArray();
    int positive = positiveLabel(options.positiveLabel(), labelNames, trainLabels);
    Map<String, String> runOptions = RunFile.options(options);
    boolean resuming = prepareOut(options.out(), options.overwrite(), options.resume());
    RunFile runFile = resuming ? RunFile.read(options.out()).resumedWith(runOptions, options.methods(),
        options.out()) : RunFile.start(runOptions, options.methods());
    runFile.write(options.out());

    Path work = Files.createDirectories(options.out().resolve(TRIALS));
    Path dataFile = work.resolve("data.json");
    data.write(dataFile); // the same rows in every session: the sampling depends only on the run's options
    int stepsPerEpoch = (data.train().size() + options.batch() - 1) / options.batch();
    Map<String, Object> settings = settings(options, prepared, positive, stepsPerEpoch);
    if (!skipped.isEmpty()) {
      settings.put("not run on this decoder", skipped.entrySet().stream().map(e -> e.getKey() + " (" + e.getValue()
          + ")").collect(java.util.stream.Collectors.joining("; ")));
    }
    int trialsPerMethod = (options.sweep() ? SWEEP.length : 1) + options.seeds() - 1;
    int totalTrials = methods.size() * trialsPerMethod;
    log.printf(Locale.ROOT, "compare: %d methods on %s; %d train / %d validation / %d test rows; up to %d epochs × "
            + "%d steps (batch %d, seq %d); %s; %d seed(s); %d trials; %d data-parallel worker(s) per trial of %d "
            + "core(s), OMP_NUM_THREADS=%s; positive label '%s'%n", methods.size(), ModelOptions.name(options.model()),
        data.train().size(), data.validation().size(), data.test().size(), options.epochs(), stepsPerEpoch,
        options.batch(), options.seqLength(), options.sweep() ? "learning-rate sweep" : "recommended learning rates",
        options.seeds(), totalTrials, options.workers(), Runtime.getRuntime().availableProcessors(),
        System.getenv().getOrDefault("OMP_NUM_THREADS", "unset"), labelNames.get(positive));
    if (resuming) {
      log.printf("compare: --resume: session %d of the run in %s; its finished trials are kept%n",
          runFile.sessions().size(), options.out());
    }
    prepared.notes().forEach(n -> log.println("  " + n));
    skipped.forEach((m, why) -> log.println("  not run on this decoder: " + m + " (" + why + ")"));

    String aucName = Metrics.aucName(labelNames.size());
    int[] testLabels = data.test().stream().mapToInt(Example::label).toArray();
    int[] validationLabels = data.validation().stream().mapToInt(Example::label).toArray();
    CompareResult baseline = CompareResult.baseline(labelNames, trainLabels, validationLabels, testLabels, positive);
    List<CompareResult> results = new ArrayList<>();
    Map<String, double[][]> probabilities = new LinkedHashMap<>();
    List<TrialRecord> used = new ArrayList<>();
    List<String> incomplete = new ArrayList<>();
    Trials trials = new Trials(options, work, dataFile, runFile.sessions().size(), data, totalTrials, log);
    // methods an earlier session ran (or began) beyond this session's --methods are reported too, if complete
    List<Method> earlier = storedMethods(work, methods);
    for (Method method : Stream.concat(methods.stream(), earlier.stream()).toList()) {
      MethodTrials m = trials.of(method, methods.contains(method));
      if (m == null) {
        incomplete.add(method.name());
        continue;
      }
      String adapterDir = keepAdapter(options, work, method, m, labelNames);
      results.add(CompareResult.of(method, m.sweep().stream().map(r -> r.spec().learningRate()).toList(),
          m.seeds().stream().map(TrialRecord::result).toList(), validationLabels, testLabels, positive,
          adapterDir));
      probabilities.put(method.name(), m.seeds().get(0).result().testProbabilities());
      used.addAll(m.sweep());
      used.addAll(m.seeds().subList(1, m.seeds().size()));
      // rows in the run's order (each method where a session first asked for it), not this session's: the
      // ranking's ties then fall the same way however the run was split into sessions
      results.sort(Comparator.comparingInt(r -> runOrder(runFile, r.method())));
      // partial results survive a crash
      write(options.out(), withRunNotes(settings, options, runFile, results, incomplete, used),
          new Runs(results, baseline, Map.of(), testLabels, labelNames.get(positive), aucName));
    }
    write(options.out(), withRunNotes(settings, options, runFile, results, incomplete, used), new Runs(results,
        baseline, Map.of(), testLabels, labelNames.get(positive), aucName));
    removeWorkingFiles(work);
    return new Runs(results, baseline, probabilities, testLabels, labelNames.get(positive), aucName);
  }

  /** Where the trial records are kept, under {@code --out}. */
  static final String TRIALS = "trials";
  /** In an adapter directory: the name of the trial it comes from. */
  static final String TRIAL_FILE = "compare-trial.txt";

  /**
   * A method's trials: {@code sweep} the learning rates tried at the first seed (one without a sweep), {@code seeds}
   * the chosen one's, the chosen trial first.
   */
  record MethodTrials(List<TrialRecord> sweep, List<TrialRecord> seeds) {}

  /** The trials of a run, each one read from its record if an earlier session finished it, or run and recorded. */
  private static final class Trials {
    private final Options options;
    private final Path work;
    private final Path dataFile;
    private final int session;
    private final CompareTrial.Data data;
    private final int total;
    private final PrintStream log;
    private final long started = System.nanoTime();
    private int done;
    private int ran;

    Trials(Options options, Path work, Path dataFile, int session, CompareTrial.Data data, int total,
        PrintStream log) {
      this.options = options;
      this.work = work;
      this.dataFile = dataFile;
      this.session = session;
      this.data = data;
      this.total = total;
      this.log = log;
    }

    /**
     * The trials of {@code method}; with {@code mayRun} false (a method of an earlier session only) null if one is
     * not recorded. The learning rate is chosen again from the recorded sweep, as in one go; a chosen trial whose
     * adapter is gone (neither in {@code trials/} nor in {@code adapters/<method>}) runs again.
     */
    MethodTrials of(Method method, boolean mayRun) throws IOException {
      double[] rates = options.sweep() ? Arrays.stream(SWEEP).map(f -> f * method.learningRate()).toArray()
          : new double[] {method.learningRate()};
      List<TrialRecord> sweep = new ArrayList<>();
      for (double lr : rates) {
        TrialRecord r = trial(method, lr, options.seed(), mayRun);
        if (r == null) {
          return null;
        }
        sweep.add(r);
      }
      TrialRecord chosen = sweep.stream().min(Comparator.comparingDouble(r -> r.result().validationLoss()))
          .orElseThrow();
      if (!adapterKept(method, chosen)) {
        if (!mayRun) {
          return null;
        }
        log.printf("  the adapter of %s is missing; running it again%n", chosen.label());
        Files.delete(work.resolve(name(chosen) + ".json"));
        done--; // the trial counted as recorded is run instead
        TrialRecord again = trial(method, chosen.spec().learningRate(), chosen.spec().seed(), true);
        sweep.set(sweep.indexOf(chosen), again);
        chosen = again;
      }
      List<TrialRecord> seeds = new ArrayList<>(List.of(chosen));
      for (int s = 1; s < options.seeds(); s++) {
        TrialRecord r = trial(method, chosen.spec().learningRate(), options.seed() + s, mayRun);
        if (r == null) {
          return null;
        }
        seeds.add(r);
      }
      return new MethodTrials(sweep, seeds);
    }

    private boolean adapterKept(Method method, TrialRecord chosen) throws IOException {
      Path kept = options.out().resolve("adapters").resolve(method.name()).resolve(TRIAL_FILE);
      return Files.isDirectory(work.resolve(name(chosen))) || Files.isRegularFile(kept)
          && Files.readString(kept, StandardCharsets.UTF_8).strip().equals(name(chosen));
    }

    /** The recorded trial, or (if {@code mayRun}) the trial run now and recorded; null if neither. */
    private TrialRecord trial(Method method, double lr, long seed, boolean mayRun) throws IOException {
      String name = trialName(method, lr, seed);
      CompareTrial.Spec spec = new CompareTrial.Spec(method.name(), lr, seed, options.epochs(), options.patience(),
          options.batch(), options.seqLength(), options.model(), options.workers(), dataFile,
          work.resolve(name + "-result.json"), work.resolve(name));
      Path file = work.resolve(name + ".json");
      Optional<TrialRecord> stored = TrialRecord.read(file, spec, data.validation().size(), data.test().size(),
          data.labelNames().size(), log);
      if (stored.isPresent() || !mayRun) {
        if (mayRun) {
          log.println(progress(stored.get(), false));
        }
        return stored.orElse(null);
      }
      // a run killed during this trial may have left its adapter, spec, child result or log
      deleteTree(spec.adapterDir());
      for (String leftover : List.of("-result.json", "-spec.json", ".log", ".json.tmp")) {
        Files.deleteIfExists(work.resolve(name + leftover));
      }
      double loadStart = LoadAverage.oneMinute();
      long start = System.nanoTime();
      CompareTrial.Result result = options.fork()
          ? TrialProcess.run(spec, work.resolve(name + "-spec.json"), work.resolve(name + ".log"))
          : CompareTrial.run(spec, CompareTrial.Data.read(dataFile), log);
      TrialRecord record = new TrialRecord(spec, result, (System.nanoTime() - start) / 1e9, loadStart,
          LoadAverage.oneMinute(), Runtime.getRuntime().availableProcessors(), session);
      record.write(file);
      for (String working : List.of("-result.json", "-spec.json", ".log")) { // the record holds what they said
        Files.deleteIfExists(work.resolve(name + working));
      }
      ran++;
      log.println(progress(record, true));
      return record;
    }

    private String progress(TrialRecord record, boolean runNow) {
      done++;
      CompareTrial.Result r = record.result();
      double elapsed = (System.nanoTime() - started) / 1e9;
      String eta = ran == 0 ? "unknown" : minutes(elapsed / ran * Math.max(0, total - done));
      return String.format(Locale.ROOT, "[%d/%d] %s: %s%d epoch(s), best %d, validation loss %.4f, %.0f s "
              + "training; elapsed %s, ETA %s", done, total, record.label(), runNow ? ""
              : "recorded by session " + record.session() + ", ", r.epochsRun(), r.bestEpoch(), r.validationLoss(),
          r.trainSeconds(), minutes(elapsed), eta);
    }
  }

  /** Where {@code method} comes in the run: its place among the sessions' methods, first asked for first. */
  private static int runOrder(RunFile runFile, String method) {
    List<String> order = runFile.sessions().stream().flatMap(s -> s.methods().stream()).distinct().toList();
    int i = order.indexOf(method);
    return i >= 0 ? i : order.size() + CompareMethods.all().stream().map(Method::name).toList().indexOf(method);
  }

  /** The methods with a trial record in {@code work} other than {@code running}, in {@link CompareMethods}' order. */
  private static List<Method> storedMethods(Path work, List<Method> running) throws IOException {
    List<String> names = new ArrayList<>();
    try (Stream<Path> files = Files.list(work)) {
      for (Path f : files.filter(Compare::isTrialRecord).toList()) {
        TrialRecord.method(f).ifPresent(names::add);
      }
    }
    return CompareMethods.all().stream().filter(m -> names.contains(m.name()) && !running.contains(m)).toList();
  }

  private static boolean isTrialRecord(Path file) {
    String n = file.getFileName().toString();
    return n.endsWith(".json") && !n.endsWith("-spec.json") && !n.endsWith("-result.json") && !n.equals("data.json");
  }

  /**
   * Moves the chosen trial's adapter (if this session ran it) to {@code adapters/<method>}, replacing one kept
   * earlier, writes its task file for {@link Predict}, and deletes the method's other trials' adapters; returns the
   * directory relative to {@code --out}. Each step can be repeated, so a run killed between them resumes.
   */
  private static String keepAdapter(Options options, Path work, Method method, MethodTrials m,
      List<String> labelNames) throws IOException {
    String adapterDir = "adapters/" + method.name();
    Path adapter = options.out().resolve(adapterDir);
    TrialRecord chosen = m.seeds().get(0);
    Path fresh = work.resolve(name(chosen));
    if (Files.isDirectory(fresh)) {
      Files.writeString(fresh.resolve(TRIAL_FILE), name(chosen), StandardCharsets.UTF_8);
      deleteTree(adapter);
      Files.createDirectories(adapter.getParent());
      Files.move(fresh, adapter, StandardCopyOption.ATOMIC_MOVE);
    }
    Predict.writeLabels(adapter, method.name(), labelNames, options.seqLength(), options.model());
    for (TrialRecord r : Stream.concat(m.sweep().stream(), m.seeds().stream()).toList()) {
      if (r != chosen) {
        deleteTree(work.resolve(name(r)));
      }
    }
    return adapterDir;
  }

  /** The data file, specs, child results and logs of finished trials: only the records stay in {@code trials/}. */
  private static void removeWorkingFiles(Path work) throws IOException {
    try (Stream<Path> files = Files.list(work)) {
      for (Path f : files.filter(f -> Files.isRegularFile(f) && !isTrialRecord(f)).toList()) {
        Files.delete(f);
      }
    }
  }

  private static String name(TrialRecord r) {
    return trialName(CompareMethods.named(List.of(r.spec().method())).get(0), r.spec().learningRate(),
        r.spec().seed());
  }

  /**
   * {@code settings} and what the run's sessions did: the methods reported against the preset's list, the sessions,
   * and the trials whose times are not comparable because the machine was busier than its cores + 1.
   */
  static Map<String, Object> withRunNotes(Map<String, Object> settings, Options options, RunFile runFile,
      List<CompareResult> results, List<String> incomplete, List<TrialRecord> trials) {
    Map<String, Object> s = new LinkedHashMap<>(settings);
    List<String> presetMethods = options.preset().methods.equals("all")
        ? CompareMethods.all().stream().map(Method::name).toList() : List.of(options.preset().methods.split(","));
    List<String> reported = results.stream().map(CompareResult::method).toList();
    List<String> missing = presetMethods.stream().filter(n -> !reported.contains(n)).toList();
    s.put("methods", String.format(Locale.ROOT, "%d reported; %s", reported.size(), missing.isEmpty()
        ? "every one of the " + options.preset().name().toLowerCase(Locale.ROOT) + " preset's " + presetMethods.size()
        : "missing " + missing.size() + " of the " + options.preset().name().toLowerCase(Locale.ROOT) + " preset's "
            + presetMethods.size() + ": " + String.join(", ", missing))
        + (incomplete.isEmpty() ? "" : "; trials recorded but not all done: " + String.join(", ", incomplete)));
    s.put("sessions", runFile.describeSessions());
    List<TrialRecord> loaded = trials.stream().filter(TrialRecord::loaded).toList();
    long unknown = trials.stream().filter(t -> Double.isNaN(t.loadStart()) || Double.isNaN(t.loadEnd())).count();
    DoubleSummaryStatistics wall = trials.stream().mapToDouble(TrialRecord::wallSeconds).summaryStatistics();
    s.put("trials", String.format(Locale.ROOT, "%d, each in trials/ with its wall time (%.0f–%.0f s here), peak RSS "
            + "and the 1-minute load average at its start and end; %s%s", trials.size(), wall.getMin(),
        wall.getMax(), loaded.isEmpty() ? "none ran with a load average above the machine's cores + 1"
            : loaded.size() + " ran while the load average was above the machine's cores + 1 (at start or end), so "
                + "their times are not comparable with a quiet machine's: " + loaded.stream().map(t -> String.format(Locale.ROOT,
                "%s (load %.2f → %.2f, %d cores)", t.label(), t.loadStart(), t.loadEnd(), t.cores()))
                .collect(Collectors.joining(", ")), unknown == 0 ? "" : "; load average unknown for " + unknown));
    return s;
  }

  /** The methods of {@code methods} that cannot run on {@code model} (none but on a decoder), with why. */
  private static Map<String, String> notOnThisModel(Path model, List<Method> methods) throws IOException {
    Map<String, String> out = new LinkedHashMap<>();
    if (ModelOptions.family(model) == ModelFamily.DECODER) {
      LlamaConfig config = LlamaConfig.read(model.resolve("config.json"));
      for (Method m : methods) {
        String why = CompareMethods.notOnDecoder(m, config);
        if (why != null) {
          out.put(m.name(), why);
        }
      }
    }
    return out;
  }

  /** The label index of {@code --positive-label}, or the training split's minority class (ties: the last). */
  static int positiveLabel(String given, List<String> labelNames, int[] trainLabels) {
    if (given != null) {
      int i = labelNames.indexOf(given);
      checkArgument(i >= 0, "--positive-label '%s' is not a label of the data; labels: %s", given, labelNames);
      return i;
    }
    int[] counts = new int[labelNames.size()];
    Arrays.stream(trainLabels).forEach(y -> counts[y]++);
    int minority = counts.length - 1;
    for (int c = counts.length - 1; c >= 0; c--) {
      if (counts[c] < counts[minority]) {
        minority = c;
      }
    }
    return minority;
  }

  /** What compare writes into {@code --out}: all that {@code --overwrite} may delete. */
  static final List<String> OUTPUTS = List.of("adapters", "results.csv", "results.json", "results.md", "results.png",
      RunFile.NAME, TRIALS);

  /**
   * Readies {@code out}: refuses a non-empty one unless {@code resume} (which keeps it, if it holds a run) or
   * {@code overwrite} (which empties it first); a directory holding anything compare does not write is never emptied
   * (an {@code --out .} would otherwise delete the working directory). Returns whether {@code out} holds a run to
   * resume; nothing changes when that is so.
   */
  static boolean prepareOut(Path out, boolean overwrite, boolean resume) throws IOException {
    if (Files.isDirectory(out)) {
      List<String> held;
      try (Stream<Path> entries = Files.list(out)) {
        held = entries.map(p -> p.getFileName().toString()).sorted().toList();
      }
      if (!held.isEmpty()) {
        if (resume) {
          checkArgument(held.contains(RunFile.NAME), "--resume: --out %s holds %s but no %s, so it is not a run "
              + "that can be resumed; --overwrite replaces it, or choose another directory", out, held.size() > 6
              ? held.subList(0, 6) + " …" : held, RunFile.NAME);
          return true;
        }
        checkArgument(overwrite, "--out %s already holds %s; pass --resume to continue that run, --overwrite to "
            + "replace it, or choose another directory", out, held.size() > 6 ? held.subList(0, 6) + " …" : held);
        List<String> foreign = held.stream().filter(n -> !OUTPUTS.contains(n)).toList();
        checkArgument(foreign.isEmpty(), "--out %s holds %s, which compare does not write; --overwrite replaces only "
            + "compare's own %s: choose another directory", out, foreign.size() > 6 ? foreign.subList(0, 6) + " …"
            : foreign, OUTPUTS);
        for (String name : held) {
          deleteTree(out.resolve(name));
        }
      }
    } else {
      checkArgument(!Files.exists(out), "--out %s is a file, not a directory", out);
    }
    Files.createDirectories(out);
    return false;
  }

  private static void deleteTree(Path root) throws IOException {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  private static String trialName(Method method, double lr, long seed) {
    return String.format(Locale.ROOT, "%s-lr%s-seed%d", method.name(), CompareReport.sci(lr), seed);
  }

  private static String minutes(double seconds) {
    return String.format(Locale.ROOT, "%d:%02d", (long) seconds / 60, (long) seconds % 60);
  }

  private static Map<String, Object> settings(Options options, CompareData prepared, int positive,
      int stepsPerEpoch) throws IOException {
    CompareTrial.Data data = prepared.data();
    Map<String, Object> s = new LinkedHashMap<>();
    s.put("preset", options.preset().name().toLowerCase(Locale.ROOT));
    s.put("model", ModelOptions.name(options.model()));
    s.put("data", options.data().toString());
    s.put("labels", String.join(", ", data.labelNames()));
    s.put("positive label", data.labelNames().get(positive) + (options.positiveLabel() == null
        ? " (the training split's minority class)" : " (--positive-label)"));
    s.put("train rows used", data.train().size() + " " + CompareData.counts(data.labelNames(), data.train()));
    s.put("validation rows used", data.validation().size() + " "
        + CompareData.counts(data.labelNames(), data.validation()));
    s.put("test rows used", data.test().size() + " " + CompareData.counts(data.labelNames(), data.test()));
    s.put("splits", prepared.notes().isEmpty() ? "the file's train / validation / test rows"
        : String.join("; ", prepared.notes()));
    s.put("sequence length", String.format(Locale.ROOT, "%d tokens, special tokens included; %.0f%% of the training "
            + "texts fill it (cut or exactly that long); the model has %d positions", options.seqLength(),
        100 * filledShare(options.model(), options.seqLength(), data.train()),
        ModelOptions.maxPositions(options.model())));
    s.put("protocol", String.format(Locale.ROOT, "up to %d epoch(s) of %d steps (batch %d), shuffled per epoch; "
            + "validation loss after each epoch, stop after %d epoch(s) without improvement, best epoch kept; %s; "
            + "%d seed(s) of the chosen setting; test scored once at the end, never used to choose",
        options.epochs(), stepsPerEpoch, options.batch(), options.patience(), options.sweep()
            ? "learning rate chosen on validation loss from 0.5, 1, 2 × the method's recommended rate"
            : "each method's recommended learning rate", options.seeds()));
    List<Long> seeds = new ArrayList<>();
    for (int i = 0; i < options.seeds(); i++) {
      seeds.add(options.seed() + i);
    }
    s.put("seeds", seeds.toString());
    if (ModelOptions.family(options.model()) == ModelFamily.DECODER) {
      s.put("decoder head", "a new score linear (no bias, normal(0, 0.02) from the trial's seed, as transformers "
          + "initialises it) read at each row's last token that is not the padding token, as "
          + "…ForSequenceClassification");
      s.put("padding", "on the right with token " + ModelOptions.decoderPad(options.model()).source());
      s.put("targets", "BERT's query, key, value, output.dense of the method descriptions are the decoder's "
          + String.join(", ", ModelFamily.DECODER.modules("query", "key", "value", "output.dense")));
    }
    s.put("optimizer", "AdamW, weight decay 0.01, 10% linear warm-up then linear decay, clip 1.0");
    s.put("threads", "OMP_NUM_THREADS=" + System.getenv().getOrDefault("OMP_NUM_THREADS", "unset") + ", "
        + options.workers() + " data-parallel worker(s) per trial, " + Runtime.getRuntime().availableProcessors()
        + " core(s); each trial in its own JVM: " + options.fork());
    s.put("ranking", "test macro-F1 (mean over seeds)");
    s.put("ROC AUC", Metrics.aucName(data.labelNames().size()) + (data.labelNames().size() == 2
        ? " of the positive label's probability" : ""));
    return s;
  }

  /** The share of {@code rows} whose tokens fill all {@code seq} positions: cut there, or exactly that long. */
  static double filledShare(Path model, int seq, List<Example> rows) throws IOException {
    long filled = 0;
    try (Tokenizer tokenizer = tokenizer(model, seq)) {
      for (int i = 0; i < rows.size(); i += 64) {
        List<String> texts = rows.subList(i, Math.min(rows.size(), i + 64)).stream().map(Example::text).toList();
        INDArray realTokens = tokenizer.encode(texts).attentionMask().sum(1); // [rows]
        for (long t : realTokens.toLongVector()) {
          filled += t >= seq ? 1 : 0;
        }
      }
    }
    return (double) filled / rows.size();
  }

  /** Writes results.csv, results.json, results.md and results.png into {@code out}. */
  static void write(Path out, Map<String, Object> settings, Runs runs) throws IOException {
    List<CompareResult> ranked = runs.ranked();
    Files.writeString(out.resolve("results.csv"), CompareReport.csv(ranked), StandardCharsets.UTF_8);
    Files.writeString(out.resolve("results.json"), CompareReport.json(settings, ranked), StandardCharsets.UTF_8);
    Files.writeString(out.resolve("results.md"), CompareReport.markdown(settings, ranked, runs.positiveLabel(),
        runs.aucName()), StandardCharsets.UTF_8);
    CompareChart.write(runs.results(), runs.baseline(), out.resolve("results.png"), CHART_WIDTH, CHART_HEIGHT);
  }

  /**
   * A fresh encoder with a classification head, or a decoder with its {@value Heads#SCORE} head; the same weights and
   * head initialisation for the same seed.
   */
  static SameDiff classifier(Path model, int seqLength, int numLabels, long seed) throws IOException {
    if (model == null) {
      PretrainedModels.Encoder encoder = PretrainedModels.miniLm(seqLength);
      encoder.tokenizer().close();
      return Heads.sequenceClassification(encoder.sameDiff(), encoder.config().hiddenSize(), numLabels,
          Heads.Pooling.MEAN, seed);
    }
    if (ModelOptions.family(model) == ModelFamily.DECODER) {
      LlamaConfig config = LlamaConfig.read(model.resolve("config.json"));
      try (HfCheckpoint weights = HfCheckpoint.open(model)) {
        return Heads.llamaForSequenceClassification(config, weights, numLabels, ModelOptions.decoderPad(model).id(),
            seed);
      }
    }
    HfModels.Loaded loaded = HfModels.load(model);
    checkArgument(loaded.config() instanceof BertConfig, "%s: compare needs a BERT encoder, got %s", model,
        loaded.config().getClass().getSimpleName());
    return Heads.sequenceClassification(loaded.sameDiff(), ((BertConfig) loaded.config()).hiddenSize(), numLabels,
        Heads.Pooling.MEAN, seed);
  }

  static Tokenizer tokenizer(Path model, int seqLength) throws IOException {
    if (model == null) {
      return PretrainedModels.miniLm(seqLength).tokenizer();
    }
    Path json = model.resolve("tokenizer.json");
    checkArgument(Files.isRegularFile(json), "%s: no tokenizer.json", model);
    try (InputStream in = Files.newInputStream(json)) {
      return Tokenizer.read(in, seqLength);
    }
  }

  static List<Batch> batches(Tokenizer tokenizer, List<Example> examples, int size) {
    return batches(tokenizer, examples, size, null);
  }

  /** Labelled batches of {@code size} rows; {@code decoderPad}: as {@link #inputs}. */
  static List<Batch> batches(Tokenizer tokenizer, List<Example> examples, int size, Long decoderPad) {
    List<Batch> out = new ArrayList<>();
    for (int i = 0; i < examples.size(); i += size) {
      List<Example> part = examples.subList(i, Math.min(examples.size(), i + size));
      Tokenizer.Encoded encoded = tokenizer.encode(part.stream().map(Example::text).toList());
      Map<String, INDArray> inputs = new HashMap<>(inputs(encoded, decoderPad));
      inputs.put(Heads.LABELS, Nd4j.createFromArray(part.stream().mapToLong(Example::label).toArray()));
      out.add(new Batch(inputs, encoded.tokens()));
    }
    return out;
  }

  /**
   * The graph inputs of an encoded batch: BERT's, or with {@code decoderPad} a decoder's {@code input_ids} (every
   * padding position, attention mask 0, set to {@code decoderPad}: the score head finds the last real token by that
   * id, whatever id the tokenizer padded with) and {@code attention_mask}.
   */
  static Map<String, INDArray> inputs(Tokenizer.Encoded encoded, Long decoderPad) {
    if (decoderPad == null) {
      return encoded.bertInputs();
    }
    long[][] ids = encoded.inputIds().toLongMatrix();                                  // [b, s]
    long[][] mask = encoded.attentionMask().toLongMatrix();                            // [b, s]
    for (int r = 0; r < ids.length; r++) {
      for (int t = 0; t < ids[r].length; t++) {
        ids[r][t] = mask[r][t] == 0 ? decoderPad : ids[r][t];
      }
    }
    return Map.of(Llama.INPUT_IDS, Nd4j.createFromArray(ids), Llama.ATTENTION_MASK, encoded.attentionMask());
  }

  /** The pad id {@link #inputs} needs for {@code model}: a decoder's, null for an encoder. */
  static Long decoderPad(Path model) throws IOException {
    return ModelOptions.family(model) == ModelFamily.DECODER ? ModelOptions.decoderPad(model).id() : null;
  }

  /**
   * Class probabilities of every example, {@code [n][labels]}, in inference mode, through {@link PeftModel#output} (the
   * library's path: its array cache gives back what each batch used; {@code SameDiff.output} alone kept every padded
   * length's arrays and added hundreds of MiB to a trial's peak).
   */
  static double[][] probabilities(PeftModel model, List<Batch> batches) {
    List<double[]> rows = new ArrayList<>();
    for (Batch b : batches) {
      INDArray p = model.output(b.inputs(), Heads.PROBABILITIES).get(Heads.PROBABILITIES);  // [b, labels]
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
