/**
 * The entry point and the method registry: {@link dev.peft4j.methods.Peft} (one factory per method, and
 * {@code Peft.load}), {@link dev.peft4j.methods.PeftMethods} (each method registered once: its {@code peft_type},
 * config class, reader and budget formula) and {@link dev.peft4j.methods.ParameterBudget} (closed-form trainable
 * counts and a memory estimate from a model's shape alone). The methods themselves live one package each beside this
 * one ({@code dev.peft4j.lora}, {@code dev.peft4j.vera}, …); the adding-a-method checklist is in the {@code dev.peft4j}
 * package documentation.
 */
package dev.peft4j.methods;
