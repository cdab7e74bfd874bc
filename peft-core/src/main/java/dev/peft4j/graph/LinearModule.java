package dev.peft4j.graph;

/**
 * A linear layer found in a SameDiff graph: {@code output = input · weight (+ bias)}.
 * <pre>
 *   input: [n, in]    weight: [in, out]  (ND4J orientation; Hugging Face stores [out, in])
 *   bias:  [out]      output: [n, out]
 * </pre>
 *
 * @param name        the module path, e.g. {@code layers.0.self_attn.q_proj}
 * @param weight      the weight variable, {@code name + ".weight"}; for a weight stored quantised, the variable its
 *                    in-graph dequantisation computes, {@code name + GraphRewriter.DEQUANTIZED_WEIGHT}
 * @param bias        the bias variable, {@code name + ".bias"}, or {@code null}
 * @param input       the variable the matmul reads
 * @param output      the module's output: the bias add's output, or the matmul's when there is no bias (the
 *                    {@code xw_plus_b} op's output for layers the model builders write as one op)
 * @param matmulOp    the name of the op reading {@code input} and {@code weight} as its inputs 0 and 1
 *                    ({@code matmul} or {@code xw_plus_b})
 * @param inFeatures  rows of the weight
 * @param outFeatures columns of the weight
 */
public record LinearModule(String name, String weight, String bias, String input, String output,
    String matmulOp, long inFeatures, long outFeatures) {

  public boolean hasBias() {
    return bias != null;
  }
}
