/**
 * Model architectures built as SameDiff graphs whose variable names follow Hugging Face's module names, so that
 * {@link dev.peft4j.Targets} means what it means in Hugging Face PEFT; checkpoints ({@link dev.peft4j.model.HfModels}),
 * tokenizers ({@link dev.peft4j.model.Tokenizer}) and decoders' chat templates ({@link dev.peft4j.model.ChatTemplate}).
 */
package dev.peft4j.model;
