/**
 * Selective fine-tuning: methods that train a subset of the model's own weights instead of adding parameters.
 * <ul>
 *   <li>{@link dev.peft4j.selective.LinearProbeConfig linear probing}: only the task head (classifier or untied
 *       {@code lm_head}) trains — the representation is frozen;
 *   <li>{@link dev.peft4j.selective.FullFineTuningConfig full fine-tuning}: every floating-point weight trains,
 *       except the embedding tables (ND4J 1.0.0-M2.1 cannot differentiate a trainable {@code gather});
 *   <li>{@link dev.peft4j.selective.LpFt LP-FT} (Kumar et al. 2022): linear probing first, then full fine-tuning
 *       or LoRA from the trained head, in one call — fine-tuning from a trained rather than a random head distorts
 *       the pre-trained features less;
 *   <li>BitFit ({@code dev.peft4j.bitfit}) and LayerNorm tuning ({@code dev.peft4j.lntuning}) share
 *       {@link dev.peft4j.selective.SelectiveAdapter}, the life cycle of all of them.
 * </ul>
 * <pre>
 *   chosen parameters θ_S ⊂ θ:   θ_S trains (a copy of it, see SelectiveAdapter), θ \ θ_S frozen
 *   trainable scalars = Σ_{p ∈ S} |p|
 * </pre>
 * Hugging Face PEFT has no peft_type for linear probing or full fine-tuning: files use its layout with peft4j's
 * {@code "peft_type": "LINEAR_PROBE"} / {@code "FULL_FINE_TUNING"} and keys {@code base_model.model.<module>.<param>}
 * (linear weights in PyTorch's {@code [out, in]}), so each file names exactly the tensors it replaces.
 *
 * @see <a href="https://arxiv.org/abs/2202.10054">Kumar et al., Fine-Tuning can Distort Pretrained Features and
 *     Underperform Out-of-Distribution</a>
 */
package dev.peft4j.selective;
