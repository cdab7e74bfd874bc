package dev.peft4j.cuda;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.Llama;
import dev.peft4j.model.LlamaConfig;
import dev.peft4j.model.PretrainedModels;
import dev.peft4j.model.RandomLlamaWeights;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Gradients;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The GPU checks of {@code gpu-check.sh}, one backend per JVM (ND4J picks its backend once per process).
 *
 * <pre>
 *   run DIR [--throughput] [--batch B --seq S] [--qwen-layers N] [--qwen-vocab V]
 *       on the backend in use: MiniLM's forward (last hidden state) and a LoRA q,v step (loss and the LoRA
 *       gradients) at 4 × 128, the same LoRA q,v step on a Qwen3-0.6B-shaped decoder with seeded random weights at
 *       2 × 32, each written to DIR; with --throughput (default on CUDA) also training tokens/s at B × S
 *       (default 32 × 128) over 5 steps after 2 warm-up steps, and the peak device memory in use
 *   compare CPU_DIR GPU_DIR
 *       max |gpu − cpu| / max |cpu| of every array, PASS at ≤ 1e-3; exit code 1 if any fails
 * </pre>
 * Weights and inputs come from Java's {@link SplittableRandom}, not ND4J's generator, so both backends see the same
 * numbers.
 */
public final class GpuCheck {

  static final double TOLERANCE = 1e-3;
  private static final long SEED = 2026;

  private GpuCheck() {}

  public static void main(String[] args) throws IOException {
    if (args.length >= 3 && args[0].equals("compare")) {
      System.exit(compare(Path.of(args[1]), Path.of(args[2]), System.out) ? 0 : 1);
    }
    if (args.length < 2 || !args[0].equals("run")) {
      throw new IllegalArgumentException("usage: run DIR [--throughput] [--batch B --seq S] [--qwen-layers N] | "
          + "compare CPU_DIR GPU_DIR; got " + List.of(args));
    }
    Path dir = Files.createDirectories(Path.of(args[1]));
    List<String> options = List.of(args).subList(2, args.length);
    Backend backend = Backend.current();
    boolean throughput = options.contains("--throughput") || backend == Backend.CUDA;
    int batch = option(options, "--batch", 32);
    int seq = option(options, "--seq", 128);
    int qwenLayers = option(options, "--qwen-layers", 28);
    int qwenVocab = option(options, "--qwen-vocab", QWEN3_VOCAB); // smaller only to try the script on a small machine
    System.out.println("backend: " + Backend.describe() + "; seed " + SEED);

    PretrainedModels.Encoder miniLm = PretrainedModels.miniLm(128);
    SameDiff encoder = miniLm.sameDiff();
    Map<String, INDArray> bertInputs = bertInputs(4, 128, miniLm.config().vocabSize());
    save(dir, "minilm.forward", encoder.output(bertInputs, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE));
    SameDiff classifier = Heads.sequenceClassification(encoder, miniLm.config().hiddenSize(), 2,
        Heads.Pooling.MEAN, SEED);
    PeftModel miniLmLora = Peft.lora(8).alpha(16).target("query", "value").apply(classifier);
    loraStep(dir, "minilm", miniLmLora, withLabels(bertInputs, 4));

    LlamaConfig qwen = qwen3Shape(qwenLayers, qwenVocab);
    SameDiff decoder = Llama.causalLm(qwen, RandomLlamaWeights.of(qwen, SEED));
    PeftModel qwenLora = Peft.lora(8).alpha(16).target("q_proj", "v_proj").apply(decoder);
    loraStep(dir, "qwen3", qwenLora, llamaInputs(2, 32, qwen.vocabSize()));

    if (throughput) {
      measure("MiniLM + classifier, LoRA q,v r=8", miniLmLora, withLabels(bertInputs(batch, seq,
          miniLm.config().vocabSize()), batch), backend);
      measure("Qwen3-0.6B-shaped (" + qwenLayers + " layers, vocabulary " + qwenVocab + "), LoRA q,v r=8", qwenLora,
          llamaInputs(batch, seq, qwen.vocabSize()), backend);
    }
    miniLm.tokenizer().close();
  }

  static final int QWEN3_VOCAB = 151_936;

  /** {@link LlamaConfig#qwen3_0_6B()} with {@code layers} layers and a vocabulary of {@code vocab}. */
  static LlamaConfig qwen3Shape(int layers, int vocab) {
    LlamaConfig q = LlamaConfig.qwen3_0_6B();
    return new LlamaConfig(q.modelType(), vocab, q.hiddenSize(), q.intermediateSize(), layers, q.numHeads(),
        q.numKvHeads(), q.headDim(), q.maxPositions(), q.rmsNormEps(), q.ropeTheta(), q.tieWordEmbeddings(),
        q.qkvBias(), q.mlpBias(), q.qkNorm());
  }

  /** The loss and the LoRA gradients of one step; lora_B set non-zero first, so that lora_A has a gradient too. */
  private static void loraStep(Path dir, String name, PeftModel model, Map<String, INDArray> inputs)
      throws IOException {
    SameDiff sd = model.sameDiff();
    List<String> names = model.trainableParameters().names();
    SplittableRandom random = new SplittableRandom(SEED + 1);
    for (String p : names) {
      if (p.endsWith("lora_B")) {
        INDArray b = sd.getArrForVarName(p);
        b.assign(uniform(random, 0.01, b.shape()));
      }
    }
    String loss = sd.getLossVariables().get(0);
    OutAndGrad r = Gradients.of(sd, inputs, List.of(loss), names);
    save(dir, name + ".loss", r.getOutputs().get(loss));
    for (String p : names) {
      save(dir, name + ".grad." + p.replace('/', '_'), r.getGradients().get(p));
    }
    System.out.printf(Locale.ROOT, "%s: loss %.6f, %d LoRA gradients written%n", name,
        r.getOutputs().get(loss).getDouble(0), names.size());
  }

