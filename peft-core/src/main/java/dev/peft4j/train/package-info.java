/**
 * Training a {@link dev.peft4j.PeftModel}: {@link dev.peft4j.train.Trainer} (AdamW with decoupled weight decay,
 * warm-up and linear or cosine decay, gradient accumulation, global-norm clipping, seeded determinism, an evaluation
 * callback and a terminal progress bar). Updater state exists only for the trainable set. A step's forward and
 * backward pass is {@link dev.peft4j.train.Gradients} (SameDiff's array cache on, so the step reuses its buffers); the
 * update is {@link dev.peft4j.train.AdamW}, one fused ND4J op per parameter. With gradient checkpointing the pass is
 * {@link dev.peft4j.train.CheckpointedGradients}, one segment of layers at a time; with data parallelism (the
 * trainer's default, over every core) it is {@link dev.peft4j.train.DataParallel}, the batch split row-wise over the
 * cores. The gradient function is built by
 * {@link dev.peft4j.train.GradientFunction}; dropout masks are seeded per step and op by
 * {@link dev.peft4j.train.RandomOps}. Instruction data for a causal LM — JSONL read and checked by
 * {@link dev.peft4j.train.InstructionData}, tokenized with the loss on the responses only, padded or packed, by
 * {@link dev.peft4j.train.InstructionBatches} — becomes the trainer's batches.
 * The trainer's steps, seed and optimizer options ({@link dev.peft4j.train.OptimizerSettings}) are
 * {@link dev.peft4j.train.TrainerBuilder}'s, shared with peft-spark's trainer.
 *
 * <p>ND4J's noise while training, and what silences it:
 * <ul>
 *   <li>{@code Added differentiated op …} on {@code System.out}, one line per op each time a gradient function is
 *       built: only by the opt-in system property {@code peft4j.quietGradientBuild=true}
 *       ({@link dev.peft4j.train.GradientFunction#QUIET_PROPERTY}), because SameDiff prints it with
 *       {@code System.out.println};
 *   <li>{@code WARN … No fields found for property name … for class …} (dtype of {@code OnesLike},
 *       {@code labelsSmoothing} of {@code SoftmaxCrossEntropyLoss}, {@code f} of {@code RandomBernoulli} …), logged by
 *       ND4J's {@code DifferentialFunction.setPropertiesForFunction} during steps:
 *       set the SLF4J logger {@code org.nd4j.autodiff.functions.DifferentialFunction} to {@code error} in your
 *       logging configuration (this repository's tests and peft-bench do so in their {@code simplelogger.properties}).
 *       A library cannot set its users' logger levels without shipping a logging configuration of its own.
 * </ul>
 */
package dev.peft4j.train;
