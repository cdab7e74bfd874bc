package dev.peft4j.spark;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.HfModels;
import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.SparkEnv;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The scoring model of this JVM: the base model with every adapter of one {@link ScoringConfig} loaded, kept while
 * scorers of an equal config run, so that an executor loads it once however many tasks and batches it scores. One
 * slot: a scorer of another config replaces it (and the old model is left to the garbage collector), which keeps an
 * executor's memory at one model. Tasks running at once in the JVM share the model: {@link PeftModel#output} runs
 * concurrently, {@link PeftModel#outputMixed} one batch at a time.
 */
final class ScoringModels {

  /** Models loaded by this JVM, for the tests' proof that an executor loads once. */
  static final AtomicInteger LOADS = new AtomicInteger();

  private static ScoringConfig loadedFor;
  private static PeftModel loaded;

  private ScoringModels() {}

  /**
   * The model for {@code config}, loaded on first use.
   *
   * @throws IOException naming this executor and host, with {@code HfModels.loadTask}'s or {@code Peft.load}'s
   *     message, if the model or an adapter directory cannot be read
   * @throws IllegalArgumentException the same way, if an adapter does not fit the model or the model has no
   *     {@code input_ids} placeholder or no {@code config.output()} variable
   */
  static synchronized PeftModel get(ScoringConfig config) throws IOException {
    if (!config.equals(loadedFor)) {
      loaded = null; // the old model goes before the new one is built: one model's memory at a time
      loadedFor = null;
      loaded = load(config);
      loadedFor = config;
      LOADS.incrementAndGet();
    }
    return loaded;
  }

  private static PeftModel load(ScoringConfig config) throws IOException {
    SameDiff base;
    try {
      base = HfModels.loadTask(Path.of(config.modelDir())).sameDiff();
    } catch (IOException e) {
      throw new IOException(where() + "cannot load the model " + config.modelDir() + ": " + e.getMessage(), e);
    } catch (IllegalArgumentException | IllegalStateException e) {
      throw new IllegalArgumentException(where() + "cannot load the model " + config.modelDir() + ": "
          + e.getMessage(), e);
    }
    if (!base.hasVariable(Bert.INPUT_IDS) || !base.hasVariable(config.output().variable())) {
      throw new IllegalArgumentException(String.format("%sthe model %s is not a sequence classifier: scoring needs "
          + "an '%s' input and a '%s' output", where(), config.modelDir(), Bert.INPUT_IDS, config.output().variable()));
    }
    PeftModel model = PeftModel.wrap(base);
    for (Map.Entry<String, String> a : config.adapters().entrySet()) {
      try {
        Peft.loadAdapter(model, a.getKey(), Path.of(a.getValue()));
      } catch (IOException e) {
        throw new IOException(String.format("%sadapter '%s': %s", where(), a.getKey(), e.getMessage()), e);
      } catch (IllegalArgumentException | IllegalStateException e) {
        throw new IllegalArgumentException(String.format("%sadapter '%s': %s", where(), a.getKey(),
            e.getMessage()), e);
      }
    }
    model.eval();
    return model;
  }

  /** "executor 3 on host-a: " — which JVM failed, since a cluster's executors may see different file systems. */
  private static String where() {
    String executor = SparkEnv.get() == null ? "(no Spark)" : SparkEnv.get().executorId();
    String host;
    try {
      host = InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      host = "(unknown host)";
    }
    return "executor " + executor + " on " + host + ": ";
  }
}
