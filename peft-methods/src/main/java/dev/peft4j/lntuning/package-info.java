/**
 * LayerNorm tuning (Zhao et al. 2023; Hugging Face PEFT's {@code LN_TUNING}): only the normalisation layers train.
 * <pre>
 *   LayerNorm (BERT):  y = (x − μ) / √(σ² + ε) · γ + β      x: [n, H]   γ, β: [H] trained     2H per layer
 *   RMSNorm (Llama):   y = x / √(mean(x²) + ε) · γ           γ: [H] trained                   H per layer
 * </pre>
 * A norm layer is found by what it is, not by its name: a module that is not a linear layer and whose parameters are
 * all vectors. By default every norm layer trains (BERT: the embeddings' LayerNorm and two per layer; Llama: two
 * RMSNorms per layer and the final {@code model.norm}; Qwen3 also its per-head {@code q_norm}/{@code k_norm});
 * {@code target(...)} narrows that by HF's name rule. A model without any norm layer is refused, naming its modules.
 *
 * <p>Files are Hugging Face PEFT's: {@code "peft_type": "LN_TUNING"}, keys
 * {@code base_model.model.<module>.ln_tuning_layers.weight} (and {@code .bias}), loadable by PEFT when the module
 * names are HF's. One difference: a peft4j config without {@code target(...)} is saved with
 * {@code "target_modules": null}, which HF resolves by model type ({@code llama}: input_layernorm,
 * post_attention_layernorm, norm) — Qwen3's q_norm/k_norm are then extra keys to HF. Merging writes the trained
 * γ/β into the norm layer (HF swaps the copy in); see {@link dev.peft4j.selective.SelectiveAdapter}.
 *
 * @see <a href="https://arxiv.org/abs/2312.11420">Zhao et al., Tuning LayerNorm in Attention: Towards Efficient
 *     Multi-Modal LLM Finetuning</a>
 */
package dev.peft4j.lntuning;
