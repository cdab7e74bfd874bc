/**
 * Quantised frozen weights, as QLoRA stores its base model: {@link dev.peft4j.quant.Quantization} (NF4 exactly as
 * bitsandbytes defines it — its 16-value code table, blockwise absmax, two codes per byte in its nibble order,
 * double quantisation of the absmax constants — and plain 8-bit absmax), {@link dev.peft4j.quant.QuantizedTensor}
 * (one packed tensor) and {@link dev.peft4j.quant.QuantizedBase} (a SameDiff graph whose linear weights are packed
 * constants, dequantised in the graph just before each matmul).
 *
 * @see <a href="https://arxiv.org/abs/2305.14314">Dettmers et al., QLoRA: Efficient Finetuning of Quantized LLMs</a>
 */
package dev.peft4j.quant;
