package dev.peft4j;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Checks shared by every {@link Adapter#loadStateDict} implementation. */
public final class StateDicts {

  private StateDicts() {}

  /**
   * Requires {@code given} to hold exactly the keys of {@code expected}, each with the same shape; the keys carry the
   * module path, so a message names the module.
   *
   * @throws IllegalArgumentException naming the missing and unexpected keys, or the key and both shapes
   */
  public static void requireFits(String adapter, Map<String, INDArray> expected, Map<String, INDArray> given) {
    Set<String> missing = new TreeSet<>(expected.keySet());
    missing.removeAll(given.keySet());
    Set<String> unexpected = new TreeSet<>(given.keySet());
    unexpected.removeAll(expected.keySet());
    checkArgument(missing.isEmpty() && unexpected.isEmpty(),
        "adapter '%s' does not fit this model: missing tensors %s, unexpected tensors %s", adapter, missing,
        unexpected);
    expected.forEach((key, want) -> checkArgument(Arrays.equals(want.shape(), given.get(key).shape()),
        "tensor '%s' has shape %s, but this model needs %s", key, Arrays.toString(given.get(key).shape()),
        Arrays.toString(want.shape())));
  }
}
