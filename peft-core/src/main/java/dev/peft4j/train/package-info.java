/**
 * Training a {@link dev.peft4j.PeftModel}: {@link dev.peft4j.train.Trainer} (AdamW with decoupled weight decay,
 * warm-up and linear or cosine decay, gradient accumulation, global-norm clipping, seeded determinism, an evaluation
 * callback and a terminal progress bar). Updater state exists only for the trainable set. A step's forward and
 * backward pass is {@link dev.peft4j.train.Gradients} (SameDiff's array cache on, so the step reuses its buffers); the
 * update is {@link dev.peft4j.train.AdamW}, one fused ND4J op per parameter. With gradient checkpointing the pass is
 * {@link dev.peft4j.train.CheckpointedGradients}, one segment of layers at a time; with data parallelism it is
 * {@link dev.peft4j.train.DataParallel}, the batch split row-wise over the cores.
 */
package dev.peft4j.train;
