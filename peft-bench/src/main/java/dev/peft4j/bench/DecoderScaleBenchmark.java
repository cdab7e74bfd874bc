package dev.peft4j.bench;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.ParameterBudget;
import dev.peft4j.methods.Peft;
import dev.peft4j.generate.GenerationConfig;
import dev.peft4j.generate.Generator;
import dev.peft4j.model.Llama;
import dev.peft4j.model.LlamaConfig;
import dev.peft4j.model.RandomLlamaWeights;
import dev.peft4j.quant.QuantizedBase;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * One configuration of the 0.6B-scale decoder run, in the JVM it is started in (peak RSS is a property of a whole
 * process, so {@code peft-bench/decoder-scale.sh} starts one JVM per configuration, alternating with PyTorch's
 * {@code scripts/bench_decoder_pytorch.py}). The model is {@link LlamaConfig#qwen3_0_6B()} with seeded random weights
 * ({@link RandomLlamaWeights}), built in memory, with its published 40,960 positions (see {@link #config()}).
 * <pre>
 *   lora WORKERS     LoRA r=16, α=32 on q_proj, v_proj; a training step (forward, loss, backward, AdamW through the
 *                    Trainer, WORKERS data-parallel workers) at batch 4 × 256
 *   qlora            the same with the linear layers stored in NF4 with double quantisation ({@code Peft.qlora})
 *   forward B        the base model's logits at batch B × 256, no gradients (prefill)
 *   generate B       greedy generation without a KV cache: B prompts of 64 tokens, NEW new tokens, the whole prefix
 *                    recomputed through the plain graph for every token
 *   generate-cached B  the same through the KV cache of dev.peft4j.generate (Generator)
 * </pre>
 * Options: {@code --warmup N} (default 1) and {@code --reps N} (default 2) timed repetitions, {@code --new N}
 * (default 32) generated tokens, {@code --micro N} (training: rows per micro-batch, default 4; a step is then 4 / N
 * micro-batches with gradient accumulation — the same tokens and update with a fraction of the activations, which at
 * 4 × 256 in one pass need more than 17 GB here). Warm-up steps and forwards run at {@value #WARMUP_BATCH} × {@value #WARMUP_SEQ}
 * (the graph, its gradient function and the JIT do not depend on the shape), warm-up generations make 2 tokens.
 * Prints one line starting {@code RESULT} with {@code key=value} fields: median
 * milliseconds of a repetition, tokens/s (training and forward: tokens of the batch; generation: new tokens of every
 * row), peak RSS ({@code VmHWM}) and {@link ParameterBudget}'s estimate for the configuration:
 * <pre>
 *   training:   ParameterBudget.memory(trainable, micro, 256, FLOAT).totalBytes()   (weights + adapter + its gradients +
 *               AdamW + activations); QLoRA: the weights term with every linear layer at NF4's 0.5157 bytes per
 *               parameter (4 bits + an 8-bit absmax per 64 + a float scale per 256 blocks) instead of 4
 *   inference:  the weights (4 bytes a parameter) + the logits B·s·V floats, the largest tensor of a forward
 * </pre>
 */
public final class DecoderScaleBenchmark {

  static final int SEQ = 256;
  static final int TRAIN_BATCH = 4;
  static final int PROMPT = 64;
  static final int WARMUP_BATCH = 2;
  static final int WARMUP_SEQ = 32;
  private static final long SEED = 2026;
  /** NF4 with double quantisation: 4 bits, an 8-bit absmax per block of 64, a float scale per 256 absmax values. */
  static final double NF4_BYTES_PER_PARAMETER = 0.5 + 1.0 / 64 + 4.0 / (64 * 256);

  /** The resident size once the model is built, before the configuration's work: the weights' own share. */
  private static long builtRss;

  private DecoderScaleBenchmark() {}

  public static void main(String[] args) {
    if (args.length == 0) {
      throw new IllegalArgumentException("usage: lora WORKERS | qlora | forward BATCH | generate BATCH | "
          + "generate-cached BATCH, then [--warmup N] [--reps N] [--new N]");
    }
    List<String> options = List.of(args);
    int warmup = option(options, "--warmup", 1);
    int reps = option(options, "--reps", 2);
    int newTokens = option(options, "--new", 32);
    int micro = option(options, "--micro", TRAIN_BATCH);
    PeakMemory.reset();
    long start = System.nanoTime();
    LlamaConfig c = config();
    SameDiff sd = Llama.causalLm(c, RandomLlamaWeights.of(c, SEED));
    double buildSeconds = (System.nanoTime() - start) / 1e9;
    builtRss = PeakMemory.residentBytes();
    ParameterBudget budget = ParameterBudget.of(ParameterBudget.Shape.of(c));
    switch (args[0]) {
      case "lora" -> train("lora-w" + args[1], sd, budget, Peft.lora(16).alpha(32).target("q_proj", "v_proj")
          .seed(1).apply(sd), Integer.parseInt(args[1]), micro, warmup, reps, buildSeconds, false);
      case "qlora" -> train("qlora", sd, budget, Peft.qlora(16).alpha(32).target("q_proj", "v_proj").seed(1)
          .apply(sd), 1, micro, warmup, reps, buildSeconds, true);
      case "forward" -> forward(sd, budget, Integer.parseInt(args[1]), warmup, reps, buildSeconds);
      case "generate" -> generate(sd, budget, Integer.parseInt(args[1]), newTokens, warmup, reps, buildSeconds, false);
      case "generate-cached" -> generate(sd, budget, Integer.parseInt(args[1]), newTokens, warmup, reps, buildSeconds,
          true);
      default -> throw new IllegalArgumentException("unknown configuration '" + args[0]
          + "'; configurations: lora, qlora, forward, generate, generate-cached");
    }
  }

  /**
   * Qwen3-0.6B's published config, its 40,960 positions included (the graph's causal mask is computed from the
   * batch's length, and the rotary tables are 2 × 40,960 × 128 floats, 40 MiB).
   */
  static LlamaConfig config() {
    return LlamaConfig.qwen3_0_6B();
  }

  private static void train(String name, SameDiff sd, ParameterBudget budget, PeftModel model, int workers,
      int micro, int warmup, int reps, double buildSeconds, boolean nf4) {
    if (micro < 1 || TRAIN_BATCH % micro != 0 || micro % workers != 0) {
      throw new IllegalArgumentException(String.format("--micro %s must divide the batch of %s and be a multiple of "
          + "the %s workers", micro, TRAIN_BATCH, workers));
    }
    model.train();
    long trainable = model.trainableParameters().names().stream().mapToLong(p -> sd.getArrForVarName(p).length())
        .sum();
    // warm-up steps on a small batch build the gradient graph and JIT-compile the step at a fraction of its cost:
    // the graph does not depend on the batch shape
    // a step of TRAIN_BATCH rows is TRAIN_BATCH / micro micro-batches of micro rows (gradient accumulation: the same
    // tokens and the same update, a fraction of the activations at once)
    int accumulation = TRAIN_BATCH / micro;
    Map<String, INDArray> full = causalLmBatch(TRAIN_BATCH, SEQ, budget.shape().vocab());
    List<Batch> data = new ArrayList<>();
    for (int i = 0; i < warmup + reps; i++) {
      for (int m = 0; m < accumulation; m++) {
        data.add(i < warmup ? new Batch(causalLmBatch(WARMUP_BATCH, WARMUP_SEQ, budget.shape().vocab()),
            (long) WARMUP_BATCH * WARMUP_SEQ) : new Batch(rows(full, m * micro, micro), (long) micro * SEQ));
      }
    }
    Trainer.Builder trainer = Trainer.builder(model).steps(warmup + reps).gradientAccumulation(accumulation)
        .learningRate(1e-4).seed(1).progress(null);
    if (workers > 1) {
      trainer.dataParallel(workers);
    }
    TrainingHistory h = trainer.build().fit(data);
    double[] ms = h.steps().stream().skip(warmup).mapToDouble(s -> 1000 * s.seconds()).toArray();
    ParameterBudget.Memory m = budget.memory(trainable, micro, SEQ, DataType.FLOAT); // activations of one micro-batch
    long estimate = m.totalBytes();
    if (nf4) {
      long linear = linearParameters(budget);
      estimate += Math.round(linear * NF4_BYTES_PER_PARAMETER) - 4 * linear;
    }
    report(name, TRAIN_BATCH, ms, TRAIN_BATCH * SEQ, estimate, buildSeconds, String.format(Locale.ROOT,
        "micro_batch=%dx%d workers=%d trainable=%d loss=%.4f->%.4f packed_base_bytes=%d", micro, SEQ, workers, trainable, h.firstLoss(), h.lastLoss(),
        nf4 ? QuantizedBase.residentBytes(sd) : 0));
  }

  /** Rows {@code from .. from + n − 1} of every input. */
  private static Map<String, INDArray> rows(Map<String, INDArray> inputs, int from, int n) {
    Map<String, INDArray> out = new HashMap<>();
    inputs.forEach((k, v) -> out.put(k, v.get(NDArrayIndex.interval(from, from + n), NDArrayIndex.all()).dup()));
    return out;
  }

  /** Parameters of the linear layers (those QLoRA stores in NF4): all but the embedding table and the norms. */
  static long linearParameters(ParameterBudget budget) {
    ParameterBudget.Shape s = budget.shape();
    long norms = s.layers() * (2L * s.hidden() + (s.qkNorm() ? 2L * s.headDim() : 0)) + s.hidden();
    long head = s.tiedHead() ? 0 : (long) s.hidden() * s.vocab(); // an untied lm_head stays in full precision
    return budget.totalParameters() - (long) s.vocab() * s.hidden() - norms - head;
  }

  private static void forward(SameDiff sd, ParameterBudget budget, int batchSize, int warmup, int reps,
      double buildSeconds) {
    Map<String, INDArray> inputs = promptBatch(batchSize, SEQ, budget.shape().vocab());
    Map<String, INDArray> small = promptBatch(WARMUP_BATCH, WARMUP_SEQ, budget.shape().vocab());
    double[] ms = new double[reps];
    for (int i = 0; i < warmup + reps; i++) {
      long t = System.nanoTime();
      INDArray logits = sd.output(i < warmup ? small : inputs, Llama.LOGITS).get(Llama.LOGITS); // [b, s, V]
      checkFinite(logits.getDouble(0, logits.size(1) - 1, 0));
      if (i >= warmup) {
        ms[i - warmup] = (System.nanoTime() - t) / 1e6;
      }
    }
    report("forward-b" + batchSize, batchSize, ms, (long) batchSize * SEQ, inferenceEstimate(budget, batchSize, SEQ),
        buildSeconds, "seq=" + SEQ);
  }

  /**
   * Greedy generation of {@code newTokens} after {@value #PROMPT}-token prompts: without a cache by recomputing the
   * whole prefix ({@link #greedyWithoutCache}), with one through {@link Generator} (its prefill and decode graphs;
   * a greedy config without EOS, so every row gets exactly {@code newTokens}).
   */
  private static void generate(SameDiff sd, ParameterBudget budget, int batchSize, int newTokens, int warmup,
      int reps, double buildSeconds, boolean cached) {
    INDArray prompt = promptBatch(batchSize, PROMPT, budget.shape().vocab()).get(Llama.INPUT_IDS);
    Generator generator = Generator.of(sd);
    List<long[]> prompts = new ArrayList<>();
    for (int r = 0; r < batchSize; r++) {
      prompts.add(prompt.getRow(r).toLongVector());
    }
    long[] first = null;
    double[] ms = new double[reps];
    for (int i = 0; i < warmup + reps; i++) {
      long t = System.nanoTime();
      // the warm-up generates 2 tokens: it only has to build the inference session and touch every weight once
      int n = i < warmup ? 2 : newTokens;
      long[][] out = cached ? generator.generate(prompts, GenerationConfig.greedy(n)).toArray(long[][]::new)
          : greedyWithoutCache(sd, prompt, n);
      if (i >= warmup) {
        ms[i - warmup] = (System.nanoTime() - t) / 1e6;
        first = first == null ? out[0] : first;
      }
    }
    report((cached ? "generate-cache-b" : "generate-nocache-b") + batchSize, batchSize, ms, (long) batchSize * newTokens,
        inferenceEstimate(budget, batchSize, PROMPT + newTokens), buildSeconds, String.format(Locale.ROOT,
            "prompt=%d new=%d row0_tokens=%s", PROMPT, newTokens,
            Arrays.toString(Arrays.copyOf(first, Math.min(8, first.length))).replace(" ", "")));
  }

  /**
   * Greedy decoding by recomputing the whole prefix with the plain causal-LM graph for every new token: what
   * generation costs without a KV cache. Every row has the same length (no padding), so the attention mask is all
   * ones.
   *
   * @return the new tokens, {@code [batch][newTokens]}
   */
  static long[][] greedyWithoutCache(SameDiff sd, INDArray promptIds, int newTokens) {
    int b = (int) promptIds.size(0);
    INDArray ids = promptIds.dup();                                                   // [b, t]
    long[][] generated = new long[b][newTokens];
    for (int n = 0; n < newTokens; n++) {
      long t = ids.size(1);
      Map<String, INDArray> in = Map.of(Llama.INPUT_IDS, ids, Llama.ATTENTION_MASK,
          Nd4j.ones(DataType.INT64, b, t));
      INDArray logits = sd.output(in, Llama.LOGITS).get(Llama.LOGITS);                // [b, t, V]
      INDArray last = logits.get(NDArrayIndex.all(), NDArrayIndex.point(t - 1), NDArrayIndex.all()); // [b, V]
      INDArray next = Nd4j.argMax(last, 1).castTo(DataType.INT64).reshape(b, 1);      // [b, 1]
      for (int r = 0; r < b; r++) {
        generated[r][n] = next.getLong(r, 0);
      }
      ids = Nd4j.concat(1, ids, next);                                                // [b, t + 1]
    }
    return generated;
  }

  /** Weights at 4 bytes a parameter plus the logits, the largest tensor of a forward: b·s·V floats. */
  static long inferenceEstimate(ParameterBudget budget, int batch, int seq) {
    return 4 * (budget.totalParameters() + (long) batch * seq * budget.shape().vocab());
  }

  private static void report(String name, int batch, double[] ms, long tokensPerRep, long estimateBytes,
      double buildSeconds, String extra) {
    double[] sorted = ms.clone();
    Arrays.sort(sorted);
    double median = sorted.length % 2 == 1 ? sorted[sorted.length / 2]
        : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
    List<String> each = new ArrayList<>();
    for (double m : ms) {
      each.add(String.format(Locale.ROOT, "%.0f", m));
    }
    System.out.printf(Locale.ROOT, "RESULT impl=peft4j config=%s batch=%d median_ms=%.0f tokens_per_s=%.2f "
            + "reps_ms=%s peak_rss_mib=%d built_rss_mib=%d estimate_mib=%d build_s=%.1f %s%n", name, batch, median,
        tokensPerRep * 1000 / median, String.join(",", each), PeakMemory.peakBytes() >> 20, builtRss >> 20,
        estimateBytes >> 20, buildSeconds, extra);
  }

  private static void checkFinite(double v) {
    if (!Double.isFinite(v)) {
      throw new IllegalStateException("the forward produced a non-finite logit: " + v);
    }
  }

  /** Token ids in [1000, vocab) from a seeded generator, a full attention mask: {@code [batch, seq]} each. */
  static Map<String, INDArray> promptBatch(int batch, int seq, int vocab) {
    SplittableRandom random = new SplittableRandom(SEED + batch * 1000L + seq);
    long[] ids = new long[batch * seq];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = 1000 + random.nextInt(vocab - 1000);
    }
    return Map.of(Llama.INPUT_IDS, Nd4j.createFromArray(ids).reshape(batch, seq), Llama.ATTENTION_MASK,
        Nd4j.ones(DataType.INT64, batch, seq));
  }

  /** {@link #promptBatch} with the ids as labels (the graph shifts them, as transformers does). */
  static Map<String, INDArray> causalLmBatch(int batch, int seq, int vocab) {
    Map<String, INDArray> in = promptBatch(batch, seq, vocab);
    return Map.of(Llama.INPUT_IDS, in.get(Llama.INPUT_IDS), Llama.ATTENTION_MASK, in.get(Llama.ATTENTION_MASK),
        Llama.LABELS, in.get(Llama.INPUT_IDS).dup());
  }

  private static int option(List<String> options, String name, int fallback) {
    int i = options.indexOf(name);
    if (i >= 0 && i + 1 >= options.size()) {
      throw new IllegalArgumentException(name + " needs a number after it");
    }
    return i < 0 ? fallback : Integer.parseInt(options.get(i + 1));
  }
}
