package dev.peft4j.spark;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.HfModels;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Builds a scoring model on a JVM: the task model of the checkpoint ({@code HfModels.loadTask}: the head
 * {@code config.json}'s {@code architectures} names), then each adapter directory with {@code Peft.loadAdapter}
 * under its name, in order (the first is active), in eval mode.
 */
final class TaskModelWithAdapters implements ModelSource.ModelBuilder {

  private static final long serialVersionUID = 1L;

  private final LinkedHashMap<String, String> adapters;

  /** @param adapters adapter name → a directory every executor can read, in load order */
  TaskModelWithAdapters(Map<String, String> adapters) {
    this.adapters = new LinkedHashMap<>(adapters);
  }

  /**
   * @throws IOException naming the adapter and its directory, with {@code Peft.load}'s message, if an adapter cannot
   *     be read or does not fit the model (both are the executor's configuration problem, which
   *     {@link ExecutorModels} reports naming the executor)
   */
  @Override
  public PeftModel build(Path checkpoint) throws IOException {
    PeftModel model = PeftModel.wrap(HfModels.loadTask(checkpoint).sameDiff());
    for (Map.Entry<String, String> a : adapters.entrySet()) {
      try {
        Peft.loadAdapter(model, a.getKey(), Path.of(a.getValue()));
      } catch (IOException | IllegalArgumentException | IllegalStateException e) {
        throw new IOException(String.format("adapter '%s': %s", a.getKey(), e.getMessage()), e);
      }
    }
    model.eval();
    return model;
  }
}
