package dev.peft4j.io;

/**
 * Widening of 16-bit floats to {@code float}, exactly (every half and bfloat16 value is a float). Java 17 has no
 * {@code Float.float16ToFloat} (it came in Java 20).
 * <pre>
 *   F16   sign:1  exponent:5 (bias 15)    mantissa:10    IEEE 754 binary16
 *   BF16  sign:1  exponent:8 (bias 127)   mantissa:7     the top half of a float
 * </pre>
 */
final class HalfFloats {

  private HalfFloats() {}

  /** The value of the IEEE half with these bits; subnormals, ±0, ±inf and NaN (payload kept) included. */
  static float f16ToFloat(short bits) {
    int h = bits & 0xffff;
    int sign = (h & 0x8000) << 16;
    int exponent = (h >>> 10) & 0x1f;
    int mantissa = h & 0x3ff;
    if (exponent == 0x1f) { // inf (mantissa 0) or NaN: the float's all-ones exponent, the mantissa's top bits kept
      return Float.intBitsToFloat(sign | 0x7f80_0000 | (mantissa << 13));
    }
    if (exponent == 0) { // ±0 or subnormal: mantissa × 2^-24, exact in a float
      float magnitude = mantissa * 0x1p-24f;
      return sign == 0 ? magnitude : -magnitude;
    }
    return Float.intBitsToFloat(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
  }

  /** The value of the bfloat16 with these bits: they are the top 16 bits of a float. */
  static float bf16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xffff) << 16);
  }
}
