package dev.peft4j.hybrid;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.peft4j.AbstractMergeableAdapter;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.ModulesToSave;
import dev.peft4j.PeftModel;
import dev.peft4j.Targets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.BiFunction;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of a hybrid adapter: several methods' configs applied as one adapter; built by
 * {@code Peft.hybrid(parts...)}.
 *
 * <pre>{@code
 * PeftModel m = Peft.hybrid(
 *         Peft.lora(8).target("q_proj", "v_proj").build(),
 *         Peft.bottleneck(16).afterFfnOnly().build())
 *     .modulesToSave("classifier")
 *     .apply(sameDiff);
 * }</pre>
 *
 * <p>Any {@link AdapterConfig} can be a part. The adapter it makes is a {@link MergeableHybrid} when every part's
 * adapter is an {@link AbstractMergeableAdapter}, otherwise a {@link Hybrid}, which {@link PeftModel#mergeAndUnload()}
 * refuses, naming this config.
 *
 * @see Hybrid
 */
public final class HybridConfig implements AdapterConfig {

  private final List<AdapterConfig> parts;
  private final List<String> modulesToSave;

  private HybridConfig(List<AdapterConfig> parts, List<String> modulesToSave) {
    this.parts = parts;
    this.modulesToSave = modulesToSave;
  }

  /** A builder for a hybrid of {@code parts}, applied in this order; validated in {@link Builder#build()}. */
  public static Builder builder(AdapterConfig... parts) {
    return new Builder(parts);
  }

  @Override
  public String peftType() {
    return "HYBRID";
  }

  /** The parts' configs, in the order they are applied. */
  public List<AdapterConfig> parts() {
    return parts;
  }

  /**
   * Not one {@link Targets}: each part has its own ({@code parts().get(i).targets()}), of different kinds (a LoRA
   * part's linear layers, a bottleneck part's insertion points, none for prompt tuning).
   *
   * @throws UnsupportedOperationException always
   */
  @Override
  public Targets targets() {
    throw new UnsupportedOperationException("a hybrid adapter has one set of targets per part: parts().get(i)"
        + ".targets(); parts: " + parts);
  }

  /** Modules trained in full beside all parts and saved with them; the parts themselves have none. */
  @Override
  public List<String> modulesToSave() {
    return modulesToSave;
  }

  /** Whether the adapter this config makes can be merged: every part's adapter merges. */
  public boolean isMergeable() {
    return parts.stream().allMatch(HybridConfig::merges);
  }

  /** Whether {@code part}'s adapters merge (a fresh adapter is a plain object; nothing is applied). */
  private static boolean merges(AdapterConfig part) {
    return part.newAdapter("probe") instanceof AbstractMergeableAdapter;
  }

  /** The sum of the parts' counts, plus the modules to save. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    return parts.stream().mapToLong(p -> p.parameterCount(sameDiff)).sum()
        + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /** {@code peft_type: "HYBRID"} and {@code parts}, the list of the parts' own configs, in order. */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = new LinkedHashMap<>();
    hf.put("peft_type", peftType());
    hf.put("parts", parts.stream().map(AdapterConfig::toHfConfig).toList());
    hf.put("modules_to_save", modulesToSave.isEmpty() ? null : modulesToSave);
    hf.put("task_type", null);
    hf.put("inference_mode", true);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("peft_type", "parts", "modules_to_save", "task_type",
      "inference_mode", "base_model_name_or_path", "revision", "peft_version");

  /**
   * A config from the {@code adapter_config.json} that {@link #toHfConfig()} writes. Each part is read by
   * {@code readPart} (the same reader that reads a whole file, so any method peft4j loads can be a part); unknown
   * fields are returned in {@code ignored}, those of part i as {@code parts[i].<field>}.
   *
   * @throws IllegalArgumentException naming the field, if {@code parts} is missing or not a list of objects, or a
   *     part is refused by its reader
   */
  public static HybridConfig fromHf(JsonObject json, Set<String> ignored,
      BiFunction<JsonObject, Set<String>, AdapterConfig> readPart) {
    json.keySet().stream().filter(k -> !KNOWN_FIELDS.contains(k)).forEach(ignored::add);
    JsonElement partsField = json.get("parts");
    checkArgument(partsField != null && partsField.isJsonArray(), "parts must be a list of adapter configs, got %s",
        partsField);
    List<AdapterConfig> parts = new ArrayList<>();
    List<JsonElement> elements = partsField.getAsJsonArray().asList();
    for (int i = 0; i < elements.size(); i++) {
      checkArgument(elements.get(i).isJsonObject(), "parts[%s] must be an adapter config object, got %s", i,
          elements.get(i));
      Set<String> partIgnored = new TreeSet<>();
      try {
        parts.add(readPart.apply(elements.get(i).getAsJsonObject(), partIgnored));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("parts[" + i + "]: " + e.getMessage(), e);
      }
      for (String field : partIgnored) {
        ignored.add("parts[" + i + "]." + field);
      }
    }
    Builder b = builder(parts.toArray(AdapterConfig[]::new));
    JsonElement save = json.get("modules_to_save");
    if (save != null && !save.isJsonNull()) {
      checkArgument(save.isJsonArray(), "modules_to_save must be a list of strings, got %s", save);
      b.modulesToSave(save.getAsJsonArray().asList().stream().map(JsonElement::getAsString).toArray(String[]::new));
    }
    return b.build();
  }

  /**
   * A {@link MergeableHybrid} when every part merges, else a {@link Hybrid}; part i is the part's own adapter named
   * {@code <adapterName>/part<i>}, so its variables live under {@code peft/<adapterName>/part<i>/<method>/}.
   */
  @Override
  public Adapter newAdapter(String adapterName) {
    List<Adapter> adapters = new ArrayList<>();
    for (int i = 0; i < parts.size(); i++) {
      adapters.add(parts.get(i).newAdapter(adapterName + "/part" + i));
    }
    boolean mergeable = adapters.stream().allMatch(a -> a instanceof AbstractMergeableAdapter);
    return mergeable ? new MergeableHybrid(adapterName, this, adapters) : new Hybrid(adapterName, this, adapters);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof HybridConfig c && parts.equals(c.parts) && modulesToSave.equals(c.modulesToSave);
  }

  @Override
  public int hashCode() {
    return Objects.hash(parts, modulesToSave);
  }

  /** The parts, each marked mergeable or not, so that a refused merge says which part cannot merge. */
  @Override
  public String toString() {
    List<String> described = new ArrayList<>();
    for (AdapterConfig p : parts) {
      described.add(p + (merges(p) ? " (mergeable)" : " (not mergeable)"));
    }
    return "HybridConfig{parts=" + described + ", modulesToSave=" + modulesToSave + "}";
  }

  /** Builds a {@link HybridConfig}; each option can be set once. */
  public static final class Builder {
    private final AdapterConfig[] parts;
    private List<String> modulesToSave;

    private Builder(AdapterConfig[] parts) {
      this.parts = parts == null ? null : parts.clone();
    }

    /** Modules (e.g. a task head) trained in full beside all parts and saved with them; default none. */
    public Builder modulesToSave(String... modules) {
      checkState(modulesToSave == null, "modules to save were already set to %s", modulesToSave);
      this.modulesToSave = List.of(modules);
      return this;
    }

    /**
     * @throws IllegalArgumentException if there are fewer than two parts, a part is null or itself a hybrid, or a
     *     part has its own modules_to_save (give them to the hybrid)
     */
    public HybridConfig build() {
      checkArgument(parts != null && parts.length >= 2, "a hybrid adapter needs at least 2 parts, got %s",
          parts == null ? 0 : parts.length);
      for (int i = 0; i < parts.length; i++) {
        checkArgument(parts[i] != null, "part %s is null", i);
        checkArgument(!(parts[i] instanceof HybridConfig), "part %s is itself a hybrid; list its parts instead", i);
        checkArgument(parts[i].modulesToSave().isEmpty(), "part %s (%s) has modules_to_save %s; give them to the "
            + "hybrid with modulesToSave(...)", i, parts[i].peftType(), parts[i].modulesToSave());
      }
      return new HybridConfig(List.of(parts), modulesToSave == null ? List.of() : modulesToSave);
    }

    /** {@code build().apply(sameDiff)}. */
    public PeftModel apply(SameDiff sameDiff) {
      return build().apply(sameDiff);
    }
  }
}