  private static void measure(String what, PeftModel model, Map<String, INDArray> inputs, Backend backend) {
    long tokens = inputs.get(Llama.ATTENTION_MASK).sumNumber().longValue();
    Batch batch = new Batch(inputs, tokens);
    long[] peakUsed = {usedDeviceMemory(backend)};
    long before = peakUsed[0];
    Trainer.builder(model).steps(2).progress(null).build().fit(List.of(batch)); // warm-up: JIT, graph, cuBLAS
    TrainingHistory h = Trainer.builder(model).steps(5).progress(null)
        .onStep((step, gradients) -> peakUsed[0] = Math.max(peakUsed[0], usedDeviceMemory(backend)))
        .build().fit(List.of(batch));
    System.out.printf(Locale.ROOT, "%s at %d × %d: %,.0f training tokens/s over 5 steps; %s%n", what,
        inputs.get(Llama.ATTENTION_MASK).size(0), inputs.get(Llama.ATTENTION_MASK).size(1), h.tokensPerSecond(),
        backend == Backend.CUDA
            ? String.format(Locale.ROOT, "peak device memory in use %.2f GiB (%.2f GiB before the warm-up; sampled "
                + "after every step, all processes on the device)", peakUsed[0] / GIB, before / GIB)
            : "device memory: n/a on the CPU");
  }

  private static final double GIB = 1L << 30;

  private static long usedDeviceMemory(Backend backend) {
    return backend == Backend.CPU ? 0
        : CudaDevice.all().stream().mapToLong(CudaDevice::usedMemory).max().orElse(0);
  }

  static boolean compare(Path cpu, Path gpu, PrintStream out) throws IOException {
    Set<String> names = new TreeSet<>();
    try (var files = Files.list(cpu)) {
      files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".bin")).forEach(names::add);
    }
    if (names.isEmpty()) {
      throw new IOException(cpu + ": no reference arrays (*.bin); run 'run " + cpu + "' on the CPU first");
    }
    boolean all = true;
    double worst = 0;
    for (String n : names) {
      INDArray a = Nd4j.readBinary(cpu.resolve(n).toFile()).castTo(DataType.DOUBLE);
      File other = gpu.resolve(n).toFile();
      if (!other.isFile()) {
        out.println("FAIL " + n + ": missing in " + gpu);
        all = false;
        continue;
      }
      INDArray b = Nd4j.readBinary(other).castTo(DataType.DOUBLE);
      double error = b.sub(a).amaxNumber().doubleValue() / Math.max(a.amaxNumber().doubleValue(), 1e-30);
      boolean ok = java.util.Arrays.equals(a.shape(), b.shape()) && error <= TOLERANCE;
      worst = Math.max(worst, error);
      all &= ok;
      if (!ok || n.endsWith(".loss.bin") || n.endsWith(".forward.bin")) {
        out.printf(Locale.ROOT, "%s %s: relative max error %.2e%n", ok ? "PASS" : "FAIL", n, error);
      }
    }
    out.printf(Locale.ROOT, "%s: %d arrays, worst relative max error %.2e (tolerance %.0e)%n",
        all ? "PASS" : "FAIL", names.size(), worst, TOLERANCE);
    return all;
  }

  private static void save(Path dir, String name, INDArray array) throws IOException {
    Nd4j.saveBinary(array, dir.resolve(name + ".bin").toFile());
  }

  /** Token ids in [1000, vocab) from a seeded generator, full attention masks, one segment. */
  private static Map<String, INDArray> bertInputs(int batch, int seq, int vocab) {
    Map<String, INDArray> in = new HashMap<>();
    in.put(Bert.INPUT_IDS, ids(batch, seq, vocab));
    in.put(Bert.ATTENTION_MASK, Nd4j.ones(DataType.INT64, batch, seq));
    in.put(Bert.TOKEN_TYPE_IDS, Nd4j.zeros(DataType.INT64, batch, seq));
    return in;
  }

  private static Map<String, INDArray> withLabels(Map<String, INDArray> inputs, int batch) {
    Map<String, INDArray> in = new HashMap<>(inputs);
    long[] labels = new long[batch];
    for (int i = 0; i < batch; i++) {
      labels[i] = i % 2;
    }
    in.put(Heads.LABELS, Nd4j.createFromArray(labels));
    return in;
  }

  private static Map<String, INDArray> llamaInputs(int batch, int seq, int vocab) {
    INDArray ids = ids(batch, seq, vocab);
    return Map.of(Llama.INPUT_IDS, ids, Llama.ATTENTION_MASK, Nd4j.ones(DataType.INT64, batch, seq),
        Llama.LABELS, ids.dup());
  }

  private static INDArray ids(int batch, int seq, int vocab) {
    SplittableRandom random = new SplittableRandom(SEED + batch * 1000L + seq);
    long[] ids = new long[batch * seq];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = 1000 + random.nextInt(vocab - 1000);
    }
    return Nd4j.createFromArray(ids).reshape(batch, seq);
  }

  /** Uniform in [−a, a) (standard deviation a/√3), generated in Java so every backend gets the same values. */
  static INDArray uniform(SplittableRandom random, double a, long... shape) {
    long n = 1;
    for (long s : shape) {
      n *= s;
    }
    float[] values = new float[Math.toIntExact(n)];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) ((random.nextDouble() * 2 - 1) * a);
    }
    return Nd4j.create(values, shape, 'c');
  }

  private static int option(List<String> options, String name, int fallback) {
    int i = options.indexOf(name);
    return i < 0 ? fallback : Integer.parseInt(options.get(i + 1));
  }
}
