/**
 * LoRA and rsLoRA: a trainable low-rank update beside each targeted linear layer's frozen weight.
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
 */
package dev.peft4j.lora;
