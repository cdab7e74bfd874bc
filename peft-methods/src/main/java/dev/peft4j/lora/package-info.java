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
 */
package dev.peft4j.lora;
