/**
 * Hybrid adapters: several PEFT methods on one model as one adapter, e.g. LoRA on the attention projections plus a
 * bottleneck adapter after each feed-forward block (as in He et al.'s unified view and UniPELT).
 * <pre>
 *   parts p₀ … pₖ₋₁ (any AdapterConfig), applied in order as the adapters "&lt;name&gt;/part0" … :
 *     variables   peft/&lt;name&gt;/part&lt;i&gt;/&lt;method&gt;/&lt;module&gt;/…
 *     trainable   θ = θ₀ ∪ … ∪ θₖ₋₁          (one set: the Trainer trains all parts together)
 *     state dict  the union of the parts' keys (each method's keys carry its own names: lora_A, ia3_l,
 *                 adapter_down, …); a key two parts would share is refused
 *     config      {"peft_type": "HYBRID", "parts": [config₀, …], "modules_to_save": …}
 *   enable: parts in order;  disable / unload: in reverse order (a part spliced in later comes out first)
 *   merge (only when every part merges): refused if two parts change the same base tensor, since then
 *     W ← merge₁(merge₀(W)) ≠ merge₀(merge₁(W)) in general; otherwise each part merges into its own tensors
 * </pre>
 * Each part is validated against the untouched graph before anything is applied. Parts must adapt different
 * modules: a part whose module already carries another part's branch is refused by its method, with the part's
 * index in the message. A method joins hybrids without changes here by implementing {@code AbstractAdapter} (or
 * {@code AbstractMergeableAdapter}) and, to be loadable, its case in {@code Peft}'s reader.
 *
 * @see <a href="https://arxiv.org/abs/2110.04366">He et al. 2022, Towards a Unified View of Parameter-Efficient
 *     Transfer Learning</a>
 * @see <a href="https://arxiv.org/abs/2110.07577">Mao et al. 2022, UniPELT</a>
 */
package dev.peft4j.hybrid;
