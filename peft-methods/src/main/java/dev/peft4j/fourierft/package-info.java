/**
 * FourierFT: a layer's update is learned as n coefficients of its 2-D spectrum, at frequencies drawn at random once;
 * the update is the real part of the inverse discrete Fourier transform.
 * <pre>
 *   per target [out, in]:  frequencies (p_k, q_k), k &lt; n   (p = row in [0, out), q = column in [0, in))
 *                          c: [n] trained               (HF's fourierft_spectrum)
 *   ΔW = s · Re(IDFT2(S)),  S: [out, in] zero except S[p_k, q_k] = c_k,  IDFT2 with torch's "backward" norm 1/(out·in):
 *   ΔW[u, v] = s/(out·in) · Σ_k c_k · cos(2π(p_k·u/out + q_k·v/in))
 *            = s/(out·in) · Σ_k c_k · (cos(2πp_k u/out)·cos(2πq_k v/in) − sin(2πp_k u/out)·sin(2πq_k v/in))
 * </pre>
 * ND4J has no differentiable FFT, and the dense form {@code C_out·S·C_inᵀ − S_out·S·S_inᵀ} costs out·in·(out + in) per
 * step, so peft4j uses the sparse form: only the n chosen columns of the real DFT matrices, as two frozen bases,
 * <pre>
 *   basis_in  = [cos(2π q_k v/in) | sin(2π q_k v/in)]                    [in, 2n]   (v rows, k columns)
 *   basis_out = s/(out·in) · [cos(2π p_k u/out) ; −sin(2π p_k u/out)]    [2n, out]  (k rows, u columns)
 *   y' = y + ((x · basis_in) ⊙ [c, c]) · basis_out         x: [batch, in]   ΔWᵀ = basis_in · diag([c, c]) · basis_out
 *   merge: W ← W + ΔWᵀ       unmerge: W ← W − ΔWᵀ
 * </pre>
 * — a rank-2n update, like a LoRA branch of rank 2n with fixed outer factors. Targets of the same shape share their
 * bases (the same seed picks the same frequencies there). Trainable scalars: n per target.
 *
 * <p>The frequencies are Hugging Face PEFT's: the first n entries of
 * {@code torch.randperm(out·in, generator=torch.Generator().manual_seed(random_loc_seed))}, split as index / in and
 * index mod in; {@link dev.peft4j.rng.TorchGenerator} reproduces torch's generator and shuffle bit for bit, so files
 * holding only the seed and {@code fourierft_spectrum} load exactly (layers with in·out ≥ 2³²/20, where torch
 * shuffles differently, are refused). As in Hugging Face PEFT the spectrum starts as N(0, 1) draws (from peft4j's
 * {@code seed}, not torch's global generator), so the adapted model does not start equal to the base;
 * {@code zeroInit()} ({@code init_weights=True}) starts it at zero. Not supported: {@code n_frequency_pattern},
 * {@code alpha}, {@code ifft2_norm} other than "backward", trained biases, {@code fan_in_fan_out}, Conv2d targets.
 *
 * @see <a href="https://arxiv.org/abs/2405.03003">Gao et al. 2024, Parameter-Efficient Fine-Tuning with Discrete
 *     Fourier Transform</a>
 */
package dev.peft4j.fourierft;
