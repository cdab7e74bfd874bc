package dev.peft4j.bench;

import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.RowMajorArrayCache;
import dev.peft4j.methods.ParameterBudget;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.PretrainedModels;
import dev.peft4j.train.AdamW;
import dev.peft4j.train.CheckpointedGradients;
import dev.peft4j.train.DataParallel;
import dev.peft4j.train.GradientFunction;
import dev.peft4j.train.Gradients;
import dev.peft4j.train.NativeMemoryGuard;
import dev.peft4j.train.RandomOps;
import dev.peft4j.train.StepGradients;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * all-MiniLM-L6-v2 with a 2-class mean-pooled classification head, batch 8 × sequence 128 (1,024 tokens, no
 * padding), one configuration per {@code @Param}:
 * <ul>
 *   <li>{@code inference}: the base encoder's forward ({@code last_hidden_state});
 *   <li>{@code mergedLora}: the forward after LoRA q,v r=16 was merged and unloaded (must equal {@code inference});
 *   <li>{@code headOnly}, {@code loraQV}, {@code loraAllLinear}, {@code ia3}, {@code bottleneck}, {@code fullFt}: one
 *       training step — gradients of the trainable set through {@link Gradients}, as the trainer computes them
 *       ({@code -Dpeft4j.bench.arrayCache=false}: ND4J's {@code calculateGradients}, without buffer reuse; pass it to
 *       the fork with JMH's {@code -jvmArgsAppend}) (LoRA/IA³ with dropout 0.1 in training mode, the classifier
 *       trained beside every method) and an update by the trainer's {@code AdamW}, plus the trainer's
 *       {@link NativeMemoryGuard} ({@code -Dpeft4j.bench.checkpointing=true}: through {@link CheckpointedGradients}
 *       after every second layer, as the trainer's gradient checkpointing; {@code -p workers=2}: through
 *       {@link DataParallel} over two shards of four rows, as the trainer's {@code dataParallel(2)}; for
 *       {@code inference} and {@code mergedLora}, the forward through {@link DataParallel#output}).
 *       {@code fullFt} trains every weight but the three embedding tables (ND4J M2.1 cannot differentiate a
 *       trainable {@code gather}).
 *   <li>{@code dora}, {@code adaLora}, {@code vera}, {@code fourierFt}, {@code promptTuning}, {@code prefixTuning},
 *       {@code pTuning}, {@code bitFit}, {@code lnTuning}, {@code qlora} (NF4 base): the other methods' steps at the
 *       comparison's settings (q,v targets; 20 virtual tokens). AdaLoRA's step here is its forward/backward with the
 *       orthogonality term and the update; the rank allocation the trainer runs after a step is not included.
 * </ul>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 8)
@Measurement(iterations = 3, time = 8)
@Fork(value = 1, jvmArgsAppend = {"-Dorg.nd4j.log.initialization=false", "-Xmx8g"})
public class MiniLmTrainingBenchmark {

  static final int BATCH = 8;
  static final int SEQ = Integer.getInteger("peft4j.bench.seq", 128);
  /** System property: {@code false} computes gradients with ND4J's own call instead of {@link Gradients}. */
  static final String ARRAY_CACHE_PROPERTY = "peft4j.bench.arrayCache";
  /** System property: {@code true} computes gradients with the trainer's gradient checkpointing (every 2nd layer). */
  static final String CHECKPOINTING_PROPERTY = "peft4j.bench.checkpointing";
  private static final double LR = 1e-4;
  private static final double BETA1 = 0.9;
  private static final double BETA2 = 0.999;
  private static final double EPS = 1e-8;
  private static final double WEIGHT_DECAY = 0.01;

  @Param({"inference", "mergedLora", "headOnly", "loraQV", "loraAllLinear", "ia3", "bottleneck", "fullFt", "dora",
      "adaLora", "vera", "fourierFt", "promptTuning", "prefixTuning", "pTuning", "bitFit", "lnTuning", "qlora"})
  public String config;

  /** Data-parallel workers ({@code -p workers=1,2}): above 1, through {@link DataParallel}. */
  @Param({"1"})
  public int workers;

  private SameDiff sd;
  private List<String> trainable;
  private final boolean nd4jGradients = "false".equals(System.getProperty(ARRAY_CACHE_PROPERTY));
  private CheckpointedGradients checkpointed;
  private DataParallel parallel;
  private AdamW adam;
  private final NativeMemoryGuard memory =
      nd4jGradients ? new NativeMemoryGuard() : NativeMemoryGuard.forReusingSteps();
  private Map<String, INDArray> inputs;
  private RandomOps.Seeding seeding;
  private long step;
  private ParameterBudget budget;

  @Setup(Level.Trial)
  public void setUp() {
    inputs = batch();
    PretrainedModels.Encoder encoder = PretrainedModels.miniLm(SEQ);
    budget = ParameterBudget.of(ParameterBudget.Shape.of(encoder.config()).withClassifier(2));
    sd = encoder.sameDiff();
    if (config.equals("inference") || config.equals("mergedLora")) {
      if (config.equals("mergedLora")) {
        PeftModel m = Peft.lora(16).alpha(32).target("query", "value").apply(sd);
        m.mergeAndUnload();
      }
      inputs.remove(Heads.LABELS);
      parallel = workers > 1 ? DataParallel.of(sd, workers) : null;
      return;
    }
    sd = Heads.sequenceClassification(sd, encoder.config().hiddenSize(), 2, Heads.Pooling.MEAN, 1);
    switch (config) {
      case "headOnly" -> trainable = headOnly(sd);
      case "fullFt" -> trainable = allButEmbeddings(sd);
      default -> {
        PeftModel model = switch (config) {
          case "loraQV" -> Peft.lora(16).alpha(32).dropout(0.1).target("query", "value")
              .modulesToSave(Heads.CLASSIFIER).apply(sd);
          case "loraAllLinear" -> Peft.lora(16).alpha(32).dropout(0.1).target("all-linear")
              .modulesToSave(Heads.CLASSIFIER).apply(sd);
          case "ia3" -> Peft.ia3().target("key", "value", "output.dense").feedforward("output.dense")
              .modulesToSave(Heads.CLASSIFIER).apply(sd);
          case "bottleneck" -> Peft.bottleneck(64).modulesToSave(Heads.CLASSIFIER).apply(sd);
          case "dora" -> Peft.dora(16).alpha(32).dropout(0.1).target("query", "value")
              .modulesToSave(Heads.CLASSIFIER).apply(sd);
          case "adaLora" -> Peft.adaLora(12, 8).alpha(32).dropout(0.1).totalStep(1000).target("query", "value")
              .modulesToSave(Heads.CLASSIFIER).apply(sd);
          case "vera" -> Peft.vera(256).dropout(0.1).target("query", "value").modulesToSave(Heads.CLASSIFIER)
              .apply(sd);
          case "fourierFt" -> Peft.fourierFt(1000).target("query", "value").modulesToSave(Heads.CLASSIFIER)
              .apply(sd);
          case "promptTuning" -> Peft.promptTuning(20).modulesToSave(Heads.CLASSIFIER).apply(sd);
          case "prefixTuning" -> Peft.prefixTuning(20).modulesToSave(Heads.CLASSIFIER).apply(sd);
          case "pTuning" -> Peft.pTuning(20).encoderHiddenSize(128).modulesToSave(Heads.CLASSIFIER).apply(sd);
          case "qlora" -> Peft.qlora(16).alpha(32).dropout(0.1).target("query", "value")
              .modulesToSave(Heads.CLASSIFIER).apply(sd);
          case "bitFit" -> Peft.bitFit().modulesToSave(Heads.CLASSIFIER).apply(sd);
          case "lnTuning" -> Peft.lnTuning().modulesToSave(Heads.CLASSIFIER).apply(sd);
          default -> throw new IllegalArgumentException("unknown config " + config);
        };
        model.train();
        trainable = model.trainableParameters().names();
      }
    }
    if (trainable != null) {
      adam = new AdamW(sd, trainable, BETA1, BETA2, EPS, WEIGHT_DECAY);
    }
    if (workers == 1) { // DataParallel's replicas build their own; the graph's would only take memory
      GradientFunction.prepare(sd);
    }
    if (trainable != null && Boolean.getBoolean(CHECKPOINTING_PROPERTY)) {
      checkpointed = CheckpointedGradients.atLayers(sd); // as the trainer's gradient checkpointing
    }
    if (checkpointed != null && workers > 1) {
      throw new IllegalArgumentException("gradient checkpointing and data parallelism cannot be combined");
    }
    if (trainable != null && workers > 1) {
      parallel = DataParallel.of(sd, workers); // as the trainer's data parallelism
    }
    seeding = RandomOps.seed(sd, () -> step);
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    if (seeding != null) {
      seeding.close();
    }
    if (parallel != null) {
      parallel.close();
    }
    // each configuration runs in its own fork, so the process's high-water mark is this configuration's peak
    long trainableScalars = trainable == null ? 0
        : trainable.stream().mapToLong(p -> sd.getArrForVarName(p).length()).sum();
    ParameterBudget.Memory estimate = budget.memory(trainableScalars, BATCH, SEQ, DataType.FLOAT);
    String mode = (checkpointed == null ? "" : ", checkpointed")
        + (parallel == null ? "" : ", " + parallel.workers() + " workers");
    System.out.printf("%npeak RSS [%s%s]: %d MiB; ParameterBudget estimate %d MiB (%s)%n", config, mode,
        PeakMemory.peakBytes() >> 20, estimate.totalBytes() >> 20, estimate);
  }

  @Benchmark
  public Object run() {
    if (trainable == null) {
      return forward();
    }
    Map<String, INDArray> gradients = gradients();
    INDArray last = update(gradients);
    if (!nd4jGradients) {
      StepGradients.free(gradients.values()); // as the trainer does after the optimizer step
    }
    memory.afterStep();
    return last;
  }

  /** The base encoder's {@code last_hidden_state} (inference configurations). */
  INDArray forward() {
    if (parallel != null) {
      return parallel.output(inputs, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE);
    }
    RowMajorArrayCache.install(sd); // as PeftModel.output does
    Map<String, INDArray> values = sd.output(inputs, Bert.LAST_HIDDEN_STATE);
    RowMajorArrayCache.reclaim(sd, values.values());
    return values.get(Bert.LAST_HIDDEN_STATE);
  }

  /** Forward and backward: the gradients of the trainable set (training configurations). */
  Map<String, INDArray> gradients() {
    step++;
    if (nd4jGradients) {
      return sd.calculateGradients(inputs, trainable); // ND4J's own call: no buffer reuse within the step
    }
    if (checkpointed != null) {
      return checkpointed.compute(inputs, Heads.LOSS, trainable).getGradients();
    }
    if (parallel != null) {
      return parallel.gradients(inputs, Heads.LOSS, trainable).getGradients();
    }
    return Gradients.of(sd, inputs, List.of(), trainable).getGradients();
  }

  /** One update by the trainer's {@link AdamW}; returns the last parameter written. */
  INDArray update(Map<String, INDArray> gradients) {
    adam.step(gradients, LR);
    return sd.getArrForVarName(trainable.get(trainable.size() - 1));
  }

  boolean training() {
    return trainable != null;
  }

  SameDiff sameDiff() {
    return sd;
  }

  NativeMemoryGuard memory() {
    return memory;
  }

  /** The data parallelism the run goes through; null with one worker. */
  DataParallel parallel() {
    return parallel;
  }

  /** Freezes everything but the classifier; returns its parameters. */
  private static List<String> headOnly(SameDiff sd) {
    List<String> frozen = new ArrayList<>();
    List<String> head = new ArrayList<>();
    for (SDVariable v : sd.variables()) {
      if (v.getVariableType() == VariableType.VARIABLE) {
        (v.name().startsWith(Heads.CLASSIFIER + ".") ? head : frozen).add(v.name());
      }
    }
    GraphRewriter.of(sd).freeze(frozen);
    return head;
  }

  /** Freezes the embedding tables (no gather gradient in ND4J M2.1); returns every other weight. */
  private static List<String> allButEmbeddings(SameDiff sd) {
    List<String> frozen = new ArrayList<>();
    List<String> rest = new ArrayList<>();
    for (SDVariable v : sd.variables()) {
      if (v.getVariableType() == VariableType.VARIABLE) {
        (v.name().endsWith("_embeddings.weight") ? frozen : rest).add(v.name());
      }
    }
    GraphRewriter.of(sd).freeze(frozen);
    return rest;
  }

  /** A fixed batch of random in-vocabulary tokens between [CLS] and [SEP], labels alternating. */
  static Map<String, INDArray> batch() {
    Random random = new Random(1);
    long[][] ids = new long[BATCH][SEQ];
    long[][] mask = new long[BATCH][SEQ];
    long[] labels = new long[BATCH];
    for (int b = 0; b < BATCH; b++) {
      for (int t = 0; t < SEQ; t++) {
        ids[b][t] = t == 0 ? 101 : t == SEQ - 1 ? 102 : 1000 + random.nextInt(28000);
        mask[b][t] = 1;
      }
      labels[b] = b % 2;
    }
    Map<String, INDArray> out = new HashMap<>();
    out.put(Bert.INPUT_IDS, Nd4j.createFromArray(ids));
    out.put(Bert.ATTENTION_MASK, Nd4j.createFromArray(mask));
    out.put(Bert.TOKEN_TYPE_IDS, Nd4j.createFromArray(new long[BATCH][SEQ]));
    out.put(Heads.LABELS, Nd4j.createFromArray(labels));
    return out;
  }
}
