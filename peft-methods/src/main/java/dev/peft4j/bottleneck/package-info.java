/**
 * Bottleneck adapters (Houlsby et al. 2019): a small residual MLP inserted after the attention output projection and
 * after the feed-forward output projection of every layer, trained while the model stays frozen.
 * <pre>
 *   y = x·W (+ bias)                              the module's output                      y: [n, H]
 *   y' = y + dropout(act(y·D + d))·U + u          D: [H, b]  d: [b]  U: [b, H]  u: [H]      y': [n, H]
 *   act ∈ {ReLU (default), GELU, SiLU, tanh};  dropout only while training (inverted, on the [n, b] activation)
 *   D ~ U(−1/√H, 1/√H) (nn.Linear's default),  d = 0,  U = 0,  u = 0   ⇒  y' = y at init
 * </pre>
 * Placement {@code HOULSBY}: two adapters per layer, after BERT's {@code attention.output.dense} and
 * {@code output.dense} (Llama's {@code self_attn.o_proj} and {@code mlp.down_proj}), that is before the residual add
 * and (in BERT) the LayerNorm, as in the paper; {@code PFEIFFER}: one, after the feed-forward output projection.
 * Trainable scalars per adapter: {@code 2·H·b + b + H}; Houlsby on a LLaMA-2-7B shape (H = 4096, 32 layers, b = 64):
 * 64 · (2·4096·64 + 64 + 4096) = 33,820,672.
 *
 * <p>Not mergeable: the nonlinearity does not fold into a weight, so an adapted model keeps its extra matmuls at
 * inference. Hugging Face PEFT has no such method; peft4j saves it in PEFT's layout with its own
 * {@code "peft_type": "BOTTLENECK"} ({@code bottleneck_size}, {@code placement}, {@code non_linearity},
 * {@code adapter_dropout}, {@code attention_output_modules}, {@code ffn_output_modules}) and the tensors
 * {@code base_model.model.<module>.adapter_down.weight [b, H]}, {@code .adapter_down.bias [b]},
 * {@code .adapter_up.weight [H, b]}, {@code .adapter_up.bias [H]} in {@code nn.Linear}'s layout, which
 * {@code Peft.load} reads back.
 *
 * @see <a href="https://arxiv.org/abs/1902.00751">Houlsby et al. 2019, Parameter-Efficient Transfer Learning for
 *     NLP</a>
 * @see <a href="https://arxiv.org/abs/2005.00247">Pfeiffer et al. 2021, AdapterFusion</a> (the one-adapter placement)
 */
package dev.peft4j.bottleneck;
