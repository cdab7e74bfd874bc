/**
 * peft4j's public API: the {@link dev.peft4j.PeftModel} an adapter lives in, the {@link dev.peft4j.Adapter}
 * and {@link dev.peft4j.MergeableAdapter} contracts every method implements, the {@link dev.peft4j.AdapterConfig}
 * a method's builder produces, {@link dev.peft4j.Targets} (which modules a method adapts) and the
 * {@link dev.peft4j.TrainableParameterSet} (exactly the variables that train).
 *
 * <p>The fluent entry point {@code Peft} lives in {@code peft-methods}, beside the methods it names: peft-core knows
 * no method, so a method can never leak into the core.
 *
 * <h2>What a module is</h2>
 * A SameDiff graph has no modules, only variables and ops. peft4j reads module names off variable names, as
 * PyTorch's {@code state_dict} does: a variable {@code layers.0.self_attn.q_proj.weight} belongs to the module
 * {@code layers.0.self_attn.q_proj}. A <em>linear</em> module is a {@code matmul} whose second input is the
 * array-backed rank-2 variable {@code <module>.weight}, stored {@code [in, out]} (ND4J's orientation; Hugging Face
 * stores {@code [out, in]}), optionally followed by an {@code add} of {@code <module>.bias}. See
 * {@link dev.peft4j.graph.GraphRewriter}.
 */
package dev.peft4j;
