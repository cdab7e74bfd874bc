package dev.peft4j.spark;

import dev.peft4j.PeftModel;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;

/**
 * The models of one JVM (an executor, or the driver in local mode), built once per {@link ModelSource} and kept for
 * every later task of that source.
 *
 * <p>One model per source and JVM: tasks of the same source running at once in one executor take turns with it
 * ({@link #with} holds the model's exclusive access). Run one task per executor ({@code spark.task.cpus} equal to
 * {@code spark.executor.cores}) and let ND4J use the cores within each op; then no task waits and the executor holds
 * one copy of the base model.
 *
 * <p>Before building, the source is checked against this JVM: the same peft4j version as the driver's, and a
 * readable checkpoint path; a failure names the executor and its host (Spark shows the message in its job failure,
 * and {@link SparkFailures#unwrap} gives it back without Spark's wrapping). A build that failed is not cached: the
 * next task tries again.
 */
final class ExecutorModels {

  private static final Map<String, PeftModel> MODELS = new ConcurrentHashMap<>();

  private ExecutorModels() {}

  /**
   * Runs {@code work} with this JVM's model of {@code source} (built on first use) while holding its exclusive access.
   *
   * @throws IllegalStateException naming this executor and its host, if the peft4j versions differ, the checkpoint
   *     path cannot be read, or the model cannot be built from it
   */
  static <T> T with(ModelSource source, Function<PeftModel, T> work) {
    PeftModel model = MODELS.computeIfAbsent(source.id(), id -> build(source));
    try (var only = model.exclusive()) {
      return work.apply(model);
    }
  }

  /** Whether this JVM holds a model of {@code source} (for tests: built once per JVM). */
  static boolean holds(ModelSource source) {
    return MODELS.containsKey(source.id());
  }

  /** Drops this JVM's model of {@code source}, if any, so that its memory can go. */
  static void evict(ModelSource source) {
    MODELS.remove(source.id());
  }

  private static PeftModel build(ModelSource source) {
    String local = ModelSource.localVersion();
    if (!local.equals(source.driverVersion())) {
      throw new IllegalStateException(String.format("peft4j versions differ: the driver runs %s, %s runs %s; ship "
          + "the same peft4j jars to the driver and the executors (the application jar or --jars)",
          source.driverVersion(), executor(), local));
    }
    Path checkpoint;
    if (source.path() != null) {
      Path dir = Path.of(source.path());
      String problem = !Files.exists(dir) ? "it does not exist" : !Files.isDirectory(dir) ? "it is not a directory"
          : !Files.isReadable(dir) ? "it is not readable" : null;
      if (problem != null) {
        throw new IllegalStateException(String.format("%s cannot read the model path %s: %s (every executor must be "
            + "able to read it: a shared file system mounted at the same path, or ModelSource.files for small "
            + "models)", executor(), dir, problem));
      }
      checkpoint = dir;
    } else {
      try {
        checkpoint = source.checkpoint();
      } catch (IOException e) {
        throw new IllegalStateException(String.format("%s could not write the carried checkpoint files to a "
            + "temporary directory: %s", executor(), e.getMessage()), e);
      }
    }
    try {
      PeftModel model = source.builder().build(checkpoint);
      if (model == null) {
        throw new IllegalStateException(String.format("%s: the model builder of %s returned null", executor(),
            source));
      }
      return model;
    } catch (IOException e) {
      throw new IllegalStateException(String.format("%s could not load the model from %s: %s", executor(),
          source.path() != null ? source.path() : source.toString(), e.getMessage()), e);
    }
  }

  /** "executor 3 on host worker-7", from Spark's environment when this JVM runs Spark, else the host alone. */
  static String executor() {
    String host;
    try {
      host = InetAddress.getLocalHost().getHostName();
    } catch (IOException e) {
      host = "(unknown host)";
    }
    SparkEnv env = SparkEnv.get();
    String id = env == null ? null : env.executorId();
    TaskContext task = TaskContext.get();
    String where = id == null ? "this JVM (no Spark executor)" : "executor " + id;
    String attempt = task == null ? "" : String.format(" (task of partition %s, attempt %s)", task.partitionId(),
        task.attemptNumber());
    return where + " on host " + host + attempt;
  }
}
