package dev.peft4j.quant;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * How a frozen weight is stored: 4-bit NormalFloat (NF4) as bitsandbytes defines it, or plain 8-bit absmax, both
 * blockwise. An immutable value.
 * <pre>
 *   NF4:   blocks of {@code blockSize} values; per block absmax a = max|w|; code_i = argmin_c |w_i / a − NF4[c]|
 *          (NF4: bitsandbytes' 16 values); two codes per byte, the first in the high nibble.   w'_i = NF4[code_i]·a
 *   INT8:  q_i = round(127 · w_i / a) as a signed byte.                                        w'_i = q_i·a / 127
 *   double quantisation of the absmax constants (bitsandbytes' compress_statistics): subtract their mean m, then
 *          quantise them blockwise (blocks of 256) to bitsandbytes' signed 8-bit dynamic map:   a'_j = D[c_j]·s_k + m
 * </pre>
 * Resident bytes per parameter with blocks of 64: NF4 ½ + 4/64 = 0.5625; with double quantisation
 * ½ + 1/64 + 4/(64·256) ≈ 0.5159 (plus a few bytes per tensor). INT8 1 + 4/64 = 1.0625.
 *
 * <pre>{@code
 * Quantization q = Quantization.nf4();                      // block 64, double quantisation (the QLoRA paper's)
 * Quantization p = Quantization.nf4().doubleQuant(false).blockSize(128);
 * QuantizedTensor t = q.quantize(weightInHfLayout);         // [out, in], as bitsandbytes quantises torch weights
 * }</pre>
 *
 * @see <a href="https://arxiv.org/abs/2305.14314">Dettmers et al., QLoRA: Efficient Finetuning of Quantized LLMs</a>
 */
public final class Quantization {

  /** The element format. */
  public enum Format {
    /** 4-bit NormalFloat: 16 code values, two per byte. */
    NF4,
    /** Linear signed 8-bit, {@code round(127·w/absmax)}: dequantising needs no table lookup. */
    INT8
  }

  /** The block sizes bitsandbytes accepts for blockwise quantisation. */
  public static final Set<Integer> BLOCK_SIZES = Set.of(64, 128, 256, 512, 1024, 2048, 4096);

  /** The block size of double quantisation (bitsandbytes' nested quantize_blockwise). */
  public static final int NESTED_BLOCK_SIZE = 256;

  private final Format format;
  private final int blockSize;
  private final boolean doubleQuant;

  private Quantization(Format format, int blockSize, boolean doubleQuant) {
    this.format = format;
    this.blockSize = blockSize;
    this.doubleQuant = doubleQuant;
  }

  /** NF4 in blocks of 64 with double quantisation, as the QLoRA paper (bitsandbytes' nf4 + compress_statistics). */
  public static Quantization nf4() {
    return new Quantization(Format.NF4, 64, true);
  }

  /** Plain 8-bit absmax in blocks of 64, without double quantisation. */
  public static Quantization int8() {
    return new Quantization(Format.INT8, 64, false);
  }

  /**
   * This quantisation with blocks of {@code size} values.
   *
   * @throws IllegalArgumentException if {@code size} is not one of {@link #BLOCK_SIZES}
   */
  public Quantization blockSize(int size) {
    checkArgument(BLOCK_SIZES.contains(size), "block size %s is not supported; bitsandbytes allows %s", size,
        new TreeSet<>(BLOCK_SIZES));
    return new Quantization(format, size, doubleQuant);
  }

  /** This quantisation with the absmax constants double-quantised (or not). */
  public Quantization doubleQuant(boolean on) {
    return new Quantization(format, blockSize, on);
  }

  public Format format() {
    return format;
  }

  public int blockSize() {
    return blockSize;
  }

  public boolean doubleQuant() {
    return doubleQuant;
  }

  /**
   * Quantises {@code weight} (any shape; its elements in row-major order form the blocks). A linear layer's weight is
   * quantised in Hugging Face's {@code [out, in]} layout, as bitsandbytes quantises a torch weight, so that the packed
   * bytes are the ones bitsandbytes would write.
   *
   * @throws IllegalArgumentException if {@code weight} is empty, not floating point, or holds NaN or infinity
   */
  public QuantizedTensor quantize(INDArray weight) {
    checkArgument(weight != null && weight.length() > 0, "cannot quantise an empty tensor");
    checkArgument(weight.dataType().isFPType(), "cannot quantise a %s tensor; it must be floating point",
        weight.dataType());
    float[] w = weight.dup('c').castTo(DataType.FLOAT).data().asFloat();
    for (int i = 0; i < w.length; i++) {
      if (!Float.isFinite(w[i])) {
        throw new IllegalArgumentException("cannot quantise a tensor holding " + w[i] + " (element " + i + ")");
      }
    }
    int n = w.length;
    int blocks = (n + blockSize - 1) / blockSize;
    float[] absmax = new float[blocks];
    byte[] data = new byte[format == Format.NF4 ? blocks * blockSize / 2 : blocks * blockSize];
    for (int b = 0; b < blocks; b++) {
      int from = b * blockSize;
      int to = Math.min(n, from + blockSize);
      float max = 0;
      for (int i = from; i < to; i++) {
        max = Math.max(max, Math.abs(w[i]));
      }
      absmax[b] = max;
      float inverse = 1 / max; // as bitsandbytes: w · (1/absmax), clamped to [−1, 1]
      for (int i = from; i < from + blockSize; i++) {
        float scaled = i < to && max > 0 ? Math.max(-1f, Math.min(1f, w[i] * inverse)) : 0f;
        if (format == Format.NF4) {
          int code = Codes.nearest(Codes.NF4, scaled);
          data[i / 2] |= (byte) (i % 2 == 0 ? code << 4 : code);            // first of a pair: high nibble
        } else {
          data[i] = (byte) Math.rint(scaled * 127f);                     // half to even, as torch.round
        }
      }
    }
    long[] shape = weight.shape();
    if (!doubleQuant) {
      return new QuantizedTensor(this, shape, data, absmax, null, null, 0f);
    }
    Nested nested = doubleQuantize(absmax);
    return new QuantizedTensor(this, shape, data, null, nested.codes(), nested.scales(), nested.offset());
  }

  /** Double-quantised absmax constants: codes into the dynamic map, a scale per 256 codes, the subtracted mean. */
  record Nested(byte[] codes, float[] scales, float offset) {}

  /**
   * bitsandbytes' {@code quantize_blockwise(absmax - absmax.mean(), code=create_dynamic_map(), blocksize=256)}.
   * (The mean is summed in double, then rounded to float; torch sums float32 pairwise, so the two may differ in the
   * last bit.)
   */
  static Nested doubleQuantize(float[] absmax) {
    int blocks = absmax.length;
    double sum = 0;
    for (float a : absmax) {
      sum += a;
    }
    float offset = (float) (sum / blocks);
    int nested = (blocks + NESTED_BLOCK_SIZE - 1) / NESTED_BLOCK_SIZE;
    byte[] codes = new byte[blocks];
    float[] scales = new float[nested];
    for (int k = 0; k < nested; k++) {
      int from = k * NESTED_BLOCK_SIZE;
      int to = Math.min(blocks, from + NESTED_BLOCK_SIZE);
      float max = 0;
      for (int j = from; j < to; j++) {
        max = Math.max(max, Math.abs(absmax[j] - offset));
      }
      scales[k] = max;
      float inverse = 1 / max;
      for (int j = from; j < to; j++) {
        float scaled = max > 0 ? Math.max(-1f, Math.min(1f, (absmax[j] - offset) * inverse)) : 0f;
        codes[j] = (byte) Codes.nearest(Codes.DYNAMIC, scaled);              // the unsigned index, as a byte
      }
    }
    return new Nested(codes, scales, offset);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Quantization q && q.format == format && q.blockSize == blockSize
        && q.doubleQuant == doubleQuant;
  }

  @Override
  public int hashCode() {
    return Objects.hash(format, blockSize, doubleQuant);
  }

  @Override
  public String toString() {
    return format + "(block " + blockSize + (doubleQuant ? ", double quantisation)" : ")");
  }
}
