package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.AdapterConfig;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.LlamaConfig;
import dev.peft4j.prompt.PromptTuningConfig.PromptInit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The methods {@link Compare} runs, in one table: name → adapter config and the method's recommended peak learning
 * rate. A config is written once with BERT's module names and made for a {@link ModelFamily}: a BERT encoder with a
 * {@value Heads#CLASSIFIER} head, or a decoder with a {@value Heads#SCORE} head, whose modules the family maps
 * (query → q_proj, …). Every config trains the classification head in full ({@code modulesToSave(head)}), as Hugging
 * Face PEFT does for sequence classification. Adding a method is one {@link #add} line.
 *
 * <p>Learning rates follow the methods' papers for BERT-size encoders, at the top of their ranges because the
 * comparison's step budget is short: LoRA, rsLoRA, DoRA and AdaLoRA 5e-4 (Hu et al.'s RoBERTa-base runs, 4e-4–5e-4;
 * Zhang et al. 5e-4–1e-3), IA³ 3e-3 (Liu et al.), bottleneck adapters 1e-3 (Houlsby et al. searched 1e-4–1e-3),
 * BitFit and LayerNorm tuning 1e-3 (Ben Zaken et al. 1e-4–1e-3), VeRA 5e-3 (Kopiczko et al. 4e-3–1e-2 for the
 * vectors), FourierFT 1e-2 (Gao et al. use 5e-2 for the spectrum with a separate head rate; one rate here trains the
 * head too), prompt and prefix tuning 1e-2 and P-tuning 5e-3 (Lester et al. and Liu et al. train virtual tokens at
 * high rates; HF PEFT's examples use 1e-2–3e-2 and 1e-3), full fine-tuning 1e-4 (BERT's 2e-5–5e-5, raised for the short budget), linear probing 5e-3. LP-FT probes
 * the head for a quarter of the steps at linear probing's rate, then fine-tunes everything at full fine-tuning's.
 * One learning rate trains both the method's parameters and the head.
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
  public record Method(String name, String description, double learningRate, Recipe config, LinearProbing probe) {

    /** The config for a run's seed and step budget (AdaLoRA's schedule needs the budget), on a BERT encoder. */
    public AdapterConfig config(long seed, int steps) {
      return config.config(seed, steps, ModelFamily.ENCODER);
    }

    /** The config for a run's seed and step budget on a model of {@code family} (its head and module names). */
    public AdapterConfig config(long seed, int steps, ModelFamily family) {
      return config.config(seed, steps, family);
    }
  }

  /** An adapter config for a run, given the family whose head and module names it targets. */
  @FunctionalInterface
  public interface Recipe {
    AdapterConfig config(long seed, int steps, ModelFamily family);
  }

  /**
   * LP-FT's first phase: the head alone trains for {@code fraction} of the steps at {@code learningRate}, then the
   * method's config trains the rest of the steps from the trained head.
   */
  public record LinearProbing(double fraction, double learningRate) {}

  private static final double FULL_FT_LR = 1e-4;
  private static final double PROBE_LR = 5e-3;

  private static final Map<String, Method> METHODS = new LinkedHashMap<>();

  static {
    add("linear-probe", "the classifier head only (linear probing)", PROBE_LR,
        (seed, steps, f) -> Peft.linearProbe().head(f.head()).build());
    add("full-ft", "every weight but the embedding tables (full fine-tuning)", FULL_FT_LR,
        (seed, steps, f) -> Peft.fullFineTuning().build());
    add("lp-ft", "linear probing for 1/4 of the steps, then full fine-tuning", FULL_FT_LR,
        (seed, steps, f) -> Peft.fullFineTuning().build(), new LinearProbing(0.25, PROBE_LR));
    add("bitfit", "BitFit: every linear layer's bias", 1e-3,
        (seed, steps, f) -> Peft.bitFit().modulesToSave(f.head()).build());
    add("ln-tuning", "LayerNorm tuning: every LayerNorm's γ and β", 1e-3,
        (seed, steps, f) -> Peft.lnTuning().modulesToSave(f.head()).build());
    add("prompt-tuning", "prompt tuning, 20 virtual tokens sampled from the vocabulary", 1e-2,
        (seed, steps, f) -> Peft.promptTuning(20).init(PromptInit.SAMPLE_VOCAB).seed(seed)
            .modulesToSave(f.head()).build());
    add("prefix-tuning", "prefix tuning, 20 key/value prefixes per layer", 1e-2,
        (seed, steps, f) -> Peft.prefixTuning(20).seed(seed).modulesToSave(f.head()).build());
    add("p-tuning", "P-tuning, 20 virtual tokens from an MLP prompt encoder (hidden 128)", 5e-3,
        (seed, steps, f) -> Peft.pTuning(20).encoderHiddenSize(128).seed(seed).modulesToSave(f.head()).build());
    add("lora", "LoRA r=8 α=16 on query, value", 5e-4,
        (seed, steps, f) -> Peft.lora(8).alpha(16).dropout(0.1).target(f.modules("query", "value")).seed(seed)
            .modulesToSave(f.head()).build());
    // the smallest LoRA, beside which the issue of Quantum-PEFT asks to place it (as VeRA's paper places VeRA)
    add("lora-r1", "LoRA r=1 α=2 on query, value", 5e-4,
        (seed, steps, f) -> Peft.lora(1).alpha(2).dropout(0.1).target(f.modules("query", "value")).seed(seed)
            .modulesToSave(f.head()).build());
    add("rslora", "rsLoRA r=16 α=16 on query, value", 5e-4,
        (seed, steps, f) -> Peft.lora(16).alpha(16).rsLora().dropout(0.1).target(f.modules("query", "value")).seed(seed)
            .modulesToSave(f.head()).build());
    add("dora", "DoRA r=8 α=16 on query, value", 5e-4,
        (seed, steps, f) -> Peft.dora(8).alpha(16).dropout(0.1).target(f.modules("query", "value")).seed(seed)
            .modulesToSave(f.head()).build());
    add("lora-all-linear", "LoRA r=8 α=16 on every linear layer", 5e-4,
        (seed, steps, f) -> Peft.lora(8).alpha(16).dropout(0.1).target("all-linear").seed(seed)
            .modulesToSave(f.head()).build());
    add("ia3", "IA³ on key, value, output.dense (input side)", 3e-3,
        (seed, steps, f) -> Peft.ia3().target(f.modules("key", "value", "output.dense")).feedforward(f.modules("output.dense"))
            .modulesToSave(f.head()).build());
    add("bottleneck", "Houlsby bottleneck adapters, size 64", 1e-3,
        (seed, steps, f) -> Peft.bottleneck(64).seed(seed).modulesToSave(f.head()).build());
    add("hybrid", "LoRA r=8 on query, value + Pfeiffer bottleneck 16", 5e-4,
        (seed, steps, f) -> Peft.hybrid(
                Peft.lora(8).alpha(16).dropout(0.1).target(f.modules("query", "value")).seed(seed).build(),
                Peft.bottleneck(16).afterFfnOnly().seed(seed).build())
            .modulesToSave(f.head()).build());
    add("qlora", "QLoRA: LoRA r=8 α=16 on query, value over an NF4 base (double quantisation, blocks of 64)", 5e-4,
        (seed, steps, f) -> Peft.qlora(8).alpha(16).dropout(0.1).target(f.modules("query", "value")).seed(seed)
            .modulesToSave(f.head()).build());
    add("adalora", "AdaLoRA init_r=12 → target_r=8 on query, value", 5e-4,
        (seed, steps, f) -> Peft.adaLora(12, 8).alpha(16).target(f.modules("query", "value")).totalStep(steps)
            .tinit(steps / 10).tfinal(steps / 5).deltaT(Math.max(1, steps / 20))
            .seed(seed).modulesToSave(f.head()).build());
    add("vera", "VeRA r=256 on query, value", 5e-3,
        (seed, steps, f) -> Peft.vera(256).target(f.modules("query", "value")).projectionSeed(seed)
            .modulesToSave(f.head()).build());
    add("fourierft", "FourierFT n=1000 on query, value", 1e-2,
        (seed, steps, f) -> Peft.fourierFt(1000).scaling(150).target(f.modules("query", "value")).randomLocSeed(seed).seed(seed)
            .modulesToSave(f.head()).build());
    // 1e-2 as FourierFT: few scalars (A(384) = 18 angles per circuit at L = 1, and K = 16 λ per module), and λ
    // starts at zero with an update of unit-norm directions, so it needs a step well above LoRA's 5e-4 to move.
    // One circuit layer: each gate is a few small ops, and at L = 2 a MiniLM step on q, v took ~3× LoRA's here
    add("quantum-peft", "Quantum-PEFT K=16, 1 circuit layer, on query, value", 1e-2,
        (seed, steps, f) -> Peft.quantumPeft(16).circuitLayers(1).target(f.modules("query", "value")).seed(seed)
            .modulesToSave(f.head()).build());
  }

  /**
   * Methods peft4j cannot run on a decoder's classification graph, and why: its prompt learning splices into a
   * causal-LM decoder (it needs the next-token loss's hook), not into one whose {@value Heads#SCORE} reads the last
   * non-padding token.
   */
  private static final Map<String, String> NOT_ON_DECODERS = Map.of(
      "prompt-tuning", "peft4j's prompt learning splices into a causal-LM graph, not a decoder's score head",
      "prefix-tuning", "peft4j's prompt learning splices into a causal-LM graph, not a decoder's score head",
      "p-tuning", "peft4j's prompt learning splices into a causal-LM graph, not a decoder's score head");

  private CompareMethods() {}

  /**
   * Why {@code method} cannot run on the decoder {@code config}, or null if it can: the prompt-learning methods
   * ({@link #NOT_ON_DECODERS}), and BitFit on a decoder without linear biases (Llama, Mistral, Qwen3, Gemma; Qwen2
   * has q, k, v biases).
   */
  static String notOnDecoder(Method method, LlamaConfig config) {
    if (method.name().equals("bitfit") && !config.qkvBias() && !config.mlpBias()) {
      return "model_type " + config.modelType() + " has no linear biases to train";
    }
    return NOT_ON_DECODERS.get(method.name());
  }

  private static void add(String name, String description, double learningRate, Recipe config) {
    add(name, description, learningRate, config, null);
  }

  private static void add(String name, String description, double learningRate, Recipe config,
      LinearProbing probe) {
    checkArgument(!METHODS.containsKey(name), "method '%s' is already in the table", name);
    METHODS.put(name, new Method(name, description, learningRate, config, probe));
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
