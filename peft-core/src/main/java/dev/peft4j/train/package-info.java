/**
 * Training a {@link dev.peft4j.PeftModel}: {@link dev.peft4j.train.Trainer} (AdamW with decoupled weight decay,
 * warm-up and linear or cosine decay, gradient accumulation, global-norm clipping, seeded determinism, an evaluation
 * callback and a terminal progress bar). Updater state exists only for the trainable set.
 */
package dev.peft4j.train;
