package dev.peft4j.quant;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One tensor in its quantised form (see {@link Quantization}): the codes, and the per-block absmax constants either as
 * floats or double-quantised. Immutable; the arrays it returns are copies.
 * <pre>
 *   n = Π shape   blocks = ⌈n / blockSize⌉   (the last block may be partial; its codes are padded with the code of 0)
 *   NF4 data: blocks·blockSize/2 bytes, element 2i in the high nibble of byte i, 2i+1 in the low nibble
 *   INT8 data: blocks·blockSize signed bytes
 *   absmax: blocks floats, or (double quantisation) blocks byte codes into the dynamic map,
 *           ⌈blocks/256⌉ float scales and one float offset
 * </pre>
 * Where a partial block is padded, bitsandbytes stores only ⌈n/2⌉ bytes; the first ⌈n/2⌉ bytes here are its bytes.
 */
public final class QuantizedTensor {

  private final Quantization quantization;
  private final long[] shape;
  private final byte[] data;
  private final float[] absmax;
  private final byte[] absmaxCodes;
  private final float[] absmaxScales;
  private final float absmaxOffset;

  QuantizedTensor(Quantization quantization, long[] shape, byte[] data, float[] absmax, byte[] absmaxCodes,
      float[] absmaxScales, float absmaxOffset) {
    this.quantization = quantization;
    this.shape = shape.clone();
    this.data = data;
    this.absmax = absmax;
    this.absmaxCodes = absmaxCodes;
    this.absmaxScales = absmaxScales;
    this.absmaxOffset = absmaxOffset;
  }

  public Quantization quantization() {
    return quantization;
  }

  /** The shape of the original tensor. */
  public long[] shape() {
    return shape.clone();
  }

  /** The number of elements of the original tensor. */
  public long length() {
    return Arrays.stream(shape).reduce(1, (a, b) -> a * b);
  }

  /** The number of blocks of {@link Quantization#blockSize()} values. */
  public int blocks() {
    return (int) ((length() + quantization.blockSize() - 1) / quantization.blockSize());
  }

  /** The packed codes (NF4: two per byte, first in the high nibble; INT8: one signed byte each). */
  public byte[] data() {
    return data.clone();
  }

  /** The 4-bit code of element {@code i} (NF4 only). */
  public int code(long i) {
    checkArgument(quantization.format() == Quantization.Format.NF4, "codes are 4-bit for NF4 only, not %s",
        quantization);
    int b = data[(int) (i / 2)] & 0xff;
    return i % 2 == 0 ? b >>> 4 : b & 0xf;
  }

  /** Whether the absmax constants are double-quantised. */
  public boolean doubleQuantized() {
    return absmaxCodes != null;
  }

  /** The float absmax constants as stored (not double-quantised); {@code null} otherwise. */
  public float[] storedAbsmax() {
    return absmax == null ? null : absmax.clone();
  }

  /** The 8-bit codes of the double-quantised absmax constants (dynamic-map indices); {@code null} otherwise. */
  public byte[] absmaxCodes() {
    return absmaxCodes == null ? null : absmaxCodes.clone();
  }

  /** The scale of each block of 256 double-quantised absmax constants; {@code null} if not double-quantised. */
  public float[] absmaxScales() {
    return absmaxScales == null ? null : absmaxScales.clone();
  }

  /** The mean subtracted before double quantisation; 0 if not double-quantised. */
  public float absmaxOffset() {
    return absmaxOffset;
  }

  /** The per-block scales as dequantisation uses them: stored, or {@code D[c]·s + m} when double-quantised. */
  public float[] absmax() {
    if (absmax != null) {
      return absmax.clone();
    }
    float[] out = new float[blocks()];
    for (int j = 0; j < out.length; j++) {
      out[j] = Codes.DYNAMIC[absmaxCodes[j] & 0xff] * absmaxScales[j / Quantization.NESTED_BLOCK_SIZE]
          + absmaxOffset;
    }
    return out;
  }

  /** The dequantised values in row-major order, computed as the in-graph dequantisation does (in float). */
  public float[] dequantize() {
    float[] scales = absmax();
    int n = (int) length();
    int block = quantization.blockSize();
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      float a = scales[i / block];
      out[i] = quantization.format() == Quantization.Format.NF4 ? Codes.NF4[code(i)] * a : data[i] * a / 127f;
    }
    return out;
  }

  /** {@link #dequantize()} as an array of {@link #shape()} and {@code type}. */
  public INDArray toArray(DataType type) {
    return Nd4j.create(dequantize(), shape, 'c').castTo(type);
  }

  /**
   * The bytes this form keeps resident: the codes, and the absmax constants (4 bytes each, or 1 byte each plus 4 per
   * block of 256 plus the 4-byte offset when double-quantised). The shared code tables and the 16-byte shape are
   * not counted.
   */
  public long residentBytes() {
    long constants = absmax != null ? 4L * absmax.length : absmaxCodes.length + 4L * absmaxScales.length + 4;
    return data.length + constants;
  }

  @Override
  public String toString() {
    return "QuantizedTensor[" + quantization + ", shape " + Arrays.toString(shape) + ", " + residentBytes()
        + " bytes]";
  }
}
