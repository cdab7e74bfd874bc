/**
 * IA³ (Infused Adapter by Inhibiting and Amplifying Inner Activations): learned vectors that rescale activations.
 * <pre>
 *   attention-style target m:   y = (x·W + b) ⊙ l,   l: [out]   (HF's ia3_l [out, 1])
 *   feed-forward target m:      y = (x ⊙ l)·W + b,   l: [in]    (HF's ia3_l [1, in])
 *   l starts at 1, so the adapted model starts equal to the base.
 *   merge: W ← W·diag(l) and b ← b ⊙ l (output scaling), or W ← diag(l)·W (input scaling);
 *   unmerge divides by l.
 * </pre>
 * Trainable scalars: Σ out over attention-style targets + Σ in over feed-forward targets.
 *
 * @see <a href="https://arxiv.org/abs/2205.05638">Liu et al. 2022, Few-Shot Parameter-Efficient Fine-Tuning is Better
 *     and Cheaper than In-Context Learning</a>
 */
package dev.peft4j.ia3;
