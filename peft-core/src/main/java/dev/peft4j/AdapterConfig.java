package dev.peft4j;

import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable description of one PEFT method's adapter: what a method's builder produces and what a saved
 * adapter's {@code adapter_config.json} holds. A config can be applied to any number of graphs.
 */
public interface AdapterConfig {

  /** Hugging Face PEFT's name of the method, e.g. {@code "LORA"}. */
  String peftType();

  /** The modules this adapter rewrites. */
  Targets targets();

  /**
   * Modules trained in full beside the adapter and saved with it (Hugging Face's {@code modules_to_save}), e.g. a
   * task head. Empty by default.
   */
  default java.util.List<String> modulesToSave() {
    return java.util.List.of();
  }

  /**
   * The closed-form number of trainable scalars this config would create on {@code sameDiff}, computed from the
   * config and the graph's shapes without rewriting anything (LoRA: Σ r·(in + out) over its targets).
   *
   * @throws IllegalArgumentException if the config does not fit the graph
   */
  long parameterCount(SameDiff sameDiff);

  /**
   * This config as Hugging Face PEFT's {@code adapter_config.json} fields ({@code peft_type}, {@code r},
   * {@code lora_alpha}, {@code target_modules}, …); values are strings, numbers, booleans, lists, maps or null.
   */
  Map<String, Object> toHfConfig();

  /** A fresh, not yet applied adapter of this config, named {@code adapterName}. */
  Adapter newAdapter(String adapterName);

  /**
   * Freezes the graph's base parameters and applies this config as the adapter {@code "default"}.
   *
   * @throws IllegalArgumentException if the config does not fit the graph (targets that match nothing, a target
   *     that is not a layer this method can adapt); the graph is then left exactly as it was
   */
  default PeftModel apply(SameDiff sameDiff) {
    return PeftModel.wrap(sameDiff).addAdapter(PeftModel.DEFAULT_ADAPTER, this);
  }
}
