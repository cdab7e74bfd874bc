/**
 * VeRA (vector-based random matrix adaptation): one pair of frozen random projections A, B shared by every targeted
 * layer, and two trainable vectors per layer that scale them.
 * <pre>
 *   shared, frozen:  A: [r, max_in]   B: [max_out, r]     (max over the targeted layers; HF's vera_A, vera_B)
 *   layer m:         A_m = A[:, :in]  B_m = B[:out, :]     d: [r] (starts at d_initial = 0.1)   b: [out] (starts at 0)
 *   y' = y + b ⊙ ((d ⊙ (dropout(x)·A_mᵀ))·B_mᵀ)         ΔW = diag(b)·B_m·diag(d)·A_m   ([out, in]; ND4J's W is its transpose)
 *   b = 0, so the adapted model starts equal to the base.
 *   merge: W ← W + ΔWᵀ       unmerge: W ← W − ΔWᵀ
 * </pre>
 * Trainable scalars: Σ (r + out) over the targets; the projections are constants.
 *
 * <p>A and B come from {@code projection_prng_key} exactly as Hugging Face PEFT draws them: kaiming-uniform
 * ({@code U(−√(6/fan_in), √(6/fan_in))}, fan_in = max_in for A, r for B), A first, from one
 * {@code torch.Generator().manual_seed(key)}, whose Mersenne Twister {@link dev.peft4j.rng.TorchGenerator} reproduces
 * bit for bit. peft4j still always saves them ({@code save_projection = true}, keys {@code base_model.vera_A} and
 * {@code base_model.vera_B}); a file saved without them loads by drawing them from the key. {@code vera_dropout}
 * drops elements of x on the branch only, while training. Not supported: trained biases, {@code fan_in_fan_out}.
 *
 * @see <a href="https://arxiv.org/abs/2310.11454">Kopiczko, Blankevoort, Asano 2024, VeRA: Vector-based Random Matrix
 *     Adaptation</a>
 */
package dev.peft4j.vera;
