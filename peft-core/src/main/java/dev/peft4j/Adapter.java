package dev.peft4j;

import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One named PEFT modification of one SameDiff graph.
 *
 * <p>Life cycle: created by {@link AdapterConfig#newAdapter(String)}, {@link #apply(SameDiff) applied} once,
 * then enabled or disabled any number of times, and finally {@link #unload() unloaded}, which restores the graph
 * it found. Disabling never destroys trained weights: re-enabling restores the adapted output.
 * Implementations keep every variable they create under the name scope {@code peft/<adapter>/...}.
 */
public interface Adapter {

  /** The adapter's name, unique within its {@link PeftModel}. */
  String name();

  /** The config this adapter was made from. */
  AdapterConfig config();

  /**
   * Rewrites {@code sameDiff}: creates this adapter's variables and wires them in. Validates everything first, so
   * a failure leaves the graph untouched.
   *
   * @throws IllegalArgumentException if the config does not fit the graph
   * @throws IllegalStateException if the adapter was applied already
   */
  void apply(SameDiff sameDiff);

  /** Exactly the variables this adapter created to be trained, with their current sizes. */
  TrainableParameterSet trainableParameters();

  /**
   * The adapter's tensors as Hugging Face PEFT names and lays them out in {@code adapter_model.safetensors}, keyed
   * relative to the model ({@code model.layers.0.self_attn.q_proj.lora_A.weight}, without the
   * {@code base_model.model.} prefix), in PyTorch's orientation.
   */
  Map<String, INDArray> stateDict();

  /**
   * Replaces the adapter's tensors with {@code tensors} (keys and layout as {@link #stateDict()}). Checks every key
   * and shape before it assigns anything.
   *
   * @throws IllegalArgumentException naming the key, the module and both shapes, or the missing and unexpected keys;
   *     nothing is assigned then
   */
  void loadStateDict(Map<String, INDArray> tensors);

  /** Whether the adapter contributes to the graph's outputs. A freshly applied adapter is enabled. */
  boolean isEnabled();

  /** Wires the adapter back in; a no-op when enabled. */
  void enable();

  /** Takes the adapter out of the computation, keeping its weights; a no-op when disabled. */
  void disable();

  /**
   * Switches between training behaviour (dropout active) and inference behaviour. A freshly applied adapter is in
   * inference mode; the trainer switches it.
   */
  void setTraining(boolean training);

  /**
   * Removes every op and variable this adapter created and restores the graph's original wiring. A merged adapter
   * is unmerged first, so the base weights are what they were.
   */
  void unload();
}
