package dev.peft4j.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.PretrainedModels;
import dev.peft4j.train.GradientFunction;
import dev.peft4j.train.NativeMemoryGuard;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * all-MiniLM-L6-v2 at batch 8 × sequence 128 (1,024 tokens, no padding): peft4j's forward pass, a LoRA r=16
 * training step on query and value with a trained classification head (gradients of the trainable set and a plain
 * update and the trainer's {@link NativeMemoryGuard}, as in {@link MlpStepBenchmark}), and onnxruntime's forward of the same ONNX file as the baseline, all in one
 * run; and onnxruntime's forward of that file with a LoRA q,v adapter merged into it ({@link MiniLmLoraExport}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 10)
@Measurement(iterations = 3, time = 10)
@Fork(value = 1, jvmArgsAppend = {"-Dorg.nd4j.log.initialization=false", "-Xmx8g"})
public class MiniLmBenchmark {

  private static final int BATCH = 8;
  private static final int SEQ = 128;
  private static final double LR = 1e-4;

  private SameDiff base;
  private SameDiff lora;
  private List<String> loraParameters;
  private final NativeMemoryGuard memory = new NativeMemoryGuard();
  private Map<String, INDArray> encoderInputs;
  private Map<String, INDArray> inputs;
  private OrtEnvironment env;
  private OrtSession session;
  private long[][] ids;
  private long[][] mask;
  private long[][] types;

  @Setup
  public void setUp() throws Exception {
    Random random = new Random(1);
    ids = new long[BATCH][SEQ];
    mask = new long[BATCH][SEQ];
    types = new long[BATCH][SEQ];
    for (int b = 0; b < BATCH; b++) {
      for (int t = 0; t < SEQ; t++) {
        ids[b][t] = t == 0 ? 101 : t == SEQ - 1 ? 102 : 1000 + random.nextInt(28000);
        mask[b][t] = 1;
      }
    }
    encoderInputs = Map.of(Bert.INPUT_IDS, Nd4j.createFromArray(ids), Bert.ATTENTION_MASK,
        Nd4j.createFromArray(mask), Bert.TOKEN_TYPE_IDS, Nd4j.createFromArray(types));
    inputs = new HashMap<>(encoderInputs);
    long[] labels = new long[BATCH];
    for (int b = 0; b < BATCH; b++) {
      labels[b] = b % 2;
    }
    inputs.put(Heads.LABELS, Nd4j.createFromArray(labels));

    PretrainedModels.Encoder plain = PretrainedModels.miniLm(SEQ);
    base = plain.sameDiff();
    PretrainedModels.Encoder tuned = PretrainedModels.miniLm(SEQ);
    lora = Heads.sequenceClassification(tuned.sameDiff(), tuned.config().hiddenSize(), 2, Heads.Pooling.MEAN, 1);
    PeftModel model = Peft.lora(16).alpha(32).target("query", "value").modulesToSave(Heads.CLASSIFIER).apply(lora);
    loraParameters = model.trainableParameters().names();
    GradientFunction.prepare(lora);

    env = OrtEnvironment.getEnvironment();
    OrtSession.SessionOptions options = new OrtSession.SessionOptions();
    options.setIntraOpNumThreads(Integer.parseInt(System.getenv().getOrDefault("OMP_NUM_THREADS", "2")));
    try (InputStream in = PretrainedModels.class.getResourceAsStream("/all-minilm-l6-v2.onnx")) {
      session = env.createSession(in.readAllBytes(), options);
    }
  }

  @TearDown
  public void tearDown() throws OrtException {
    session.close();
  }

  @Benchmark
  public INDArray peft4jForward() {
    return base.output(encoderInputs, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE);
  }

  @Benchmark
  public INDArray peft4jLoraStep() {
    Map<String, INDArray> gradients = lora.calculateGradients(inputs, loraParameters);
    INDArray last = null;
    for (String p : loraParameters) {
      last = lora.getArrForVarName(p).subi(gradients.get(p).muli(LR));
    }
    memory.afterStep(); // as the Trainer does: without it off-heap memory grows ~1.9 GB a step
    return last;
  }

  @Benchmark
  public Object onnxRuntimeForward() throws OrtException {
    try (OnnxTensor i = OnnxTensor.createTensor(env, ids);
         OnnxTensor m = OnnxTensor.createTensor(env, mask);
         OnnxTensor t = OnnxTensor.createTensor(env, types);
         OrtSession.Result r = session.run(Map.of("input_ids", i, "attention_mask", m, "token_type_ids", t))) {
      return ((float[][][]) r.get(0).getValue())[0][0][0];
    }
  }

  /** onnxruntime's forward of the file {@link MiniLmLoraExport} writes: LoRA q,v merged into the ONNX file. */
  @Benchmark
  public Object onnxRuntimeExportedForward(ExportedSession exported) throws OrtException {
    try (OnnxTensor i = OnnxTensor.createTensor(env, ids);
         OnnxTensor m = OnnxTensor.createTensor(env, mask);
         OnnxTensor t = OnnxTensor.createTensor(env, types);
         OrtSession.Result r = exported.session.run(Map.of("input_ids", i, "attention_mask", m, "token_type_ids",
             t))) {
      return ((float[][][]) r.get(0).getValue())[0][0][0];
    }
  }

  /** A session over an exported file, set up only for the benchmark that reads it. */
  @State(Scope.Benchmark)
  public static class ExportedSession {
    private Path file;
    private OrtSession session;

    @Setup
    public void setUp() throws Exception {
      file = Files.createTempFile("minilm-lora-merged", ".onnx");
      MiniLmLoraExport.write(file);
      OrtSession.SessionOptions options = new OrtSession.SessionOptions();
      options.setIntraOpNumThreads(Integer.parseInt(System.getenv().getOrDefault("OMP_NUM_THREADS", "2")));
      session = OrtEnvironment.getEnvironment().createSession(file.toString(), options);
    }

    @TearDown
    public void tearDown() throws Exception {
      session.close();
      Files.deleteIfExists(file);
    }
  }
}
