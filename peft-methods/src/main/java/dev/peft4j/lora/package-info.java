/**
 * LoRA, rsLoRA, DoRA and QLoRA: a trainable low-rank update beside each targeted linear layer's frozen weight.
 * <pre>
 *   x: [n, in]   W: [in, out] (frozen)   A: [in, r]   B: [r, out]      (ND4J orientation)
 *   y = x·W (+ b) + s · (dropout(x)·A)·B
 *   s = α / r            (LoRA, Hu et al. 2021, https://arxiv.org/abs/2106.09685)
 *   s = α / √r           (rsLoRA, Kalajdzievski 2023, https://arxiv.org/abs/2312.03732)
 * </pre>
 * Hugging Face PEFT keeps {@code lora_A} as {@code [r, in]} and {@code lora_B} as {@code [out, r]}; peft4j keeps their
 * transposes so that every matmul is a plain {@code x · M}, and transposes when it reads or writes HF's files.
 * A starts Kaiming-uniform (a = √5, i.e. uniform in ±1/√in), B at zero, so the adapted graph starts equal to the base.
 * During training the update is computed from activations and never as {@code W + s·A·B}; that sum is formed only
 * when merging. Trainable scalars per adapted layer: {@code r · (in + out)}.
 *
 * <p>QLoRA (Dettmers et al. 2023, https://arxiv.org/abs/2305.14314) is LoRA over a base whose linear weights are
 * stored in NF4 ({@code Peft.qlora(r)}, {@link dev.peft4j.lora.LoraConfig.Builder#quantizeBase}; see
 * {@code dev.peft4j.quant.QuantizedBase}): W is dequantised in the graph before each matmul, the branch is the same.
 * Merging writes {@code W' + s·A·B} in fp32 in place of the packed W' (no re-quantisation, so the merged model carries
 * only the first rounding error); unmerging and unloading restore the packed form bit for bit. Saved adapters are
 * ordinary LoRA files, as Hugging Face saves a QLoRA adapter.
 *
 * <p>DoRA ({@code Peft.lora(r).useDora()} or {@code Peft.dora(r)}; Liu et al. 2024): each targeted linear layer's weight is split into a trained magnitude per output feature and
 * a direction, {@code W + s·A·B} normalised column by column, whose low-rank update is LoRA's.
 * <pre>
 *   x: [n, in]   W: [in, out] (frozen)   A: [in, r]   B: [r, out]   m: [out]          (ND4J orientation)
 *   W' = m ⊙ (W + s·A·B) / ‖W + s·A·B‖          ‖·‖: the L2 norm of each output column (over the in axis)
 *   computed from activations, as Hugging Face PEFT's DoraLinearLayer:
 *   g = m / ‖W + s·A·B‖   (detached: a constant to the gradient)                        g: [out]
 *   y' = y + (g − 1) ⊙ (x·W) + g ⊙ s·(dropout(x)·A)·B          y = x·W + b,  x·W = y − b      y': [n, out]
 *   while training with dropout: x·W is recomputed from dropout(x), as Hugging Face does
 *   s = α / r   (α / √r with rsLoRA);   A Kaiming-uniform, B = 0, m = ‖W‖   ⇒  y' = y at init
 * </pre>
 * The norm's gradient is stopped (paper §4.3: "we suggest treating ‖V + ΔV‖_c as a constant"), so the gradients of A
 * and B are not those of the loss as a function of A and B; finite differences match them only with the norm held at
 * its current value. Trainable scalars per adapted layer: {@code r·(in + out) + out}. A rank above {@code min(in, out)}
 * is refused (B·A cannot have a higher rank). Merging writes {@code W'} into the weight and keeps the original, which
 * unmerging restores exactly (Hugging Face divides by the cached factor instead).
 *
 * <p>DoRA's files: Hugging Face PEFT's layout for a LoRA adapter with {@code "use_dora": true} and one more tensor per
 * module, {@code base_model.model.<module>.lora_magnitude_vector [out]}; {@code Peft.load} reads such an adapter as
 * DoRA. The low-rank code ({@link dev.peft4j.lora.LowRank}) is LoRA's own.
 *
 * @see <a href="https://arxiv.org/abs/2402.09353">Liu et al. 2024, DoRA: Weight-Decomposed Low-Rank Adaptation</a>
 */
package dev.peft4j.lora;
