package dev.peft4j.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class HalfFloatsTest {

  private static float f16(int bits) {
    return HalfFloats.f16ToFloat((short) bits);
  }

  private static float bf16(int bits) {
    return HalfFloats.bf16ToFloat((short) bits);
  }

  @Test
  void halfKnownValues() {
    assertEquals(1.0f, f16(0x3c00));
    assertEquals(-2.5f, f16(0xc100));
    assertEquals(65504f, f16(0x7bff), "the largest half");
    assertEquals(0x1p-24f, f16(0x0001), "the smallest subnormal");
    assertEquals(1023 * 0x1p-24f, f16(0x03ff), "the largest subnormal");
    assertEquals(0x1p-14f, f16(0x0400), "the smallest normal");
    assertEquals(0.333251953125f, f16(0x3555));
    assertEquals(Float.POSITIVE_INFINITY, f16(0x7c00));
    assertEquals(Float.NEGATIVE_INFINITY, f16(0xfc00));
    assertTrue(Float.isNaN(f16(0x7e00)));
    assertTrue(Float.isNaN(f16(0x7c01)), "a signalling NaN stays NaN, not inf");
    assertTrue(Float.isNaN(f16(0xfe00)));
    assertEquals(0x0000_0000, Float.floatToRawIntBits(f16(0x0000)));
    assertEquals(0x8000_0000, Float.floatToRawIntBits(f16(0x8000)), "-0 keeps its sign");
    assertEquals(-0x1p-24f, f16(0x8001));
  }

  @Test
  void bfloat16KnownValues() {
    assertEquals(3.140625f, bf16(0x4049));
    assertEquals(1.0f, bf16(0x3f80));
    assertEquals(-2.5f, bf16(0xc020));
    assertEquals(Float.POSITIVE_INFINITY, bf16(0x7f80));
    assertEquals(Float.NEGATIVE_INFINITY, bf16(0xff80));
    assertTrue(Float.isNaN(bf16(0x7fc0)));
    assertEquals(0x1p-133f, bf16(0x0001), "the smallest bfloat16 subnormal");
    assertEquals(0x8000_0000, Float.floatToRawIntBits(bf16(0x8000)));
  }

  @Test
  void everyHalfAndBfloat16WidensAsNd4jCastsIt() {
    for (DataType type : new DataType[] {DataType.FLOAT16, DataType.BFLOAT16}) {
      INDArray all = Nd4j.createUninitialized(type, 1 << 16);
      ByteBuffer bytes = all.data().asNio().order(ByteOrder.LITTLE_ENDIAN);
      for (int bits = 0; bits < 1 << 16; bits++) {
        bytes.putShort(2 * bits, (short) bits);
      }
      INDArray cast = all.castTo(DataType.FLOAT);
      for (int bits = 0; bits < 1 << 16; bits++) {
        float ours = type == DataType.FLOAT16 ? f16(bits) : bf16(bits);
        float nd4j = cast.getFloat(bits);
        if (Float.isNaN(nd4j)) {
          assertTrue(Float.isNaN(ours), String.format("%s 0x%04x: %s", type, bits, ours));
        } else {
          assertEquals(Float.floatToRawIntBits(nd4j), Float.floatToRawIntBits(ours),
              String.format("%s 0x%04x: ND4J %s, ours %s", type, bits, nd4j, ours));
        }
      }
    }
  }
}
