/**
 * BitFit (Ben Zaken, Ravfogel and Goldberg 2021): fine-tune only the bias terms.
 * <pre>
 *   y = x·W + b        x: [n, in]   W: [in, out] frozen   b: [out] trained
 *   trainable scalars = Σ out over the chosen linear layers that have a bias
 * </pre>
 * The gradient of b is Σₙ dy — no weight gradient is computed at all, so a BitFit step is the cheapest training step
 * there is. The paper trains every bias of BERT (attention q, k, v, output, both feed-forward layers, and
 * LayerNorm's β); here BitFit is the biases of linear layers, as selected by {@code target(...)} (default every
 * linear layer with a bias) — train norm layers with {@code Peft.lnTuning()}. A task head is usually trained in
 * full beside it with {@code .modulesToSave("classifier")}.
 *
 * <p>Decoder families without biases (Llama, Mistral, Qwen3; Qwen2 has biases on q, k, v only) have nothing to
 * train: applying BitFit to them is refused with a message that says so, and the graph is left untouched.
 *
 * <p>Hugging Face PEFT has no BitFit. Files use its layout ({@code adapter_config.json},
 * {@code adapter_model.safetensors}) with peft4j's {@code "peft_type": "BITFIT"} and the keys
 * {@code base_model.model.<module>.bias}, so a file names exactly the tensors it replaces; loading checks every key
 * and shape before it touches the model. How the trained values are kept, merged and unloaded is described in
 * {@link dev.peft4j.selective.SelectiveAdapter}.
 *
 * @see <a href="https://arxiv.org/abs/2106.10199">Ben Zaken et al., BitFit: Simple Parameter-efficient Fine-tuning
 *     for Transformer-based Masked Language-models</a>
 */
package dev.peft4j.bitfit;
