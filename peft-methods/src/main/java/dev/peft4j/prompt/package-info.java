/**
 * Prompt tuning (Lester et al. 2021): n trained "virtual token" embeddings prepended to the input embeddings of a
 * frozen transformer; only the table trains.
 * <pre>
 *   P: [n, H]                                   the prompt table ("prompt_embeddings")
 *   E = embed(input_ids): [b, s, H]  →  [P; E]: [b, n + s, H]        attention_mask → [1…1, mask]: [b, n + s]
 *   positions: virtual 0..n−1, real n..n+s−1 (transformers numbers inputs_embeds from 0; BERT's absolute positions
 *   and Llama's RoPE alike); BERT token types: 0 for the virtual tokens
 *   init: RANDOM  P ~ N(0, 1)    SAMPLE_VOCAB  P = embed[ids], ids ~ U{0..V−1}    TEXT  P = embed[text ids repeated to n]
 *   trainable scalars: n · H          (Llama-2-7B, n = 20: 20 · 4096 = 81,920)
 * </pre>
 * What the model returns: its per-position output keeps its shape {@code [b, s, ·]}: the virtual positions are
 * dropped from {@code last_hidden_state} (BERT) and {@code logits} (Llama family). Hugging Face PEFT returns a causal
 * LM's logits for all n + s positions; drop the first n to compare. The causal-LM loss is Hugging Face's: it runs over
 * all n + s positions with label −100 on the virtual ones, so the last virtual token predicts the first real token.
 * A classification head ({@code Heads.sequenceClassification}) pools over the real tokens only: {@code CLS} is the
 * real {@code [CLS]} token and {@code MEAN} averages the real tokens (HF's BERT pooler reads position 0, which is
 * then the first virtual token).
 *
 * <p>Limits: n + s must not exceed the model's positions: n is checked at apply; a longer input fails at run time
 * with an error naming the op {@code …/virtual_tokens_plus_sequence_length_exceed_<max>_positions/Assert}. A TEXT init longer than n tokens is refused (Hugging Face PEFT cuts it silently).
 * SAMPLE_VOCAB and RANDOM use {@code java.util.Random} with the config's seed, so they do not reproduce torch's draws.
 * Saved as Hugging Face PEFT saves it: {@code peft_type PROMPT_TUNING}, the tensor {@code prompt_embeddings [n, H]}
 * (no {@code base_model.model.} prefix), {@code token_dim}, {@code num_layers} and {@code num_attention_heads} left
 * null for PEFT to fill from the model; load it in Python with {@code PeftModelForCausalLM.from_pretrained} (the
 * config has no task_type).
 *
 * @see <a href="https://arxiv.org/abs/2104.08691">Lester et al. 2021, The Power of Scale for Parameter-Efficient Prompt
 *     Tuning</a>
 */
package dev.peft4j.prompt;
