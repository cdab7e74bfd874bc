package dev.peft4j;

/**
 * Hugging Face PEFT's {@code task_type}: which task model an adapter was trained on, so that
 * {@code AutoPeftModelFor…} rebuilds the same one.
 */
public enum TaskType {
  /** {@code …ForSequenceClassification}: one label per sequence. */
  SEQ_CLS,
  /** {@code …ForTokenClassification}: one label per token. */
  TOKEN_CLS,
  /** {@code …ForCausalLM}: next-token prediction. */
  CAUSAL_LM,
  /** The bare model's hidden states ({@code AutoModel}). */
  FEATURE_EXTRACTION,
  /** Encoder-decoder generation (peft4j builds no such model; read and written back only). */
  SEQ_2_SEQ_LM,
  /** Extractive question answering (peft4j builds no such model; read and written back only). */
  QUESTION_ANS
}
