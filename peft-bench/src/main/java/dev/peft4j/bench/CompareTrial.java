package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.TrainableParameterSet;
import dev.peft4j.bench.CompareMethods.Method;
import dev.peft4j.bench.TextClassificationData.Example;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Tokenizer;
import dev.peft4j.selective.LpFt;
import dev.peft4j.train.Batch;
import dev.peft4j.train.LearningRateSchedule;
import dev.peft4j.train.Trainer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.UnaryOperator;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One training run of {@link Compare}: one method at one learning rate and one seed, trained by epochs over the whole
 * training split with early stopping on validation loss, then evaluated on validation and test. {@link Compare} runs
 * each trial in its own JVM ({@link #main}: a spec file in, a result file out), so its time and peak memory are its
 * own.
 *
 * <pre>
 *   epoch e: the training rows shuffled with seed·1000003 + e, cut into batches; steps = epochs · ⌈train / batch⌉
 *   after each epoch: validation loss = mean −log p[y]; the best epoch's trainable weights are kept; training stops
 *   once `patience` epochs in a row did not improve on the best, and the best weights are restored
 * </pre>
 * AdamW with weight decay 0.01, linear warm-up over the first tenth of the steps then linear decay to the planned
 * last step (Hugging Face Trainer's default schedule), gradient clipping at 1.0, mean pooling for an encoder's head
 * (a decoder's reads the last non-padding token).
 * LP-FT probes the head for its fraction of the steps first (unevaluated), then validates after each epoch's worth of
 * fine-tuning steps.
 */
final class CompareTrial {

  /** What one trial runs; {@code adapterDir} receives the trained adapter. */
  record Spec(String method, double learningRate, long seed, int epochs, int patience, int batch, int seqLength,
      Path model, int workers, Path dataFile, Path resultFile, Path adapterDir) {

    JsonObject json() {
      JsonObject o = new JsonObject();
      o.addProperty("method", method);
      o.addProperty("learning_rate", learningRate);
      o.addProperty("seed", seed);
      o.addProperty("epochs", epochs);
      o.addProperty("patience", patience);
      o.addProperty("batch", batch);
      o.addProperty("seq", seqLength);
      o.addProperty("model", model == null ? null : model.toString());
      o.addProperty("workers", workers);
      o.addProperty("data", dataFile.toString());
      o.addProperty("result", resultFile.toString());
      o.addProperty("adapter", adapterDir.toString());
      return o;
    }

    static Spec fromJson(JsonObject o) {
      JsonElement model = o.get("model");
      return new Spec(o.get("method").getAsString(), o.get("learning_rate").getAsDouble(),
          o.get("seed").getAsLong(), o.get("epochs").getAsInt(), o.get("patience").getAsInt(),
          o.get("batch").getAsInt(), o.get("seq").getAsInt(), model == null || model.isJsonNull() ? null
              : Path.of(model.getAsString()), o.get("workers").getAsInt(), Path.of(o.get("data").getAsString()),
          Path.of(o.get("result").getAsString()), Path.of(o.get("adapter").getAsString()));
    }
  }

  /**
   * What one trial measured.
   *
   * @param trainableParams          trainable scalars, counted from the arrays
   * @param baseParams               all parameters of the base model with its head, before the method
   * @param epochsRun                epochs trained before stopping
   * @param bestEpoch                the epoch whose weights were kept
   * @param steps                    optimizer steps run
   * @param validationLoss           the kept epoch's validation loss
   * @param evalSeconds              wall time of the final test pass
   * @param validationProbabilities  {@code [validation rows][labels]} of the kept epoch
   * @param testProbabilities        {@code [test rows][labels]}
   */
  record Result(String method, double learningRate, long seed, long trainableParams, long baseParams,
      int epochsRun, int bestEpoch, int steps, double trainSeconds, double evalSeconds, double tokensPerSecond,
      long peakRssBytes, double validationLoss, double[][] validationProbabilities, double[][] testProbabilities) {}

  /** The data every trial of a run shares, as the parent chose it (so no child repeats the sampling). */
  record Data(List<String> labelNames, List<Example> train, List<Example> validation, List<Example> test) {

    void write(Path file) throws IOException {
      JsonObject o = new JsonObject();
      o.add("labels", GSON.toJsonTree(labelNames));
      o.add("train", rows(train));
      o.add("validation", rows(validation));
      o.add("test", rows(test));
      Files.writeString(file, GSON.toJson(o), StandardCharsets.UTF_8);
    }

    static Data read(Path file) throws IOException {
      JsonObject o = JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8)).getAsJsonObject();
      List<String> labels = new ArrayList<>();
      o.getAsJsonArray("labels").forEach(e -> labels.add(e.getAsString()));
      return new Data(labels, examples(o.getAsJsonArray("train")), examples(o.getAsJsonArray("validation")),
          examples(o.getAsJsonArray("test")));
    }

    private static JsonArray rows(List<Example> examples) {
      JsonArray a = new JsonArray();
      for (Example e : examples) {
        JsonObject r = new JsonObject();
        r.addProperty("text", e.text());
        r.addProperty("label", e.label());
        r.addProperty("line", e.line());
        a.add(r);
      }
      return a;
    }

    private static List<Example> examples(JsonArray a) {
      List<Example> out = new ArrayList<>();
      a.forEach(e -> {
        JsonObject r = e.getAsJsonObject();
        out.add(new Example(r.get("text").getAsString(), r.get("label").getAsInt(), null, r.get("line").getAsInt()));
      });
      return out;
    }
  }

  static final Gson GSON = new GsonBuilder().serializeSpecialFloatingPointValues().create();
  static final int EVAL_BATCH = 32;

  /** Thrown by the epoch-end evaluator to end training early: {@link Trainer} has no stop hook. */
  private static final class EarlyStop extends RuntimeException {
    EarlyStop() {
      super(null, null, false, false);
    }
  }

  private CompareTrial() {}

  /** The child JVM's entry: {@code CompareTrial <spec.json>}; writes the result file the spec names. */
  public static void main(String[] args) throws IOException {
    checkArgument(args.length == 1, "usage: CompareTrial <spec.json>, got %s arguments", args.length);
    exitWithParent();
    Spec spec = Spec.fromJson(JsonParser.parseString(Files.readString(Path.of(args[0]), StandardCharsets.UTF_8))
        .getAsJsonObject());
    Result result = run(spec, Data.read(spec.dataFile()), System.err);
    Files.writeString(spec.resultFile(), GSON.toJson(result), StandardCharsets.UTF_8);
  }

  /**
   * Ends this JVM soon after its parent ends (checked every second). A parent killed with SIGKILL cannot stop its
   * children: the orphaned trial would keep the cores busy and write into the directory a later {@code --resume}
   * runs the same trial in.
   */
  private static void exitWithParent() {
    ProcessHandle.current().parent().ifPresent(parent -> {
      Thread watch = new Thread(() -> {
        while (parent.isAlive()) {
          try {
            Thread.sleep(1000);
          } catch (InterruptedException e) {
            return;
          }
        }
        System.err.println("CompareTrial: the parent process " + parent.pid() + " ended; stopping");
        Runtime.getRuntime().halt(3);
      }, "exit-with-parent");
      watch.setDaemon(true);
      watch.start();
    });
  }

  static Result readResult(Path file) throws IOException {
    return GSON.fromJson(Files.readString(file, StandardCharsets.UTF_8), Result.class);
  }

  /** Trains and evaluates one trial; the progress bar goes to {@code bars}. */
  static Result run(Spec spec, Data data, PrintStream bars) throws IOException {
    Method method = CompareMethods.named(List.of(spec.method())).get(0);
    int numLabels = data.labelNames().size();
    int stepsPerEpoch = (data.train().size() + spec.batch() - 1) / spec.batch();
    int plannedSteps = spec.epochs() * stepsPerEpoch;
    List<Batch> trainBatches = new ArrayList<>();
    List<Batch> validationBatches;
    List<Batch> testBatches;
    ModelFamily family = ModelOptions.family(spec.model());
    Long pad = Compare.decoderPad(spec.model());
    try (Tokenizer tokenizer = Compare.tokenizer(spec.model(), spec.seqLength())) {
      for (int e = 0; e < spec.epochs(); e++) {
        List<Example> order = new ArrayList<>(data.train());
        Collections.shuffle(order, new Random(spec.seed() * 1_000_003L + e));
        trainBatches.addAll(Compare.batches(tokenizer, order, spec.batch(), pad));
      }
      validationBatches = Compare.batches(tokenizer, data.validation(), EVAL_BATCH, pad);
      testBatches = Compare.batches(tokenizer, data.test(), EVAL_BATCH, pad);
    }
    int[] validationLabels = data.validation().stream().mapToInt(Example::label).toArray();

    System.gc();
    boolean peakKnown = PeakMemory.reset();
    SameDiff sd = Compare.classifier(spec.model(), spec.seqLength(), numLabels, spec.seed());
    // percentages of the base model's parameters: an adapter that trains copies (modules_to_save, full fine-tuning)
    // would otherwise count those weights twice in the denominator
    long baseParameters = TrainableParameterSet.parameterCount(sd);
    AdapterConfig config = method.config(spec.seed(), plannedSteps, family);
    var best = new Object() {
      double loss = Double.POSITIVE_INFINITY;
      int epoch;
      int epochsRun;
      int steps;
      PeftModel model;
      Map<String, INDArray> weights;
      double[][] validation;
    };
    Trainer.Evaluator atEpochEnd = (step, model) -> {
      best.epochsRun++;
      double[][] probabilities = Compare.probabilities(model, validationBatches);
      double loss = crossEntropy(validationLabels, probabilities);
      if (loss < best.loss) {
        best.loss = loss;
        best.validation = probabilities;
        best.epoch = best.epochsRun;
        best.model = model;
        best.weights = snapshot(model);
      } else if (best.epochsRun - best.epoch >= spec.patience()) {
        throw new EarlyStop();
      }
      return Map.of("validation_loss", loss);
    };
    UnaryOperator<Trainer.Builder> common = t -> t.weightDecay(0.01).schedule(LearningRateSchedule.LINEAR)
        .seed(spec.seed()).dataParallel(spec.workers()).progress(bars).onStep((step, g) -> best.steps++);
    long start = System.nanoTime();
    try {
      if (method.probe() == null) {
        PeftModel model = config.apply(sd);
        common.apply(Trainer.builder(model)).steps(plannedSteps).learningRate(spec.learningRate())
            .warmupSteps(Math.max(1, plannedSteps / 10)).evaluateEvery(stepsPerEpoch, atEpochEnd).build()
            .fit(trainBatches);
      } else { // LP-FT: the head alone first (not evaluated), then the config from the trained head; validation
        // is checked after each epoch's worth of fine-tuning steps and at the end
        int probeSteps = Math.max(1, (int) Math.round(plannedSteps * method.probe().fraction()));
        int fineTuneSteps = Math.max(1, plannedSteps - probeSteps);
        LpFt.builder(config).head(Peft.linearProbe().head(family.head()).build())
            .probe(t -> common.apply(t).steps(probeSteps).learningRate(method.probe().learningRate())
                .warmupSteps(Math.max(1, probeSteps / 10)))
            .fineTune(t -> common.apply(t).steps(fineTuneSteps).learningRate(spec.learningRate())
                .warmupSteps(Math.max(1, fineTuneSteps / 10)).evaluateEvery(stepsPerEpoch, atEpochEnd))
            .fit(sd, trainBatches);
      }
    } catch (EarlyStop stopped) {
      // the best epoch's weights are restored below
    }
    double trainSeconds = (System.nanoTime() - start) / 1e9;
    checkArgument(best.model != null, "method '%s': no epoch was evaluated", method.name());
    PeftModel model = best.model;
    restore(model, best.weights);
    TrainableParameterSet trainable = model.trainableParameters();
    checkArgument(trainable.names().stream().anyMatch(n -> n.contains(family.head())), "method '%s' does not "
        + "train the head %s: its trainable set is %s", method.name(), family.head(), trainable.names());
    long tokens = trainBatches.subList(0, Math.min(best.steps, trainBatches.size())).stream()
        .mapToLong(Batch::tokens).sum();
    start = System.nanoTime();
    double[][] test = Compare.probabilities(model, testBatches);
    double evalSeconds = (System.nanoTime() - start) / 1e9;
    long peak = peakKnown ? PeakMemory.peakBytes() : -1;
    if (family == ModelFamily.DECODER) { // the decoder was built from its files, not by HfModels, which names it
      model.baseModelNameOrPath(spec.model().toString());
    }
    model.save(spec.adapterDir());
    return new Result(method.name(), spec.learningRate(), spec.seed(), trainable.count(), baseParameters,
        best.epochsRun, best.epoch, best.steps, trainSeconds, evalSeconds, tokens / trainSeconds, peak,
        best.loss, best.validation, test);
  }

  /** Mean cross-entropy {@code −(1/n) Σ log p[i][yᵢ]}, with p floored at 1e-12. */
  static double crossEntropy(int[] labels, double[][] probabilities) {
    double sum = 0;
    for (int i = 0; i < labels.length; i++) {
      sum -= Math.log(Math.max(probabilities[i][labels[i]], 1e-12));
    }
    return sum / labels.length;
  }

  private static Map<String, INDArray> snapshot(PeftModel model) {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (String name : model.trainableParameters().names()) {
      out.put(name, model.sameDiff().getVariable(name).getArr().dup());
    }
    return out;
  }

  private static void restore(PeftModel model, Map<String, INDArray> weights) {
    weights.forEach((name, w) -> model.sameDiff().getVariable(name).getArr().assign(w));
  }
}
