package dev.peft4j.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The codec against bitsandbytes' algorithm ({@code scripts/fixtures_qlora.py} restates its reference backend in
 * torch; bitsandbytes itself does not install here), exact packing of every code, partial blocks and error bounds.
 */
class Nf4CodecTest {

  /** Half the widest gap between neighbouring NF4 values (between −1 and −0.6961928): the rounding error bound. */
  private static final float NF4_HALF_GAP = (1f - 0.6961928009986877f) / 2;

  private static JsonObject golden() throws IOException {
    try (InputStream in = Nf4CodecTest.class.getResourceAsStream("/fixtures/qlora/nf4_golden.json")) {
      return JsonParser.parseReader(new InputStreamReader(in, StandardCharsets.UTF_8)).getAsJsonObject();
    }
  }

  private static float[] floats(JsonArray a) {
    float[] out = new float[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = a.get(i).getAsFloat();
    }
    return out;
  }

  private static int[] ints(JsonArray a) {
    int[] out = new int[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = a.get(i).getAsInt();
    }
    return out;
  }

  private static int[] unsigned(byte[] bytes, int count) {
    int[] out = new int[count];
    for (int i = 0; i < count; i++) {
      out[i] = bytes[i] & 0xff;
    }
    return out;
  }

  @Test
  void dynamicMapIsBitsandbytes() throws IOException {
    assertArrayEquals(floats(golden().getAsJsonArray("dynamic_map")), Codes.DYNAMIC);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"w 40x41", "small 7x13"})
  void packedBytesAndAbsmaxAreBitsandbytes(String which) throws IOException {
    String prefix = which.startsWith("small") ? "small_" : "";
    JsonObject g = golden();
    int[] shape = ints(g.getAsJsonArray(prefix.isEmpty() ? "w_shape" : "small_shape"));
    INDArray w = Nd4j.create(floats(g.getAsJsonArray(prefix.isEmpty() ? "w" : "small")), new long[] {shape[0],
        shape[1]}, 'c');
    QuantizedTensor t = Quantization.nf4().doubleQuant(false).quantize(w);
    int[] expected = ints(g.getAsJsonArray(prefix + "packed"));
    int n = shape[0] * shape[1];
    assertEquals((n + 1) / 2, expected.length);
    assertArrayEquals(expected, unsigned(t.data(), expected.length), "bitsandbytes' bytes, high nibble first");
    for (int i = expected.length; i < t.data().length; i++) { // the partial block's padding: code 7 (0.0) twice
      assertEquals(0x77, t.data()[i] & 0xff, "padding byte " + i);
    }
    if (n % 2 == 1) {
      assertEquals(Codes.NF4_ZERO, t.code(n), "the odd element's partner is the code of 0, as bitsandbytes pads");
    }
    assertArrayEquals(floats(g.getAsJsonArray(prefix + "absmax")), t.storedAbsmax());
  }

  @Test
  void doubleQuantisationIsBitsandbytes() throws IOException {
    JsonObject g = golden();
    float[] stats = floats(g.getAsJsonArray("stats"));
    Quantization.Nested nested = Quantization.doubleQuantize(stats);
    assertEquals(g.get("stats_offset").getAsFloat(), nested.offset(), Math.ulp(nested.offset()),
        "the mean (torch sums float32 pairwise; we sum in double)");
    assertArrayEquals(ints(g.getAsJsonArray("stats_q")), unsigned(nested.codes(), stats.length));
    assertArrayEquals(floats(g.getAsJsonArray("stats_absmax")), nested.scales(), 1e-7f);
    float[] expected = floats(g.getAsJsonArray("stats_dequantized"));
    for (int j = 0; j < stats.length; j++) {
      float value = Codes.DYNAMIC[nested.codes()[j] & 0xff] * nested.scales()[j / 256] + nested.offset();
      assertEquals(expected[j], value, 1e-6f, "absmax " + j);
    }
  }

  @Test
  void everyCodePacksAndUnpacksExactlyInBothNibbles() {
    // element 2i takes code i, element 2i+1 takes code 15−i; ±1 are present, so absmax = 1 and every value is exact
    float[] values = new float[32];
    for (int i = 0; i < 16; i++) {
      values[2 * i] = Codes.NF4[i];
      values[2 * i + 1] = Codes.NF4[15 - i];
    }
    QuantizedTensor t = Quantization.nf4().doubleQuant(false).quantize(Nd4j.createFromArray(values));
    byte[] data = t.data();
    for (int i = 0; i < 16; i++) {
      assertEquals(i, t.code(2 * i));
      assertEquals(15 - i, t.code(2 * i + 1));
      assertEquals((i << 4) | (15 - i), data[i] & 0xff, "byte " + i);
    }
    assertArrayEquals(values, java.util.Arrays.copyOf(t.dequantize(), 32));
    assertArrayEquals(new float[] {1f}, t.storedAbsmax());
  }

  @ParameterizedTest(name = "n={0}")
  @ValueSource(ints = {1, 2, 63, 64, 65, 127, 129, 300, 16_449})
  void partialBlocksRoundTripWithinTheBound(int n) {
    long seed = 31L * n;
    System.out.println("seed " + seed);
    Random random = new Random(seed);
    float[] w = new float[n];
    for (int i = 0; i < n; i++) {
      w[i] = (float) (random.nextGaussian() * 0.02);
    }
    for (int block : new int[] {64, 128, 4096}) {
      for (boolean nested : new boolean[] {false, true}) {
        QuantizedTensor t = Quantization.nf4().blockSize(block).doubleQuant(nested).quantize(Nd4j.createFromArray(w));
        assertEquals((n + block - 1) / block, t.blocks());
        assertEquals(t.blocks() * block / 2, t.data().length);
        float[] a = t.absmax();
        float[] back = t.dequantize();
        assertEquals(n, back.length);
        for (int i = 0; i < n; i++) {
          float exactAbsmax = 0;
          for (int j = (i / block) * block; j < Math.min(n, (i / block + 1) * block); j++) {
            exactAbsmax = Math.max(exactAbsmax, Math.abs(w[j]));
          }
          // rounding to the nearest code, plus (double quantisation) the error of the block's scale
          float bound = exactAbsmax * NF4_HALF_GAP * 1.0001f + Math.abs(a[i / block] - exactAbsmax) + 1e-9f;
          assertTrue(Math.abs(back[i] - w[i]) <= bound,
              "n=" + n + " block " + block + " nested " + nested + " element " + i + ": " + w[i] + " -> " + back[i]);
        }
      }
    }
  }

  @Test
  void int8RoundTripsWithinHalfAStep() {
    long seed = 7;
    System.out.println("seed " + seed);
    Random random = new Random(seed);
    float[] w = new float[1000];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) random.nextGaussian();
    }
    QuantizedTensor t = Quantization.int8().quantize(Nd4j.createFromArray(w));
    float[] back = t.dequantize();
    float[] absmax = t.absmax();
    for (int i = 0; i < w.length; i++) {
      assertTrue(Math.abs(back[i] - w[i]) <= absmax[i / 64] / 254 * 1.0001f, "element " + i);
    }
    assertEquals(16 * 64 + 16 * 4, t.residentBytes());
  }

  @Test
  void residentBytesPerParameter() {
    INDArray w = Nd4j.rand(DataType.FLOAT, 384, 1536);                    // 589,824 values, 9,216 blocks
    assertEquals(589_824 / 2 + 4 * 9_216, Quantization.nf4().doubleQuant(false).quantize(w).residentBytes());
    assertEquals(589_824 / 2 + 9_216 + 4 * 36 + 4, Quantization.nf4().quantize(w).residentBytes());
  }

  @Test
  void blockSizesOutsideBitsandbytesSetAreRefused() {
    for (int size : new int[] {0, 32, 100, 8192, -64}) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> Quantization.nf4().blockSize(size));
      assertTrue(e.getMessage().contains("block size " + size) && e.getMessage().contains("[64, 128, 256, 512, "
          + "1024, 2048, 4096]"), e.getMessage());
    }
  }

  @Test
  void nonFiniteWeightsAreRefusedNamingTheElement() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Quantization.nf4().quantize(Nd4j.createFromArray(1f, Float.NaN, 2f)));
    assertTrue(e.getMessage().contains("NaN") && e.getMessage().contains("element 1"), e.getMessage());
  }
}
