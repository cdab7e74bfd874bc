package dev.peft4j.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Every malformed file fails {@link SafetensorsFile#open} with a {@link SafetensorsFormatException} naming the file,
 * and nothing else: hand-made cases with their messages, then seeded randomized corruptions of a valid file
 * (truncations, flipped header bytes, rewritten offsets and shapes; each case's seed is in its name).
 */
class SafetensorsFormatTest {

  @TempDir
  static Path dir;

  /** A valid file from our writer: six tensors of six dtypes and one metadata entry. */
  private static byte[] valid;

  @BeforeAll
  static void writeValidFile() throws IOException {
    Random random = new Random(42);
    Map<String, INDArray> tensors = Map.of(
        "embed.weight", SafetensorsTest.randomArray(random, DataType.FLOAT, 4, 3),
        "layer.bias", SafetensorsTest.randomArray(random, DataType.FLOAT16, 5),
        "layer.scale", SafetensorsTest.randomArray(random, DataType.BFLOAT16, 2, 2),
        "ids", SafetensorsTest.randomArray(random, DataType.INT64, 3),
        "mask", SafetensorsTest.randomArray(random, DataType.BOOL, 6),
        "pixels", SafetensorsTest.randomArray(random, DataType.UINT8, 2, 2));
    Path file = dir.resolve("valid.safetensors");
    Safetensors.write(file, tensors, Map.of("format", "pt"));
    valid = Files.readAllBytes(file);
  }

  // ---------------------------------------------------------------- hand-made cases

  /** A file of {@code header} (unpadded) and {@code dataLength} zero bytes. */
  private static byte[] file(String header, int dataLength) {
    byte[] json = header.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(8 + json.length + dataLength).order(ByteOrder.LITTLE_ENDIAN)
        .putLong(json.length).put(json).array();
  }

  private static byte[] withLength(long headerLength, byte[] file) {
    byte[] copy = file.clone();
    ByteBuffer.wrap(copy).order(ByteOrder.LITTLE_ENDIAN).putLong(0, headerLength);
    return copy;
  }

  private static Path save(String name, byte[] bytes) throws IOException {
    Path file = dir.resolve(name);
    Files.write(file, bytes);
    return file;
  }

  /** Asserts {@code open} fails with {@code "<file>: <problem>"}, {@code problem} containing {@code expected}. */
  private static void assertRejected(byte[] bytes, String expected) throws IOException {
    Path file = save("model.safetensors", bytes);
    SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> SafetensorsFile.open(file));
    assertTrue(e.getMessage().startsWith(file + ": ") && e.getMessage().contains(expected),
        () -> "expected '" + expected + "' in: " + e.getMessage());
  }

  private static String tensor(String name, String dtype, String shape, String offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
  }

  @Test
  void theHeaderLengthMustFitTheFileAndTheLimit() throws IOException {
    assertRejected(new byte[0], "the file has 0 bytes, fewer than the 8 of the header length");
    assertRejected(new byte[7], "the file has 7 bytes");
    assertRejected(file("", 0), "header length 0 is too short for a JSON object");
    assertRejected(file("{", 0), "header length 1 is too short");
    assertRejected(withLength(3, file("{}", 0)), "header length 3 overruns the 2 bytes after the length field");
    assertRejected(withLength(-1, file("{}", 0)), "header length 18446744073709551615 exceeds the limit of 104857600");
    assertRejected(withLength(Long.MAX_VALUE, file("{}", 0)), "header length 9223372036854775807 exceeds");
    assertRejected(withLength((100L << 20) + 1, file("{}", 0)), "header length 104857601 exceeds");
  }

  @Test
  void theHeaderMustBeAStrictJsonObject() throws IOException {
    assertRejected(file(" {}", 0), "the header does not start with '{'");
    assertRejected(file("[1]", 0), "the header does not start with '{'");
    assertRejected(new byte[] {2, 0, 0, 0, 0, 0, 0, 0, '{', (byte) 0xff}, "the header is not valid UTF-8");
    assertRejected(file("{\"a\":", 0), "the header is not valid JSON");
    assertRejected(file("{'a':1}", 0), "the header is not valid JSON: syntax error at line 1 column 3 path $.");
    assertRejected(file("{}x", 0), "the header is not valid JSON");
    assertRejected(file("{}{}", 0), "the header is not valid JSON");
    assertRejected(file("{\"a\":1}", 0), "tensor 'a' must be an object {dtype, shape, data_offsets}, found NUMBER");
    assertRejected(file("{\"a\":[[[[[[[[[[]]]]]]]]]]}", 0), "tensor 'a' must be an object");
  }

  @Test
  void spacePaddingAndUnusedBytesBetweenTensorsAreAccepted() throws IOException {
    String header = "{" + tensor("a", "F32", "[1]", "[4,8]") + "," + tensor("b", "U8", "[2]", "[10,12]") + "}  \n";
    byte[] bytes = file(header, 16);
    bytes[bytes.length - 16 + 4] = 0x00;
    bytes[bytes.length - 16 + 7] = 0x3f; // a = 0.5f at [4, 8)
    try (SafetensorsFile f = SafetensorsFile.open(save("gaps.safetensors", bytes))) {
      assertEquals(List.of("a", "b"), f.names());
      assertEquals(0.5f, f.read("a").getFloat(0));
    }
  }

  @Test
  void everyEntryNeedsASupportedDtypeAShapeAndOffsets() throws IOException {
    assertRejected(file("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "tensor 'a' lacks a dtype");
    assertRejected(file("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4), "tensor 'a' lacks a shape");
    assertRejected(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), "tensor 'a' lacks data_offsets");
    assertRejected(file("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
        "tensor 'a' has dtype twice");
    assertRejected(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4),
        "tensor 'a' has an unknown field 'x'");
    assertRejected(file("{" + tensor("a", "U32", "[1]", "[0,4]") + "}", 4),
        "tensor 'a' has dtype 'U32', not one of [F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL]");
    assertRejected(file("{" + tensor("a", "f32", "[1]", "[0,4]") + "}", 4), "dtype 'f32'");
    assertRejected(file("{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
        "tensor 'a' dtype must be a string, found NUMBER");
    assertRejected(file("{" + tensor("a", "F32", "[1]", "[0,4]") + "," + tensor("a", "F32", "[1]", "[4,8]") + "}", 8),
        "tensor 'a' appears twice");
  }

  @Test
  void shapesAndOffsetsAreNonNegativeIntegersThatFitInALong() throws IOException {
    assertRejected(file("{" + tensor("a", "F32", "[-1]", "[0,4]") + "}", 4), "shape holds -1, not a non-negative");
    assertRejected(file("{" + tensor("a", "F32", "[1.0]", "[0,4]") + "}", 4), "shape holds 1.0, not");
    assertRejected(file("{" + tensor("a", "F32", "[1]", "[0,4e0]") + "}", 4), "data_offsets holds 4e0, not");
    assertRejected(file("{" + tensor("a", "F32", "[1]", "[0,9223372036854775808]") + "}", 4),
        "data_offsets holds 9223372036854775808, more than 2^63 - 1");
    assertRejected(file("{" + tensor("a", "F32", "1", "[0,4]") + "}", 4), "tensor 'a' shape must be an array");
    assertRejected(file("{" + tensor("a", "F32", "[\"1\"]", "[0,4]") + "}", 4), "shape must be an array of integers");
    assertRejected(file("{" + tensor("a", "F32", "[1]", "[0,4,8]") + "}", 8),
        "tensor 'a' data_offsets must be [begin, end], got [0, 4, 8]");
  }

  @Test
  void offsetsMustLieInTheDataSectionMatchTheShapeAndNotOverlap() throws IOException {
    assertRejected(file("{" + tensor("a.weight", "F32", "[4,6]", "[0,96]") + "}", 64),
        "tensor 'a.weight' data_offsets [0, 96] overrun the 64-byte data section");
    assertRejected(file("{" + tensor("a", "F32", "[1]", "[8,4]") + "}", 8),
        "tensor 'a' data_offsets [8, 4] begin after they end");
    assertRejected(file("{" + tensor("a", "F32", "[2,3]", "[0,20]") + "}", 24),
        "tensor 'a' data_offsets [0, 20] hold 20 bytes, but F32 [2, 3] needs 24");
    assertRejected(file("{" + tensor("a", "BF16", "[4294967296,4294967296]", "[0,0]") + "}", 0),
        "tensor 'a' shape [4294967296, 4294967296] has more bytes than a 64-bit count holds");
    assertRejected(file("{" + tensor("a", "F64", "[4294967296,4294967296,0]", "[0,0]") + "}", 0),
        "has more bytes than a 64-bit count holds");
    assertRejected(file("{" + tensor("a", "F32", "[2]", "[0,8]") + "," + tensor("b", "I8", "[2]", "[7,9]") + "}", 9),
        "tensors 'a' [0, 8] and 'b' [7, 9] overlap");
    // an empty tensor holds no bytes, so it overlaps nothing
    String empty = "{" + tensor("a", "F32", "[2]", "[0,8]") + "," + tensor("e", "F32", "[0,3]", "[4,4]") + "}";
    try (SafetensorsFile f = SafetensorsFile.open(save("empty.safetensors", file(empty, 8)))) {
      assertEquals(List.of("a", "e"), f.names());
      assertTrue(f.read("e").isEmpty());
    }
  }

  @Test
  void metadataIsAnObjectOfStringsOrNull() throws IOException {
    assertRejected(file("{\"__metadata__\":{\"n\":1}}", 0), "'__metadata__' value of 'n' must be a string");
    assertRejected(file("{\"__metadata__\":[]}", 0), "'__metadata__' must be an object of strings");
    assertRejected(file("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0), "'__metadata__' has the key 'k' twice");
    assertRejected(file("{\"__metadata__\":{},\"__metadata__\":{}}", 0), "'__metadata__' appears twice");
    try (SafetensorsFile f = SafetensorsFile.open(save("null.safetensors", file("{\"__metadata__\":null}", 0)))) {
      assertEquals(Map.of(), f.metadata());
    }
  }

  // ---------------------------------------------------------------- seeded randomized corruptions

  static LongStream seeds(long first) {
    return LongStream.range(first, first + 70);
  }

  static LongStream truncationSeeds() {
    return seeds(1000);
  }

  static LongStream flipSeeds() {
    return seeds(2000);
  }

  static Stream<Arguments> rewriteSeeds() {
    Rewrite[] rewrites = Rewrite.values();
    return LongStream.range(3000, 3060).mapToObj(seed -> Arguments.of(seed, rewrites[(int) (seed % rewrites.length)]));
  }

  @ParameterizedTest(name = "seed={0}")
  @MethodSource("truncationSeeds")
  void everyTruncationIsRejected(long seed) throws IOException {
    Random random = new Random(seed);
    int length = random.nextInt(valid.length); // the last tensor ends at the end of the file
    byte[] truncated = Arrays.copyOf(valid, length);
    assertEquals(Outcome.REJECTED, outcome(truncated), "truncated to " + length + " of " + valid.length + " bytes");
  }

  @ParameterizedTest(name = "seed={0}")
  @MethodSource("flipSeeds")
  void flippedLengthOrHeaderBytesAreRejectedOrReadCleanly(long seed) throws IOException {
    Random random = new Random(seed);
    long headerLength = ByteBuffer.wrap(valid).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    byte[] flipped = valid.clone();
    String json = "0123456789[]{}\",: -.eE";
    for (int flips = 1 + random.nextInt(3); flips > 0; flips--) {
      int at = random.nextInt(8 + (int) headerLength);
      // random bits, a byte JSON is made of, or a letter for a letter (names stay valid): some flips keep it valid
      byte b = flipped[at];
      flipped[at] = switch (random.nextInt(3)) {
        case 0 -> (byte) (b ^ (1 + random.nextInt(255)));
        case 1 -> (byte) json.charAt(random.nextInt(json.length()));
        default -> Character.isLetter(b) ? (byte) ('a' + random.nextInt(26)) : (byte) (b ^ (1 + random.nextInt(255)));
      };
    }
    outcome(flipped); // either outcome is fine; any other exception fails the test
  }

  /** Ways to rewrite one tensor's entry of a valid header, each of which makes the file invalid. */
  enum Rewrite {
    OVERRUN, OVERLAP, BEGIN_AFTER_END, SIZE_MISMATCH, SHAPE_OVERFLOW, OFFSET_OVERFLOW, NEGATIVE, NOT_AN_INTEGER,
    WRONG_DTYPE, MISSING_FIELD
  }

  private record Entry(String name, String dtype, long[] shape, long begin, long end) {
    String json(String shape, String offsets) {
      return tensor(name, dtype, shape, offsets);
    }

    String shapeJson() {
      return LongStream.of(shape).mapToObj(Long::toString).toList().toString().replace(" ", "");
    }
  }

  @ParameterizedTest(name = "seed={0} {1}")
  @MethodSource("rewriteSeeds")
  void rewrittenOffsetsAndShapesAreRejected(long seed, Rewrite rewrite) throws IOException {
    Random random = new Random(seed);
    List<Entry> entries = new ArrayList<>();
    String[] dtypes = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"};
    int[] sizes = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1};
    long at = 0;
    for (int i = 0, n = 2 + random.nextInt(5); i < n; i++) {
      int t = random.nextInt(dtypes.length);
      long[] shape = LongStream.generate(() -> 1 + random.nextInt(4)).limit(1 + random.nextInt(3)).toArray();
      long bytes = sizes[t] * LongStream.of(shape).reduce(1, (x, y) -> x * y);
      entries.add(new Entry("t" + i, dtypes[t], shape, at, at + bytes));
      at += bytes;
    }
    long dataLength = at;
    int victim = random.nextInt(entries.size());
    Entry e = entries.get(victim);
    long size = e.end() - e.begin();
    String shape = e.shapeJson();
    long begin = e.begin();
    long end = e.end();
    String rewritten = null;
    switch (rewrite) {
      case OVERRUN -> {
        end = dataLength + 1 + random.nextInt(100);
        begin = end - size;
      }
      case OVERLAP -> {
        Entry other = entries.get((victim + 1 + random.nextInt(entries.size() - 1)) % entries.size());
        begin = other.begin() + random.nextInt((int) (other.end() - other.begin())); // inside the other's bytes
        end = begin + size;
      }
      case BEGIN_AFTER_END -> {
        begin = e.end() + 1 + random.nextInt(10);
        end = e.end();
      }
      case SIZE_MISMATCH -> end = e.end() + (random.nextBoolean() ? -1 - random.nextInt((int) size) : 1);
      case SHAPE_OVERFLOW -> shape = "[" + (1L << 31) + "," + (1L << 31) + "," + (4 + random.nextInt(1000)) + "]";
      case OFFSET_OVERFLOW -> end = Long.MAX_VALUE - random.nextInt(100);
      case NEGATIVE -> rewritten = random.nextBoolean() ? e.json("[-" + e.shape()[0] + "]", "[0," + size + "]")
          : e.json(shape, "[-" + random.nextInt(10) + "," + end + "]");
      case NOT_AN_INTEGER -> rewritten = e.json(shape, "[" + begin + ".0," + end + "]");
      case WRONG_DTYPE -> rewritten = e.json(shape, "[" + begin + "," + end + "]").replace(e.dtype(),
          List.of("U32", "F8_E4M3", "float32", "").get(random.nextInt(4)));
      case MISSING_FIELD -> rewritten = e.json(shape, "[" + begin + "," + end + "]")
          .replaceFirst(List.of("\"dtype\":\"[^\"]*\",", "\"shape\":\\[[^]]*],", ",\"data_offsets\":\\[[^]]*]")
              .get(random.nextInt(3)), "");
      default -> fail("unknown rewrite " + rewrite);
    }
    if (rewritten == null) {
      rewritten = e.json(shape, "[" + begin + "," + end + "]");
    }
    StringBuilder header = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
    for (Entry entry : entries) {
      header.append(',').append(entry == e ? rewritten : entry.json(entry.shapeJson(),
          "[" + entry.begin() + "," + entry.end() + "]"));
    }
    header.append('}');
    header.append(" ".repeat((8 - header.length() % 8) % 8));
    byte[] bytes = file(header.toString(), (int) dataLength);
    assertEquals(Outcome.REJECTED, outcome(bytes), header.toString());
  }

  enum Outcome { REJECTED, READ }

  /**
   * Opens {@code bytes} as a file: {@code REJECTED} on a {@link SafetensorsFormatException} naming the file; else
   * every tensor must read (and widen, where its dtype allows) without an exception: {@code READ}.
   */
  private static Outcome outcome(byte[] bytes) throws IOException {
    Path file = save("corrupt.safetensors", bytes);
    SafetensorsFile f;
    try {
      f = SafetensorsFile.open(file);
    } catch (SafetensorsFormatException e) {
      assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
      return Outcome.REJECTED;
    }
    try (f) {
      for (String name : f.names()) {
        TensorInfo info = f.info(name);
        INDArray array = f.read(name);
        assertArrayEquals(info.shape(), array.shape());
        if (info.dtype() == SafetensorsDtype.F32 || info.dtype() == SafetensorsDtype.F16
            || info.dtype() == SafetensorsDtype.BF16) {
          assertArrayEquals(info.shape(), f.readFloat(name).shape());
        }
      }
    }
    return Outcome.READ;
  }
}
