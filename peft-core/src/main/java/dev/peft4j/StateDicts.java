package dev.peft4j;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.Arrays;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Checks shared by every {@link Adapter#loadStateDict} implementation. */
public final class StateDicts {

  private StateDicts() {}

  /** The float types Hugging Face PEFT saves adapters in; a float tensor of the model reads any of them. */
  private static final Set<DataType> SAVED_FLOATS = EnumSet.of(DataType.FLOAT, DataType.HALF, DataType.BFLOAT16);

  /**
   * Requires {@code given} to hold exactly the keys of {@code expected}, each with the same shape and a data type
   * that loads without changing its meaning: the same type, or for a floating-point tensor F32, F16 or BF16 (so an
   * I32 tensor where floats are expected is refused rather than cast). The keys carry the module path, so a message
   * names the module.
   *
   * @throws IllegalArgumentException naming the missing and unexpected keys, or the key and both shapes or types
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
    expected.forEach((key, want) -> {
      DataType type = given.get(key).dataType();
      checkArgument(type == want.dataType() || want.dataType().isFPType() && SAVED_FLOATS.contains(type),
          "tensor '%s' is %s, but this model stores it as %s%s", key, type, want.dataType(),
          want.dataType().isFPType() ? " (F32, F16 or BF16 in the file)" : "");
    });
  }
}
