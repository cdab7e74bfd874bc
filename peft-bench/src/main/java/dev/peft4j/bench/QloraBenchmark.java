package dev.peft4j.bench;

import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.lora.LoraConfig;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.PretrainedModels;
import dev.peft4j.quant.Quantization;
import dev.peft4j.quant.QuantizedBase;
import dev.peft4j.quant.QuantizedTensor;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.io.IOException;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * QLoRA on all-MiniLM-L6-v2 with a 2-class mean-pooled head: what storing the base in NF4 saves and costs. A main
 * class, not JMH: peak resident memory is a property of a whole process, so each training configuration runs in a
 * JVM of its own. Three modes:
 * <ul>
 *   <li>{@code codec}: bytes the 36 quantised linear weights keep resident (exact, per parameter; NF4 with and without
 *       double quantisation, 8-bit) and the quantisation error of W (mean and max |W − W'|) on the real weights;
 *   <li>{@code step <lora|qlora-nf4|qlora-nf4-nodq|qlora-int8> [batch] [seq] [steps]}: LoRA r=16 on query and value
 *       plus the classifier, through the trainer (AdamW, its memory guard), over a fixed batch of random tokens
 *       (default 8 × 128, as {@code MiniLmTrainingBenchmark}); prints the median step time after 3 warm-up steps,
 *       the process's peak RSS ({@code VmHWM}), its RSS before training, and the bytes of the graph's variables and
 *       constants (what stays resident between steps);
 *   <li>{@code task <config> [steps]}: the same adapter trained on eight labelled sentences, then accuracy and loss
 *       on eight held-out ones — how much the 4-bit base changes what LoRA learns (a tiny task: read it as a smoke
 *       test of quality, not as a benchmark score).
 * </ul>
 * Commands: see {@code peft-bench/README.md}, section QLoRA.
 */
public final class QloraBenchmark {

  private static final List<String> TRAIN = List.of(
      "I loved this film, it was wonderful.", "What a fantastic, joyful experience.",
      "Absolutely brilliant and moving.", "A delightful story with great acting.",
      "This was terrible and boring.", "I hated every minute of it.",
      "An awful, dull waste of time.", "The worst film I have seen this year.");
  private static final List<String> HELD_OUT = List.of(
      "A wonderful, heartwarming film.", "Great acting and a brilliant story.", "I enjoyed every minute.",
      "Joyful, moving and delightful.", "Boring and far too long.", "A dull, terrible script.",
      "I hated the acting.", "An awful film, a waste of an evening.");
  private static final long[] LABELS = {1, 1, 1, 1, 0, 0, 0, 0};

  private QloraBenchmark() {}

  public static void main(String[] args) throws IOException {
    if (args.length == 0) {
      throw new IllegalArgumentException("usage: codec | step <config> [batch] [seq] [steps] | task <config> [steps]");
    }
    switch (args[0]) {
      case "codec" -> codec();
      case "step" -> step(args[1], arg(args, 2, 8), arg(args, 3, 128), arg(args, 4, 13));
      case "task" -> task(args[1], arg(args, 2, 30));
      default -> throw new IllegalArgumentException("unknown mode '" + args[0] + "'; modes: codec, step, task");
    }
  }

  private static int arg(String[] args, int i, int fallback) {
    return args.length > i ? Integer.parseInt(args[i]) : fallback;
  }

  private static LoraConfig.Builder config(String name) {
    LoraConfig.Builder b = switch (name) {
      case "lora" -> Peft.lora(16);
      case "qlora-nf4" -> Peft.qlora(16);
      case "qlora-nf4-nodq" -> Peft.lora(16).quantizeBase(Quantization.nf4().doubleQuant(false));
      case "qlora-int8" -> Peft.lora(16).quantizeBase(Quantization.int8());
      default -> throw new IllegalArgumentException("unknown config '" + name
          + "'; configs: lora, qlora-nf4, qlora-nf4-nodq, qlora-int8");
    };
    return b.alpha(32).target("query", "value").modulesToSave(Heads.CLASSIFIER).seed(1);
  }

  private static SameDiff classifier(PretrainedModels.Encoder encoder) {
    return Heads.sequenceClassification(encoder.sameDiff(), encoder.config().hiddenSize(), 2, Heads.Pooling.MEAN, 1);
  }

  /** Exact bytes and the error of W on the real weights; deterministic. */
  private static void codec() {
    PretrainedModels.Encoder encoder = PretrainedModels.miniLm(32);
    SameDiff sd = classifier(encoder);
    GraphRewriter g = GraphRewriter.of(sd);
    Set<String> heads = g.outputHeads();
    List<LinearModule> modules = g.linearModules().stream().filter(m -> !heads.contains(m.name())).toList();
    long params = modules.stream().mapToLong(m -> m.inFeatures() * m.outFeatures()).sum();
    Map<String, Quantization> storages = new LinkedHashMap<>();
    storages.put("NF4 + double quantisation", Quantization.nf4());
    storages.put("NF4", Quantization.nf4().doubleQuant(false));
    storages.put("INT8 absmax", Quantization.int8());
    System.out.printf("all-MiniLM-L6-v2: %d linear weights quantised (all but the head), %,d parameters, "
        + "fp32 %,d bytes (4.0000 B/param)%n", modules.size(), params, 4 * params);
    System.out.println("| storage | resident bytes | bytes/param | vs fp32 | mean abs error of W "
        + "| max abs error of W | mean abs error / mean |W| |");
    System.out.println("|---|---|---|---|---|---|---|");
    double meanAbsW = 0;
    for (LinearModule m : modules) {
      meanAbsW += sd.getArrForVarName(m.weight()).ameanNumber().doubleValue() * m.inFeatures() * m.outFeatures();
    }
    meanAbsW /= params;
    for (Map.Entry<String, Quantization> e : storages.entrySet()) {
      long bytes = 0;
      double sumError = 0;
      double maxError = 0;
      for (LinearModule m : modules) {
        INDArray w = sd.getArrForVarName(m.weight()).transpose().dup('c');         // [out, in]
        QuantizedTensor t = e.getValue().quantize(w);
        bytes += t.residentBytes();
        float[] original = w.data().asFloat();
        float[] back = t.dequantize();
        for (int i = 0; i < original.length; i++) {
          double err = Math.abs(original[i] - back[i]);
          sumError += err;
          maxError = Math.max(maxError, err);
        }
      }
      System.out.printf("| %s | %,d | %.4f | %.2f%% | %.3e | %.3e | %.4f |%n", e.getKey(), bytes,
          (double) bytes / params, 100.0 * bytes / (4.0 * params), sumError / params, maxError,
          sumError / params / meanAbsW);
    }
    encoder.tokenizer().close();
  }

  /** One training configuration; run each in a JVM of its own (peak RSS is per process). */
  private static void step(String name, int batch, int seq, int steps) {
    PretrainedModels.Encoder encoder = PretrainedModels.miniLm(seq);
    SameDiff sd = classifier(encoder);
    encoder.tokenizer().close();
    PeftModel model = config(name).apply(sd);
    long packed = QuantizedBase.residentBytes(sd);
    List<Batch> data = List.of(randomBatch(batch, seq));
    long graphBytes = graphBytes(sd);
    long rssBefore = PeakMemory.residentBytes();
    TrainingHistory h = Trainer.builder(model).steps(steps).learningRate(1e-4).seed(1).progress(null).build()
        .fit(data);
    long peak = PeakMemory.peakBytes();
    double[] seconds = h.steps().stream().skip(3).mapToDouble(TrainingHistory.Step::seconds).sorted().toArray();
    System.out.printf("%s batch %d x %d: median step %.0f ms (min %.0f, max %.0f, %d steps after 3 warm-up); "
            + "peak RSS %,d MiB; RSS before training %,d MiB; graph arrays %,d bytes (updater state %,d); "
            + "packed base %,d bytes; loss %.4f -> %.4f%n",
        name, batch, seq, 1000 * seconds[seconds.length / 2], 1000 * seconds[0], 1000 * seconds[seconds.length - 1],
        seconds.length, peak >> 20, rssBefore >> 20, graphBytes, h.updaterStateBytes(), packed, h.firstLoss(),
        h.lastLoss());
  }

  /**
   * Bytes of the arrays the graph holds between steps: its variables and constants (base weights — packed or fp32 —,
   * adapter, head, code tables), not the activations of a step. ND4J allocates outside JavaCPP's accounting, and freed
   * native memory need not leave the RSS, so this count is the clean figure of what stays resident.
   */
  private static long graphBytes(SameDiff sd) {
    long bytes = 0;
    for (var v : sd.variables()) {
      if ((v.getVariableType() == VariableType.VARIABLE || v.getVariableType() == VariableType.CONSTANT)
          && v.getArr() != null) {
        bytes += v.getArr().length() * v.getArr().dataType().width();
      }
    }
    return bytes;
  }

  /** Trains on {@link #TRAIN}, reports accuracy and mean loss on {@link #HELD_OUT}. */
  private static void task(String name, int steps) {
    PretrainedModels.Encoder encoder = PretrainedModels.miniLm(32);
    SameDiff sd = classifier(encoder);
    PeftModel model = config(name).apply(sd);
    Batch train = labelled(encoder, TRAIN);
    Batch heldOut = labelled(encoder, HELD_OUT);
    TrainingHistory h = Trainer.builder(model).steps(steps).learningRate(2e-3).seed(1).progress(null).build()
        .fit(List.of(train));
    model.eval();
    Map<String, INDArray> out = sd.output(heldOut.inputs(), Heads.LOGITS, Heads.LOSS);
    INDArray predicted = out.get(Heads.LOGITS).argMax(1);
    int correct = 0;
    for (int i = 0; i < LABELS.length; i++) {
      correct += predicted.getLong(i) == LABELS[i] ? 1 : 0;
    }
    System.out.printf("%s: train loss %.4f -> %.4f over %d steps; held-out accuracy %d/%d, loss %.4f%n", name,
        h.firstLoss(), h.lastLoss(), steps, correct, LABELS.length, out.get(Heads.LOSS).getDouble(0));
    encoder.tokenizer().close();
  }

  private static Batch labelled(PretrainedModels.Encoder encoder, List<String> texts) {
    var encoded = encoder.tokenizer().encode(texts);
    Map<String, INDArray> inputs = new HashMap<>(encoded.bertInputs());
    inputs.put(Heads.LABELS, Nd4j.createFromArray(LABELS));
    return new Batch(inputs, encoded.tokens());
  }

  /** A fixed batch of random in-vocabulary tokens between [CLS] and [SEP], labels alternating. */
  private static Batch randomBatch(int batch, int seq) {
    Random random = new Random(1);
    long[][] ids = new long[batch][seq];
    long[][] mask = new long[batch][seq];
    long[] labels = new long[batch];
    for (int b = 0; b < batch; b++) {
      for (int t = 0; t < seq; t++) {
        ids[b][t] = t == 0 ? 101 : t == seq - 1 ? 102 : 1000 + random.nextInt(28000);
        mask[b][t] = 1;
      }
      labels[b] = b % 2;
    }
    Map<String, INDArray> inputs = new HashMap<>();
    inputs.put(Bert.INPUT_IDS, Nd4j.createFromArray(ids));
    inputs.put(Bert.ATTENTION_MASK, Nd4j.createFromArray(mask));
    inputs.put(Bert.TOKEN_TYPE_IDS, Nd4j.zeros(DataType.INT64, batch, seq));
    inputs.put(Heads.LABELS, Nd4j.createFromArray(labels));
    return new Batch(inputs, (long) batch * seq);
  }
}
