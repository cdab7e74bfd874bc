/**
 * P-tuning (Liu et al. 2021): virtual tokens produced by a small trained prompt encoder and prepended to the input
 * embeddings of a frozen transformer, as in prompt tuning ({@link dev.peft4j.prompt}); the encoder makes the tokens
 * depend on each other and eases optimisation.
 * <pre>
 *   E: [n, H] (trained embedding, N(0, 1))
 *   MLP encoder (HF's PromptEncoder, MLP type): P = ReLU(ReLU(E·W1 + b1)·W2 + b2)·W3 + b3       W1: [H, e]  W2: [e, e]
 *                                                                                              W3: [e, H]  e default H
 *   inputs_embeds → [P; inputs_embeds]: [b, n + s, H]; masks, positions, token types, the loss and the outputs as in
 *   prompt tuning (virtual positions 0..n−1; per-position outputs keep [b, s, ·])
 *   trainable scalars while training: n·H + (H·e + e) + (e·e + e) + (e·H + H); a loaded adapter: n·H
 * </pre>
 * Saved as Hugging Face PEFT saves it: {@code peft_type P_TUNING}, {@code prompt_embeddings [n, H]} = the encoder's
 * output (HF's {@code get_prompt_embedding_to_save}); a config read from a file builds that plain table (HF's inference
 * mode), so {@code trainableParameters()} reports n·H for a loaded adapter and the encoder's count while training.
 * Initial values use {@code java.util.Random} (seeded), with {@code nn.Embedding}'s and {@code nn.Linear}'s
 * distributions; torch's draws are not reproduced.
 *
 * <p>The LSTM encoder (HF's {@code encoder_reparameterization_type="LSTM"}): a bidirectional SameDiff
 * {@code lstmLayer} per layer (its M2.1 gradient matches finite differences; tested), then
 * {@code Linear(2e, 2e) → ReLU → Linear(2e, H)}. Differences from HF: one bias per direction where PyTorch has two
 * (same function, 4e fewer scalars per direction and layer), and no dropout between LSTM layers (the builder has no
 * encoder_dropout; a saved config's value is kept for the file only).
 *
 * @see <a href="https://arxiv.org/abs/2103.10385">Liu et al. 2021, GPT Understands, Too</a>
 */
package dev.peft4j.ptuning;
