/**
 * Prefix tuning (Li &amp; Liang 2021): n trained key and value vectors per attention layer, which every query attends to
 * before the real tokens; the model stays frozen.
 * <pre>
 *   T: [n, L·2·kv]   kv = kv heads · head dim (grouped-query attention: the prefix has the kv heads, not the heads)
 *   layer i: K_pre = T[:, (2i)·kv : (2i+1)·kv], V_pre = T[:, (2i+1)·kv : (2i+2)·kv]  →  [n, nkv, d], each kv head
 *            repeated to the query heads it serves, as the model repeats its own keys
 *   K' = [K_pre; K]  V' = [V_pre; V]: [b, nh, n + s, d]      queries stay [b, nh, s, d]
 *   mask: key_mask → [1…1, mask] [b, n + s]; decoders: causal [s, s] → [1…1 | causal] [s, n + s]
 *   positions of the real tokens: n..n+s−1 (transformers offsets positions by the cache length, for BERT's absolute
 *   positions and Llama's RoPE alike); the prefix keys are used as given (no RoPE), as a cache holds them
 *   projection (HF prefix_projection=True, training only): T = tanh(E·W1 + b1)·W2 + b2,  E: [n, kv]  W1: [kv, e]
 *   trainable scalars: n·L·2·kv;  with the projection n·kv + kv·e + e + e·L·2·kv + L·2·kv
 *   (Llama-2-7B, n = 20: 20·32·2·4096 = 5,242,880)
 * </pre>
 * {@code trainableParameters()} reports what trains now: with the projection, the embedding and the MLP; after saving
 * and loading, the folded table. n + s must fit the model's positions (n is checked at apply, n + s at run time by an
 * op named {@code …/virtual_tokens_plus_sequence_length_exceed_<max>_positions/Assert}). The model's outputs keep their shapes (only keys and values grow); the causal-LM
 * loss is unchanged (HF passes the labels as they are).
 *
 * <p>Saved as Hugging Face PEFT saves it: {@code peft_type PREFIX_TUNING} and {@code prompt_embeddings [n, L·2·kv]}
 * (with the projection: its output, the MLP folded away, as {@code get_prompt_embedding_to_save}); a config read from
 * a file builds the plain table (HF's inference mode). Initial values: N(0, 1) for the table and the embedding,
 * {@code nn.Linear}'s U(±1/√fan_in) for the MLP ({@code java.util.Random}, seeded; torch's draws are not reproduced);
 * {@code zeroInit()} is HF's {@code init_weights="zero"}.
 *
 * @see <a href="https://arxiv.org/abs/2101.00190">Li &amp; Liang 2021, Prefix-Tuning: Optimizing Continuous Prompts
 *     for Generation</a>
 */
package dev.peft4j.prefix;
