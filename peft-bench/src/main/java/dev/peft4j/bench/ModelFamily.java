package dev.peft4j.bench;

import dev.peft4j.model.Heads;
import java.util.Arrays;
import java.util.Map;

/**
 * The kind of base model {@link Compare} and {@link Predict} fine-tune, with what differs between kinds for a method's
 * config: the head's module name and the names of the modules a method targets. {@link CompareMethods} writes each
 * config once with BERT's names; a decoder's are Hugging Face's Llama-family names for the same places.
 * <pre>
 *   ENCODER  head "classifier" (mean pooling)                 query, key, value, output.dense (the FFN's output)
 *   DECODER  head "score" on the last non-padding token        q_proj, k_proj, v_proj, down_proj
 * </pre>
 */
public enum ModelFamily {
  /** BERT (the bundled MiniLM or a checkpoint) with peft4j's pooled {@value Heads#CLASSIFIER}. */
  ENCODER(Heads.CLASSIFIER, Map.of()),
  /** A Llama-family decoder with Hugging Face's {@code …ForSequenceClassification} head {@value Heads#SCORE}. */
  DECODER(Heads.SCORE, Map.of("query", "q_proj", "key", "k_proj", "value", "v_proj", "output.dense", "down_proj"));

  private final String head;
  private final Map<String, String> modules;

  ModelFamily(String head, Map<String, String> modules) {
    this.head = head;
    this.modules = modules;
  }

  /** The classification head's module, trained in full beside every method. */
  public String head() {
    return head;
  }

  /** This family's names for BERT's {@code encoderModules}, in order. */
  public String[] modules(String... encoderModules) {
    return Arrays.stream(encoderModules).map(m -> modules.getOrDefault(m, m)).toArray(String[]::new);
  }
}
