package dev.peft4j;

import com.google.gson.JsonObject;
import dev.peft4j.io.JsonFields;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Hugging Face PEFT's {@code adapter_config.json} fields that every method shares, written and read in one place:
 * {@code peft_type}, {@code task_type}, {@code inference_mode}, the targeting fields ({@code target_modules},
 * {@code exclude_modules}, {@code layers_to_transform}, {@code modules_to_save}) and the bookkeeping fields HF adds
 * ({@code base_model_name_or_path}, {@code revision}, {@code peft_version}, {@code auto_mapping}).
 */
public final class HfConfig {

  /** The fields every method's file may hold; a method's reader knows them without listing them. */
  public static final Set<String> COMMON_FIELDS = Set.of("peft_type", "task_type", "inference_mode",
      "base_model_name_or_path", "revision", "peft_version", "auto_mapping", "target_modules", "exclude_modules",
      "layers_to_transform", "modules_to_save");

  private HfConfig() {}

  /**
   * The fields of {@code json}, with every field that is neither common nor one of {@code methodFields} (fields of
   * newer PEFT versions) added to {@code ignored}. The common bookkeeping fields peft4j does not use are still
   * type-checked, so that a file with {@code "inference_mode": [1]} is refused rather than half-understood.
   *
   * @throws IllegalArgumentException naming a common field of the wrong JSON type
   */
  public static JsonFields read(JsonObject json, Set<String> ignored, Set<String> methodFields) {
    JsonFields f = JsonFields.of(json);
    f.unknown(COMMON_FIELDS).stream().filter(k -> !methodFields.contains(k)).forEach(ignored::add);
    for (String field : List.of("peft_type", "task_type", "base_model_name_or_path", "revision", "peft_version")) {
      f.string(field, (String) null);
    }
    f.bool("inference_mode", true);
    f.object("auto_mapping");
    return f;
  }

  /** A config map holding {@code peft_type}, {@code task_type: null} and {@code inference_mode: true}. */
  public static Map<String, Object> of(String peftType) {
    Map<String, Object> hf = new LinkedHashMap<>();
    hf.put("peft_type", peftType);
    hf.put("task_type", null);
    hf.put("inference_mode", true);
    return hf;
  }

  /**
   * Writes {@code target_modules} ({@code null} for a method's default targets, a regex string, {@code "all-linear"}
   * or the list of names) and {@code exclude_modules} (a list, or null), and with {@code withLayers} also
   * {@code layers_to_transform}.
   */
  public static void putTargets(Map<String, Object> hf, Targets targets, boolean withLayers) {
    hf.put("target_modules", targets == null ? null : targets.regex().<Object>map(x -> x)
        .orElse(targets.isAllLinear() ? Targets.ALL_LINEAR : targets.entries()));
    hf.put("exclude_modules", targets == null ? null : listOrNull(targets.excluded()));
    if (withLayers) {
      hf.put("layers_to_transform", targets == null ? null : listOrNull(List.copyOf(targets.layers())));
    }
  }

  /** Writes {@code modules_to_save}: the list, or null when empty. */
  public static void putModulesToSave(Map<String, Object> hf, List<String> modulesToSave) {
    hf.put("modules_to_save", listOrNull(modulesToSave));
  }

  /** {@code list}, or null when it is empty (HF writes null for an absent list). */
  public static Object listOrNull(List<?> list) {
    return list.isEmpty() ? null : list;
  }
}
