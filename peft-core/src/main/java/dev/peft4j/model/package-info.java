/**
 * Model architectures built as SameDiff graphs whose variable names follow Hugging Face's module names, so that
 * {@link dev.peft4j.Targets} means what it means in Hugging Face PEFT.
 */
package dev.peft4j.model;
