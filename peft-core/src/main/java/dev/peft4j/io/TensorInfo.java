package dev.peft4j.io;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor's entry in a safetensors header.
 *
 * @param name  the tensor's name, e.g. {@code layers.0.self_attn.q_proj.weight}
 * @param dtype the element type
 * @param shape the dimensions, outermost first; {@code []} for a scalar, a 0 for an empty tensor
 * @param begin the offset of its first byte from the start of the data section
 * @param end   the offset one past its last byte; {@code end − begin = product(shape) × dtype.byteSize()}
 */
public record TensorInfo(String name, SafetensorsDtype dtype, long[] shape, long begin, long end) {

  public TensorInfo {
    checkNotNull(name, "name");
    checkNotNull(dtype, "dtype");
    checkArgument(shape != null && Arrays.stream(shape).allMatch(d -> d >= 0),
        "tensor '%s': shape must be non-negative, got %s", name, Arrays.toString(shape));
    checkArgument(0 <= begin && begin <= end, "tensor '%s': need 0 <= begin <= end, got [%s, %s]", name, begin, end);
    shape = shape.clone();
  }

  /** A copy of the dimensions. */
  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** {@code end − begin}. */
  public long byteLength() {
    return end - begin;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorInfo t && name.equals(t.name) && dtype == t.dtype && Arrays.equals(shape, t.shape)
        && begin == t.begin && end == t.end;
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, dtype, Arrays.hashCode(shape), begin, end);
  }

  @Override
  public String toString() {
    return "TensorInfo[name=" + name + ", dtype=" + dtype + ", shape=" + Arrays.toString(shape) + ", begin=" + begin
        + ", end=" + end + "]";
  }
}
