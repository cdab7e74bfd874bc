package dev.peft4j.io;

import java.util.Arrays;
import java.util.Optional;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The element types peft4j reads and writes, named as in a safetensors header's {@code "dtype"} field, with their
 * ND4J counterparts. All are little-endian; {@code BOOL} takes one byte per element, 0 or 1, as PyTorch stores it.
 * Other safetensors types ({@code U16}, {@code U32}, {@code U64}, the 8-bit floats) are not supported.
 */
public enum SafetensorsDtype {
  F64(8, DataType.DOUBLE),
  F32(4, DataType.FLOAT),
  F16(2, DataType.FLOAT16),
  BF16(2, DataType.BFLOAT16),
  I64(8, DataType.INT64),
  I32(4, DataType.INT32),
  I16(2, DataType.INT16),
  I8(1, DataType.INT8),
  U8(1, DataType.UINT8),
  BOOL(1, DataType.BOOL);

  private final int byteSize;
  private final DataType nd4jType;

  SafetensorsDtype(int byteSize, DataType nd4jType) {
    this.byteSize = byteSize;
    this.nd4jType = nd4jType;
  }

  /** Bytes per element. */
  public int byteSize() {
    return byteSize;
  }

  /** The ND4J type an array of this dtype is read as. */
  public DataType nd4jType() {
    return nd4jType;
  }

  /**
   * The dtype an ND4J array of {@code type} is written as.
   *
   * @throws IllegalArgumentException for ND4J types with no supported safetensors counterpart (UTF8, COMPRESSED,
   *     UINT16/32/64, …)
   */
  public static SafetensorsDtype of(DataType type) {
    for (SafetensorsDtype d : values()) {
      if (d.nd4jType == type) {
        return d;
      }
    }
    throw new IllegalArgumentException(String.format("ND4J type %s has no safetensors dtype peft4j supports (%s)",
        type, supportedNd4jTypes()));
  }

  /** The dtype a header names {@code name}, or empty if it is not one of these. */
  static Optional<SafetensorsDtype> fromHeader(String name) {
    return Arrays.stream(values()).filter(d -> d.name().equals(name)).findFirst();
  }

  private static String supportedNd4jTypes() {
    return Arrays.toString(Arrays.stream(values()).map(SafetensorsDtype::nd4jType).toArray());
  }
}
