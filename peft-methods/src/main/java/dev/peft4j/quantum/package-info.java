/**
 * Quantum-PEFT: a layer's update is {@code ΔW = s · U·diag(λ)·Vᵀ} with U and V orthonormal by construction, generated
 * by small quantum-circuit-style parameterisations, so that the trained scalars grow with the logarithm of the width
 * while ΔW can have full rank.
 *
 * <h2>What peft4j implements, and how it departs from the paper</h2>
 * The paper (Koike-Akino et al., ICLR 2025) generates U and V with a Pauli parameterisation: layers of Pauli-Y
 * rotations and entangling gates on ⌈log₂ n⌉ qubits, mapped onto the Stiefel manifold, with widths that are not powers
 * of two assembled from smaller unitaries (quantum Shannon decomposition). Only the paper's abstract and summaries
 * could be read while this package was written; its exact gate set, layer count, initialisation and the Shannon
 * construction are therefore <b>not</b> reproduced. What is here is a faithful variant, built so that
 * {@code UᵀU = VᵀV = I} holds exactly for every width it accepts, powers of two or not:
 * <ul>
 *   <li><b>Register.</b> A width {@code n = d_1·d_2·…·d_m}, d_i its prime factors ascending, is a register of m qudits
 *       (a qubit for every factor 2: 384 = 2⁷·3 is seven qubits and one qutrit). No row is cut from a 2^q × 2^q matrix
 *       (that would lose orthonormality): Q is n × n from the start.
 *   <li><b>Rotation.</b> Qudit i of dimension d gets {@code R_i = G_{d−2}(θ_{d−2})·…·G_0(θ_0)}, d − 1 angles;
 *       {@code G_j} is the Pauli-Y rotation {@code RY(θ) = exp(−iθY/2) = [[cos θ/2, −sin θ/2], [sin θ/2, cos θ/2]]}
 *       on levels (j, j+1) and the identity elsewhere. For a qubit {@code R_i = RY(θ)}.
 *   <li><b>Entangler.</b> {@code E = diag((−1)^(a_1·a_2 + a_2·a_3 + … + a_{m−1}·a_m))} over the register's index
 *       {@code (a_1, …, a_m)}: a controlled-Z between neighbouring qudits (the generalised CZ {@code ω^(a·b)} with
 *       ω = −1), a fixed ±1 diagonal.
 *   <li><b>Circuit.</b> With L entangling layers,
 *       {@code Q(θ) = R^(L)·E·R^(L−1)·E·…·E·R^(0)}, {@code R^(l) = R_1^(l) ⊗ R_2^(l) ⊗ … ⊗ R_m^(l)}: a product of
 *       orthogonal matrices, so Q is orthogonal for every θ. {@code A(n) = (L + 1)·Σ_i (d_i − 1)} angles.
 *   <li><b>Update.</b> {@code V = Q_in(θ_V)[:, :K]} {@code [in, K]}, {@code U = Q_out(θ_U)[:, :K]} {@code [out, K]}: the
 *       first K columns of an orthogonal matrix, orthonormal exactly. λ {@code [K]} trains beside the angles.
 *       {@code K ≤ min(in, out)}; with K = min(in, out) and every λ_k ≠ 0, ΔW has full rank.
 * </ul>
 * <pre>
 *   x: [batch, in]   W: [in, out] (ND4J's orientation)   θ_V: [A(in)]   θ_U: [A(out)]   λ: [K]
 *   y' = x·W + s · ((x·V) ⊙ λ)·Uᵀ
 *      = x·W + s · pad_out(((x·Q_in)[:, :K]) ⊙ λ) · Q_outᵀ            pad_out: zeros to width out
 *   merge: W ← W + s·V·diag(λ)·Uᵀ       unmerge: W ← W − s·V·diag(λ)·Uᵀ
 * </pre>
 * Neither Q is formed while training: x is reshaped to {@code [batch, d_1, …, d_m]} and each {@code d_i × d_i} gate
 * contracts its axis (contracting axis 1 m times cycles the axes back into order), the entangler is an element-wise
 * ±1 product: O(batch · n · Σ d_i) per layer. Only merge forms ΔW, by running the circuits on the rows of
 * {@code [I_K | 0]} (O(K · n · Σ d_i)).
 *
 * <p><b>Initialisation.</b> λ = 0, so the adapted model starts equal to the base (as LoRA's B = 0); the angles start
 * uniform in [−π, π) from {@code seed}, so U and V start at a random point of their manifold. (The angles' gradients
 * are zero while λ = 0; λ's are not, and the angles move from the first step on.) The paper's own initialisation is
 * not known here.
 *
 * <p><b>Widths the circuit refuses.</b> Widths below 2, and widths with a prime factor above 64 (a qudit of dimension
 * p costs p − 1 angles per layer and p − 2 matrix products: 4099, a prime, would cost 4098 angles per layer and no
 * longer be logarithmic); {@code circuit_layers < 1}; K above a target's min(in, out). Every refusal names the module
 * and both numbers, before the graph is touched.
 *
 * <p><b>Trainable scalars per target:</b> {@code A(in) + A(out) + K}. Per circuit, A(n) against LoRA r = 1 on a
 * square n × n layer (2n):
 * <pre>
 *   n        factors    A(n), L = 1   A(n), L = 2   LoRA r=1 (2n)
 *   64       2^6        12            18            128
 *   128      2^7        14            21            256
 *   256      2^8        16            24            512
 *   384      2^7·3      18            27            768
 *   512      2^9        18            27            1024
 *   768      2^8·3      20            30            1536
 *   1024     2^10       20            30            2048
 *   1536     2^9·3      22            33            3072
 *   2048     2^11       22            33            4096
 *   3072     2^10·3     24            36            6144
 *   4096     2^12       24            36            8192
 *   11008    2^8·43     100           150           22016
 * </pre>
 * A(n) grows with log₂ n for widths made of small primes; λ (K scalars) is the linear part, and is what sets the
 * rank. {@code QuantumPeftTest} holds this table equal to the built adapters' counts.
 *
 * <p>Saved files are peft4j's own ({@code "peft_type": "QUANTUM_PEFT"}; Hugging Face PEFT has no Quantum-PEFT): the
 * config fields {@code r}, {@code circuit_layers}, {@code scale} and the usual targets; tensors
 * {@code <module>.quantum_peft_V_angles}, {@code <module>.quantum_peft_U_angles}, {@code <module>.quantum_peft_lambda}.
 * The angle layout: grouped by qudit dimension ascending, then by layer, by qudit, by Givens index.
 *
 * @see <a href="https://arxiv.org/abs/2503.05431">Koike-Akino, Tonin, Wu, Wu, Candogan, Cevher, Quantum-PEFT:
 *     Ultra parameter-efficient fine-tuning, ICLR 2025</a>
 */
package dev.peft4j.quantum;
