/**
 * AdaLoRA: an SVD-shaped low-rank update whose rank budget is allocated across modules during training.
 * <pre>
 *   x: [n, in]   W: [in, out] (frozen)   A: [in, r]   E: [1, r]   B: [r, out]      (ND4J orientation, r = init_r)
 *   y = x·W (+ b) + s · ((dropout(x)·A) ⊙ E)·B          s = α / (init_r + 1e-5)     (HF: scaling / (ranknum + 1e-5))
 *   loss' = loss + orth_reg_weight / (2L) · Σ over the L layers (‖AᵀA − I‖_F + ‖B·Bᵀ − I‖_F)
 *   merge: W ← W + s · (A ⊙ E)·B           unmerge: W restored from the copy taken at merge (bit for bit)
 * </pre>
 * Hugging Face PEFT keeps {@code lora_A} {@code [r, in]} (Q), {@code lora_E} {@code [r, 1]} (Λ) and {@code lora_B}
 * {@code [out, r]} (P); peft4j keeps their transposes and transposes when it reads or writes files (keys
 * {@code <module>.lora_A}, {@code .lora_E}, {@code .lora_B}, without {@code .weight}, as HF saves its parameter
 * dicts; HF's {@code ranknum} is not saved by HF either). A and B start N(0, 0.02), E at zero, so the adapted graph
 * starts equal to the base. Trainable scalars per adapted layer: {@code r · (in + out + 1)}.
 *
 * <p>The orthogonality term is Hugging Face's: the mean over every A and B of the (not squared) Frobenius distance of
 * its Gram matrix from the identity, times {@code orth_reg_weight}; it is spliced into the graph's loss variable (when
 * the graph has one at apply time), so its gradient flows and every output named {@code loss} includes it while the
 * adapter is enabled.
 *
 * <p>Rank allocation ({@link dev.peft4j.adalora.RankAllocator}) runs after every optimizer step: the
 * {@link dev.peft4j.train.Trainer} calls {@link dev.peft4j.adalora.AdaLora#afterStep}, as HF's users call
 * {@code update_and_allocate(step)} after {@code optimizer.step()}. It scores each triplet (E_i, A's column i, B's
 * row i) by smoothed sensitivity × uncertainty, lowers the total budget from init_r·L to target_r·L with HF's cubic
 * schedule between {@code tinit} and {@code total_step − tfinal}, sets the singular values of the lowest-scored
 * triplets to zero, and records the kept triplets as {@code rank_pattern} in the adapter's config. Saving writes
 * that pattern into {@code adapter_config.json} and only the kept triplets into the weights, as HF's
 * {@code resize_state_dict_by_rank_pattern}; loading builds each module with its kept rank (the scale keeps init_r).
 *
 * <p>Differences from Hugging Face PEFT: where the budget equals the initial budget at a masking step (only when
 * target_r = init_r) HF's {@code torch.kthvalue(k=0)} fails and peft4j masks nothing; the initial A and B are drawn
 * from Java's generator, not torch's; the regulariser is added when the graph has one loss variable at apply time
 * (none: no regulariser; several: refused unless orth_reg_weight is 0) and is out of the loss while the adapter is
 * disabled or merged (HF adds it to every loss its model returns); unmerge restores the weights saved at merge
 * instead of subtracting. A module whose rank pattern keeps no triplet gets no branch and is saved as empty
 * tensors, as HF does.
 *
 * @see <a href="https://arxiv.org/abs/2303.10512">Zhang et al. 2023, AdaLoRA: Adaptive Budget Allocation for
 *     Parameter-Efficient Fine-Tuning</a>
 */
package dev.peft4j.adalora;
