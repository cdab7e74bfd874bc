package dev.peft4j.methods;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import dev.peft4j.ModulesToSave;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.io.AdapterFiles;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Fits an adapter file saved on one Hugging Face model class to the graph it is loaded on, as {@code HfCheckpoint}
 * fits checkpoints: the same encoder is {@code encoder.…} in {@code BertModel} and {@code bert.encoder.…} in
 * {@code BertForSequenceClassification} (decoders: {@code layers.…} / {@code model.layers.…}), so tensor keys and
 * the module lists of the config ({@code target_modules}, {@code modules_to_save}) are renamed to the graph's
 * names by adding or removing one such prefix where that names a module the graph has. Then refuses a task adapter
 * whose head the graph lacks, or whose head has another label count.
 */
final class TaskAdapterFiles {

  /** The base-model prefixes of Hugging Face's task models ({@code base_model_prefix}). */
  static final List<String> PREFIXES = List.of("bert.", "roberta.", "distilbert.", "model.");

  private final Set<String> modules;

  private TaskAdapterFiles(SameDiff sd) {
    this.modules = new HashSet<>(GraphRewriter.of(sd).moduleNames());
  }

  /**
   * The adapter read from a file, renamed to {@code sd}'s module names and checked against its head.
   *
   * @throws IllegalArgumentException naming the head and the task, if the adapter trains a head the graph does not
   *     have; naming both label counts, if the graph's head has another
   */
  static AdapterFiles.Read fit(SameDiff sd, AdapterFiles.Read read) {
    TaskAdapterFiles f = new TaskAdapterFiles(sd);
    Map<String, INDArray> tensors = new LinkedHashMap<>();
    read.tensors().forEach((k, v) -> tensors.put(f.key(k), v));
    JsonObject config = read.config().deepCopy();
    for (String field : List.of("target_modules", "modules_to_save")) {
      if (config.has(field) && config.get(field).isJsonArray()) {
        JsonArray renamed = new JsonArray();
        for (JsonElement e : config.getAsJsonArray(field)) {
          renamed.add(e.isJsonPrimitive() ? new JsonPrimitive(f.entry(e.getAsString())) : e); // the reader refuses e
        }
        config.add(field, renamed);
      }
    }
    f.checkHeads(sd, config, tensors);
    return new AdapterFiles.Read(config, tensors);
  }

  /** A tensor key {@code <module>.<rest>} under the graph's name of its module; unchanged when none fits. */
  private String key(String key) {
    if (ownerOf(key) != null) {
      return key;
    }
    for (String p : PREFIXES) {
      if (key.startsWith(p) && ownerOf(key.substring(p.length())) != null) {
        return key.substring(p.length());
      }
      if (ownerOf(p + key) != null) {
        return p + key;
      }
    }
    return key;
  }

  /** The longest module of the graph that {@code key} starts with (followed by a dot), or null. */
  private String ownerOf(String key) {
    for (int dot = key.lastIndexOf('.'); dot > 0; dot = key.lastIndexOf('.', dot - 1)) {
      if (modules.contains(key.substring(0, dot))) {
        return key.substring(0, dot);
      }
    }
    return null;
  }

  /** A module list entry (an exact name or a {@code .name} suffix, HF's rule) under the graph's naming. */
  private String entry(String name) {
    if (matches(name)) {
      return name;
    }
    for (String p : PREFIXES) {
      if (name.startsWith(p) && matches(name.substring(p.length()))) {
        return name.substring(p.length());
      }
      if (matches(p + name)) {
        return p + name;
      }
    }
    return name;
  }

  private static boolean isString(JsonElement e) {
    return e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isString();
  }

  /** Whether a module of the graph is {@code name} (exact or {@code .name} suffix) or lies under it. */
  private boolean matches(String name) {
    return modules.stream().anyMatch(m -> ModulesToSave.within(m, name));
  }

  /**
   * A {@code modules_to_save} head the file holds tensors for must exist in the graph with the same label count.
   * Entries without tensors ({@code score} beside {@code classifier}) are HF's defaults and are skipped.
   */
  private void checkHeads(SameDiff sd, JsonObject config, Map<String, INDArray> tensors) {
    if (!config.has("modules_to_save") || !config.get("modules_to_save").isJsonArray()) {
      return;
    }
    // the fields' types are checked by the method's reader after this; anything but a string is left to it here
    String task = isString(config.get("task_type")) ? config.get("task_type").getAsString() : "none";
    for (JsonElement e : config.getAsJsonArray("modules_to_save")) {
      if (!isString(e)) {
        continue;
      }
      String head = e.getAsString();
      // its linear weights: <head>.weight (BERT's classifier, Llama's score) or <head>.<sub>.weight (RoBERTa's
      // classifier.dense, classifier.out_proj)
      List<String> weights = tensors.keySet().stream()
          .filter(k -> k.equals(head + ".weight") || k.startsWith(head + ".") && k.endsWith(".weight")).toList();
      if (weights.isEmpty()) {
        continue;
      }
      if (!matches(head)) {
        throw new IllegalArgumentException(String.format("the adapter trains a head '%s' (task_type %s) that this "
            + "model does not have; load it on the task model (HfModels.loadTask, Heads.bertForSequenceClassification, "
            + "Heads.robertaForSequenceClassification, Heads.llamaForSequenceClassification, …)", head, task));
      }
      for (String weight : weights) {
        long[] saved = tensors.get(weight).shape();                        // [labels, in], PyTorch's layout
        INDArray own = sd.hasVariable(weight) ? sd.getArrForVarName(weight) : null;  // [in, labels]
        if (own != null && saved.length == 2 && own.rank() == 2 && saved[1] == own.size(0)
            && saved[0] != own.size(1)) {
          throw new IllegalArgumentException(String.format("the adapter's head '%s' has %s labels; this model's has %s",
              head, saved[0], own.size(1)));
        }
      }
    }
  }
}
