package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.AdapterConfig;
import dev.peft4j.Peft;
import dev.peft4j.model.Heads;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongFunction;

/**
 * The methods {@link Compare} runs, in one table: name → adapter config (for a BERT encoder with a
 * {@value Heads#CLASSIFIER} head) and the method's recommended peak learning rate. Every config trains the
 * classification head in full ({@code modulesToSave("classifier")}), as Hugging Face PEFT does for sequence
 * classification. Adding a method is one {@link #add} line.
 *
 * <p>Learning rates follow the methods' papers for BERT-size encoders, at the top of their ranges because the
 * comparison's step budget is short: LoRA and rsLoRA 5e-4 (Hu et al.'s RoBERTa-base runs, 4e-4–5e-4), IA³ 3e-3
 * (Liu et al.), bottleneck adapters 1e-3 (Houlsby et al. searched 1e-4–1e-3).
 */
public final class CompareMethods {

  /**
   * One method of the comparison.
   *
   * @param name         the name on the command line and in the results
   * @param description  what it trains, for the results table
   * @param learningRate the peak learning rate
   * @param config       the adapter config, given the run's seed (for random initialisations)
   */
  public record Method(String name, String description, double learningRate, LongFunction<AdapterConfig> config) {}

  private static final Map<String, Method> METHODS = new LinkedHashMap<>();

  static {
    add("lora", "LoRA r=8 α=16 on query, value", 5e-4,
        seed -> Peft.lora(8).alpha(16).dropout(0.1).target("query", "value").seed(seed)
            .modulesToSave(Heads.CLASSIFIER).build());
    add("rslora", "rsLoRA r=16 α=16 on query, value", 5e-4,
        seed -> Peft.lora(16).alpha(16).rsLora().dropout(0.1).target("query", "value").seed(seed)
            .modulesToSave(Heads.CLASSIFIER).build());
    add("lora-all-linear", "LoRA r=8 α=16 on every linear layer", 5e-4,
        seed -> Peft.lora(8).alpha(16).dropout(0.1).target("all-linear").seed(seed)
            .modulesToSave(Heads.CLASSIFIER).build());
    add("ia3", "IA³ on key, value, output.dense (input side)", 3e-3,
        seed -> Peft.ia3().target("key", "value", "output.dense").feedforward("output.dense")
            .modulesToSave(Heads.CLASSIFIER).build());
    add("bottleneck", "Houlsby bottleneck adapters, size 64", 1e-3,
        seed -> Peft.bottleneck(64).seed(seed).modulesToSave(Heads.CLASSIFIER).build());
    add("hybrid", "LoRA r=8 on query, value + Pfeiffer bottleneck 16", 5e-4,
        seed -> Peft.hybrid(
                Peft.lora(8).alpha(16).dropout(0.1).target("query", "value").seed(seed).build(),
                Peft.bottleneck(16).afterFfnOnly().seed(seed).build())
            .modulesToSave(Heads.CLASSIFIER).build());
  }

  private CompareMethods() {}

  private static void add(String name, String description, double learningRate, LongFunction<AdapterConfig> config) {
    checkArgument(!METHODS.containsKey(name), "method '%s' is already in the table", name);
    METHODS.put(name, new Method(name, description, learningRate, config));
  }

  /** Every method, in table order. */
  public static List<Method> all() {
    return List.copyOf(METHODS.values());
  }

  /**
   * The named methods, in the order given.
   *
   * @throws IllegalArgumentException naming an unknown method and listing the known ones, or a repeated name
   */
  public static List<Method> named(List<String> names) {
    List<Method> out = new ArrayList<>();
    for (String n : names) {
      Method m = METHODS.get(n);
      checkArgument(m != null, "unknown method '%s'; methods: %s", n, METHODS.keySet());
      checkArgument(!out.contains(m), "method '%s' is named twice", n);
      out.add(m);
    }
    return out;
  }
}
