/**
 * PyTorch's CPU random number generator reproduced bit for bit, for methods whose Hugging Face PEFT files store only
 * a seed (VeRA's projections, FourierFT's frequency positions): {@link dev.peft4j.rng.TorchGenerator}.
 */
package dev.peft4j.rng;
