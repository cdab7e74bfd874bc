/**
 * peft4j's public API: the {@link dev.peft4j.PeftModel} an adapter lives in, the {@link dev.peft4j.Adapter}
 * and {@link dev.peft4j.MergeableAdapter} contracts every method implements, the {@link dev.peft4j.AdapterConfig}
 * a method's builder produces, {@link dev.peft4j.Targets} (which modules a method adapts) and the
 * {@link dev.peft4j.TrainableParameterSet} (exactly the variables that train).
 *
 * <p>The fluent entry point {@code dev.peft4j.methods.Peft} lives in {@code peft-methods}, beside the methods it
 * names: peft-core knows no method, so a method can never leak into the core.
 *
 * <h2>Adding a method</h2>
 * <ol>
 *   <li>A package {@code dev.peft4j.<method>} in peft-methods: {@code XxxConfig}, a record whose builder extends
 *       {@link dev.peft4j.TargetedConfigBuilder} (or {@link dev.peft4j.ConfigBuilder}) and whose
 *       {@code toHfConfig} / {@code fromHf} go through {@link dev.peft4j.HfConfig}; {@code Xxx}, the adapter
 *       (extending {@link dev.peft4j.AbstractAdapter} or {@link dev.peft4j.AbstractMergeableAdapter});
 *       {@code package-info.java} with the math, the shapes and the paper.
 *   <li>One registration line in {@code dev.peft4j.methods.PeftMethods}: peft type, config class, reader, budget formula.
 *   <li>A factory in {@code Peft} taking the method's required values.
 *   <li>Rows in the contract suite ({@code Cases}) with the closed-form counts written out.
 *   <li>A line in peft-bench's {@code CompareMethods}. {@code PeftMethodsTest} and peft-bench's
 *       {@code MethodRegistryTest} fail until 2–5 are done, and check the budget against the built graph.
 * </ol>
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
