package dev.peft4j.model;

import java.util.Set;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Pretrained tensors by their Hugging Face names, as float arrays. Each format's reader knows its own layout, so
 * orientation is settled here, once per format: {@link #linearWeight} always answers in ND4J's {@code [in, out]}.
 */
public interface Weights {

  /** Whether a tensor of that name exists. */
  boolean has(String name);

  /** Every tensor name, for error messages and for reporting tensors an architecture did not use. */
  Set<String> names();

  /**
   * The tensor in PyTorch's layout (embeddings {@code [vocab, hidden]}, norms {@code [hidden]}).
   *
   * @throws IllegalArgumentException naming the tensor and where it was looked for, if it does not exist
   */
  INDArray tensor(String name);

  /**
   * The weight of linear module {@code module} ({@code module + ".weight"}) as {@code [in, out]}.
   *
   * @throws IllegalArgumentException if it does not exist
   */
  INDArray linearWeight(String module);
}
