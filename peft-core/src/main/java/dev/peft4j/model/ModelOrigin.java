package dev.peft4j.model;

import com.google.common.collect.MapMaker;
import dev.peft4j.TaskType;
import java.util.Map;
import java.util.Optional;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * Where a graph came from, as Hugging Face PEFT records it in {@code adapter_config.json}: the checkpoint's name
 * ({@code base_model_name_or_path}) and the task of its head ({@code task_type}). {@link HfModels} and {@link Heads}
 * record it when they build a graph; {@code PeftModel.wrap} reads it, so a saved adapter names its base without the
 * caller repeating it. Graphs are held weakly and by identity.
 *
 * @param nameOrPath the checkpoint's {@code _name_or_path} or directory; null when unknown (a graph built from
 *     weights in memory)
 * @param taskType   the head's task; null when unknown
 */
public record ModelOrigin(String nameOrPath, TaskType taskType) {

  private static final Map<SameDiff, ModelOrigin> ORIGINS = new MapMaker().weakKeys().makeMap();

  /** Records (replaces) the origin of {@code sd}. */
  static void record(SameDiff sd, String nameOrPath, TaskType taskType) {
    ORIGINS.put(sd, new ModelOrigin(nameOrPath, taskType));
  }

  /** The origin recorded for {@code sd}, if any. */
  public static Optional<ModelOrigin> of(SameDiff sd) {
    return Optional.ofNullable(ORIGINS.get(sd));
  }
}
