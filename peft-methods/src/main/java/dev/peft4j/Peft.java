package dev.peft4j;

import dev.peft4j.lora.LoraConfig;

/**
 * The fluent entry point: one factory per PEFT method, taking the method's required values.
 *
 * <pre>{@code
 * PeftModel m = Peft.lora(16).alpha(32).dropout(0.05).target("q_proj", "v_proj").apply(sameDiff);
 * System.out.println(m.trainableParameters());   // trainable params: … || all params: … || trainable%: …
 * SameDiff merged = m.mergeAndUnload();           // zero-overhead inference
 * }</pre>
 *
 * <p>It lives in peft-methods, beside the methods it names, so that peft-core depends on no method.
 */
public final class Peft {

  private Peft() {}

  /** LoRA of rank {@code r}; add {@code .rsLora()} for rank-stabilised scaling α/√r. */
  public static LoraConfig.Builder lora(int r) {
    return LoraConfig.builder(r);
  }
}
