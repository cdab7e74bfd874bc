/**
 * Combining trained LoRA adapters into a new one, as Hugging Face PEFT's {@code add_weighted_adapter}:
 * {@link dev.peft4j.merge.WeightedAdapter}. With adapters A₁…Aₙ (lora_A {@code [rᵢ, in]}, lora_B {@code [out, rᵢ]},
 * scales sᵢ) and weights wᵢ, per module:
 * <pre>
 *   cat:     A = [w₁s₁A₁; …; wₙsₙAₙ],  B = [B₁ … Bₙ]            so B·A = Σ wᵢ sᵢ Bᵢ Aᵢ exactly; r = Σ rᵢ
 *   linear, ties, dare_linear, dare_ties, magnitude_prune (equal ranks):
 *            A = f({Aᵢ}, ±√|wᵢsᵢ|),  B = f({Bᵢ}, √|wᵢsᵢ|)         f the combination, applied to A and B apart
 *   svd and its *_svd variants:  ΔW = f({sᵢ Bᵢ Aᵢ}, wᵢ),  B·A = the best rank-r approximation of ΔW (r = svdRank,
 *            by default the largest rᵢ)
 * </pre>
 * The new adapter has α = r (scale 1). The combinations f: task arithmetic Σ wᵢTᵢ; magnitude_prune keeps the
 * density·n largest |entries| of each Tᵢ first; ties prunes by magnitude, elects a sign per entry (the sign of ΣTᵢ,
 * or of the majority of signs) and averages the weighted entries that agree with it; dare drops entries at random
 * with probability 1 − density and rescales the rest by 1/density (Yu et al. 2023, https://arxiv.org/abs/2311.03099;
 * TIES: Yadav et al. 2023, https://arxiv.org/abs/2306.01708).
 */
package dev.peft4j.merge;
