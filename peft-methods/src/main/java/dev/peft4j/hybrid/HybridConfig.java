package dev.peft4j.hybrid;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.peft4j.AbstractMergeableAdapter;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.ConfigBuilder;
import dev.peft4j.HfConfig;
import dev.peft4j.ModulesToSave;
import dev.peft4j.Targets;
import dev.peft4j.io.JsonFields;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.BiFunction;
import java.util.stream.IntStream;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of a hybrid adapter: several methods' configs applied as one adapter; built by
 * {@code Peft.hybrid(parts...)}.
 *
 * <pre>{@code
 * PeftModel m = Peft.hybrid(Peft.lora(8).target("q_proj", "v_proj").build(), Peft.ia3().target("k_proj").build())
 *     .modulesToSave("classifier").apply(sameDiff);
 * }</pre>
 *
 * <p>Any {@link AdapterConfig} can be a part. The adapter it makes is a {@link MergeableHybrid} when every part's
 * adapter is an {@link AbstractMergeableAdapter}, otherwise a {@link Hybrid}, which
 * {@link dev.peft4j.PeftModel#mergeAndUnload()} refuses, naming this config.
 *
 * @param parts         the parts' configs, in the order they are applied
 * @param modulesToSave modules trained in full beside all parts and saved with them; the parts themselves have none
 * @see Hybrid
 */
public record HybridConfig(List<AdapterConfig> parts, List<String> modulesToSave) implements AdapterConfig {

  /**
   * @throws IllegalArgumentException if there are fewer than two parts, a part is null or itself a hybrid, or a
   *     part has its own modules_to_save (give them to the hybrid)
   */
  public HybridConfig {
    checkArgument(parts != null && parts.size() >= 2, "a hybrid adapter needs at least 2 parts, got %s",
        parts == null ? 0 : parts.size());
    for (int i = 0; i < parts.size(); i++) {
      AdapterConfig part = parts.get(i);
      checkArgument(part != null, "part %s is null", i);
      checkArgument(!(part instanceof HybridConfig), "part %s is itself a hybrid; list its parts instead", i);
      checkArgument(part.modulesToSave().isEmpty(), "part %s (%s) has modules_to_save %s; give them to the hybrid "
          + "with modulesToSave(...)", i, part.peftType(), part.modulesToSave());
    }
    parts = List.copyOf(parts);
    modulesToSave = List.copyOf(modulesToSave);
  }

  /** A builder for a hybrid of {@code parts}, applied in this order; validated in {@link Builder#build()}. */
  public static Builder builder(AdapterConfig... parts) {
    return new Builder(parts);
  }

  @Override
  public String peftType() {
    return "HYBRID";
  }

  /**
   * Not one {@link Targets}: each part has its own, of different kinds (a LoRA part's linear layers, a bottleneck
   * part's insertion points, none for prompt tuning); throws {@link UnsupportedOperationException}.
   */
  @Override
  public Targets targets() {
    throw new UnsupportedOperationException("a hybrid adapter has one set of targets per part: parts().get(i)"
        + ".targets(); parts: " + parts);
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

  /**
   * {@code peft_type: "HYBRID"}, {@code parts} (the list of the parts' own configs, in order, each with its keys
   * sorted as the file's top level is, so that the file does not depend on the order in which a config fills its
   * map) and the modules to save.
   */
  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = HfConfig.of(peftType());
    hf.put("parts", parts.stream().map(p -> new TreeMap<>(p.toHfConfig())).toList());
    HfConfig.putModulesToSave(hf, modulesToSave);
    return hf;
  }

  /**
   * A config from the {@code adapter_config.json} that {@link #toHfConfig()} writes, each part read by
   * {@code readPart} (the reader of whole files, so any method peft4j loads can be a part); unknown fields go to
   * {@code ignored}, those of part i as {@code parts[i].<field>}. Errors name the field (and part).
   */
  public static HybridConfig fromHf(JsonObject json, Set<String> ignored,
      BiFunction<JsonObject, Set<String>, AdapterConfig> readPart) {
    JsonFields f = HfConfig.read(json, ignored, Set.of("parts"));
    JsonElement partsField = f.get("parts");
    checkArgument(partsField != null && partsField.isJsonArray(), "parts must be a list of adapter configs, got %s",
        partsField);
    List<AdapterConfig> parts = new ArrayList<>();
    List<JsonElement> elements = partsField.getAsJsonArray().asList();
    for (int i = 0; i < elements.size(); i++) {
      JsonElement part = elements.get(i);
      checkArgument(part.isJsonObject(), "parts[%s] must be an adapter config object, got %s", i, part);
      Set<String> partIgnored = new TreeSet<>();
      try {
        parts.add(readPart.apply(part.getAsJsonObject(), partIgnored));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("parts[" + i + "]: " + e.getMessage(), e);
      }
      String prefix = "parts[" + i + "].";
      partIgnored.forEach(field -> ignored.add(prefix + field));
    }
    return builder(parts.toArray(AdapterConfig[]::new)).readHf(f).build();
  }

  /**
   * A {@link MergeableHybrid} when every part merges, else a {@link Hybrid}; part i is the part's own adapter named
   * {@code <adapterName>/part<i>}, so its variables live under {@code peft/<adapterName>/part<i>/<method>/}.
   */
  @Override
  public Adapter newAdapter(String adapterName) {
    List<Adapter> adapters = IntStream.range(0, parts.size())
        .mapToObj(i -> parts.get(i).newAdapter(adapterName + "/part" + i)).toList();
    boolean mergeable = adapters.stream().allMatch(a -> a instanceof AbstractMergeableAdapter);
    return mergeable ? new MergeableHybrid(adapterName, this, adapters) : new Hybrid(adapterName, this, adapters);
  }

  /** The parts, each marked mergeable or not, so that a refused merge says which part cannot merge. */
  @Override
  public String toString() {
    return "HybridConfig{parts=" + parts.stream().map(p -> p + (merges(p) ? " (mergeable)" : " (not mergeable)"))
        .toList() + ", modulesToSave=" + modulesToSave + "}";
  }

  /** Builds a {@link HybridConfig}: modules to save beside the parts, settable once. */
  public static final class Builder extends ConfigBuilder<HybridConfig, Builder> {
    private final AdapterConfig[] parts;

    private Builder(AdapterConfig[] parts) {
      this.parts = parts == null ? null : parts.clone();
    }

    @Override
    public HybridConfig build() {
      return new HybridConfig(parts == null ? null : Arrays.asList(parts), modulesToSave());
    }
  }
}
