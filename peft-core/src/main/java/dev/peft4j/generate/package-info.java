/**
 * Text generation with the Llama-family decoders: {@link dev.peft4j.generate.Generator} (greedy or sampled, batched
 * prompts with left padding, a KV cache so each new token costs one position) configured by
 * {@link dev.peft4j.generate.GenerationConfig} (transformers' {@code GenerationConfig} names and defaults).
 *
 * <p>The cache is a rewrite of a copy of the adapted graph: prefill runs the prompt and returns every layer's key and
 * value states {@code [b, heads, T, head dim]}; decode takes them as placeholders, appends one position and returns
 * them grown. Adapters come along because the copy is of the adapted graph; prompt and prefix tuning's virtual tokens
 * are computed at prefill and then live in the cache, as in transformers.
 */
package dev.peft4j.generate;
