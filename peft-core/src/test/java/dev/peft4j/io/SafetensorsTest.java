package dev.peft4j.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedByInterruptException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

class SafetensorsTest {

  private static final DataType[] SUPPORTED = {DataType.DOUBLE, DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16,
      DataType.INT64, DataType.INT32, DataType.INT16, DataType.INT8, DataType.UINT8, DataType.BOOL};

  /**
   * The bytes of {@code save_file({"a": torch.tensor([1.0, -2.5])}, f, metadata={"format": "pt"})}, written out by
   * hand: serde_json's compact header, 85 bytes, padded with 3 spaces to 88 = 0x58.
   */
  private static final String PYTHON_HEADER =
      "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   ";

  @TempDir
  Path dir;

  /** An array of {@code type} filled with random bytes (NaN payloads, subnormals, …), BOOL with 0 or 1. */
  static INDArray randomArray(Random random, DataType type, long... shape) {
    INDArray a = Nd4j.createUninitialized(type, shape, 'c');
    if (a.isEmpty()) {
      return a;
    }
    byte[] bytes = new byte[(int) (a.length() * type.width())];
    random.nextBytes(bytes);
    if (type == DataType.BOOL) {
      for (int i = 0; i < bytes.length; i++) {
        bytes[i] &= 1;
      }
    }
    a.data().asNio().put(bytes);
    return a;
  }

  /** The elements' bytes in C order. */
  static byte[] bytesOf(INDArray a) {
    if (a.isEmpty()) {
      return new byte[0];
    }
    INDArray c = a.dup('c');
    byte[] bytes = new byte[(int) (c.length() * c.dataType().width())];
    c.data().asNio().get(bytes);
    return bytes;
  }

  private static void assertSameTensor(INDArray expected, INDArray actual, String what) {
    assertEquals(expected.dataType(), actual.dataType(), what);
    assertArrayEquals(expected.shape(), actual.shape(), what);
    assertArrayEquals(bytesOf(expected), bytesOf(actual), what);
  }

  @Test
  void everyTypeRoundTripsByteForByteWithScalarsEmptyTensorsAndMetadata() throws IOException {
    Random random = new Random(1);
    Map<String, INDArray> tensors = new LinkedHashMap<>();
    for (DataType type : SUPPORTED) {
      String t = type.name().toLowerCase();
      tensors.put(t + ".matrix", randomArray(random, type, 3, 5));
      tensors.put(t + ".rank3", randomArray(random, type, 2, 1, 3));
      tensors.put(t + ".vector", randomArray(random, type, 7));
      tensors.put(t + ".scalar", randomArray(random, type));
      tensors.put(t + ".empty", randomArray(random, type, 2, 0, 3));
    }
    Map<String, String> metadata = Map.of("format", "pt", "note", "ünïcödé \"quoted\" \\ \n", "", "empty key");
    Path file = dir.resolve("all.safetensors");
    Safetensors.write(file, tensors, metadata);

    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertEquals(metadata, f.metadata());
      assertEquals(tensors.keySet(), Set.copyOf(f.names()));
      for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
        INDArray read = f.read(e.getKey());
        assertSameTensor(e.getValue(), read, e.getKey());
        TensorInfo info = f.info(e.getKey());
        assertEquals(SafetensorsDtype.of(e.getValue().dataType()), info.dtype());
        assertArrayEquals(e.getValue().shape(), info.shape());
      }
      assertEquals(0, f.read("float.scalar").rank(), "a scalar stays rank 0");
      assertTrue(f.read("int.empty").isEmpty());
      assertEquals(0, f.info("bool.empty").byteLength());
    }
  }

  @Test
  void emptyMetadataIsLeftOutAndATensorlessFileIsValid() throws IOException {
    Path file = dir.resolve("none.safetensors");
    Safetensors.write(file, Map.of(), Map.of());
    byte[] bytes = Files.readAllBytes(file);
    assertEquals("{}      ", new String(bytes, 8, bytes.length - 8, StandardCharsets.UTF_8));
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertEquals(List.of(), f.names());
      assertEquals(Map.of(), f.metadata());
    }
  }

  @Test
  void viewsAndFortranOrderArraysAreWrittenInCOrder() throws IOException {
    INDArray base = Nd4j.arange(24).castTo(DataType.FLOAT).reshape(4, 6);
    Map<String, INDArray> tensors = Map.of(
        "transposed", base.transpose(),
        "f_order", base.dup('f'),
        "rows", base.get(NDArrayIndex.interval(1, 3), NDArrayIndex.all()),
        "strided", base.get(NDArrayIndex.all(), NDArrayIndex.interval(0, 2, 6)),
        "row", base.getRow(2));
    Path file = dir.resolve("views.safetensors");
    Safetensors.write(file, tensors, Map.of());
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
        INDArray read = f.read(e.getKey());
        assertEquals('c', read.ordering());
        assertEquals(e.getValue(), read, e.getKey());
      }
    }
  }

  @Test
  void tensorsLargerThanOneChunkRoundTripAndWiden() throws IOException {
    Random random = new Random(2);
    long n = NativeBytes.CHUNK * 5L / 4 + 3; // elements: the F32 and F16 data span 3 and 2 chunks, unevenly
    INDArray f32 = randomArray(random, DataType.FLOAT, n);
    INDArray f16 = Nd4j.rand(DataType.FLOAT, 3, n / 3).subi(0.5).muli(1000).castTo(DataType.FLOAT16);
    INDArray bf16 = Nd4j.rand(DataType.FLOAT, n).subi(0.5).castTo(DataType.BFLOAT16);
    Path file = dir.resolve("large.safetensors");
    Safetensors.write(file, Map.of("f32", f32, "f16", f16, "bf16", bf16), Map.of());
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertSameTensor(f32, f.read("f32"), "f32");
      assertSameTensor(f32, f.readFloat("f32"), "f32 as float");
      assertSameTensor(f16, f.read("f16"), "f16");
      assertSameTensor(f16.castTo(DataType.FLOAT), f.readFloat("f16"), "f16 widened");
      assertSameTensor(bf16.castTo(DataType.FLOAT), f.readFloat("bf16"), "bf16 widened");
    }
  }

  @Test
  void dataIsLaidOutWidestElementsFirstSoEveryTensorIsAligned() throws IOException {
    Random random = new Random(3);
    Map<String, INDArray> tensors = Map.of(
        "a", randomArray(random, DataType.INT8, 3),
        "b", randomArray(random, DataType.FLOAT16, 3),
        "c", randomArray(random, DataType.DOUBLE, 1),
        "d", randomArray(random, DataType.FLOAT, 3),
        "e", randomArray(random, DataType.INT64, 2));
    Path file = dir.resolve("aligned.safetensors");
    Safetensors.write(file, tensors, Map.of());
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertEquals(List.of("c", "e", "d", "b", "a"), f.names(), "names() is in the order of the data");
      long headerLength = ByteBuffer.wrap(Files.readAllBytes(file), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
      for (String name : f.names()) {
        TensorInfo info = f.info(name);
        assertEquals(0, (8 + headerLength + info.begin()) % info.dtype().byteSize(), name);
      }
    }
  }

  @Test
  void readsAHandWrittenFileAsPythonWritesIt() throws IOException {
    Path file = dir.resolve("python.safetensors");
    Files.write(file, pythonFile());
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertEquals(List.of("a"), f.names());
      assertEquals(Map.of("format", "pt"), f.metadata());
      assertEquals(new TensorInfo("a", SafetensorsDtype.F32, new long[] {2}, 0, 8), f.info("a"));
      INDArray a = f.read("a");
      assertEquals(DataType.FLOAT, a.dataType());
      assertArrayEquals(new float[] {1.0f, -2.5f}, a.toFloatVector());
    }
  }

  @Test
  void writesTheSameBytesAsPython() throws IOException {
    Path file = dir.resolve("ours.safetensors");
    Safetensors.write(file, Map.of("a", Nd4j.createFromArray(1.0f, -2.5f)), Map.of("format", "pt"));
    byte[] ours = Files.readAllBytes(file);
    long headerLength = ByteBuffer.wrap(ours, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    assertEquals(0, headerLength % 8, "the header is padded to a multiple of 8");
    assertArrayEquals(pythonFile(), ours);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertArrayEquals(new float[] {1.0f, -2.5f}, f.readFloat("a").toFloatVector());
    }
  }

  private static byte[] pythonFile() {
    byte[] header = PYTHON_HEADER.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(8 + header.length + 8).order(ByteOrder.LITTLE_ENDIAN)
        .putLong(header.length).put(header).putFloat(1.0f).putFloat(-2.5f).array();
  }

  @Test
  void readFloatWidensOnlyFloatTypes() throws IOException {
    Path file = dir.resolve("types.safetensors");
    Safetensors.write(file, Map.of(
        "half", Nd4j.createFromArray(1.0f, -2.5f, 65504f).castTo(DataType.FLOAT16),
        "bf16", Nd4j.createFromArray(3.140625f).castTo(DataType.BFLOAT16),
        "double", Nd4j.createFromArray(1.0, 2.0),
        "int", Nd4j.createFromArray(1, 2)), Map.of());
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertEquals(DataType.FLOAT16, f.read("half").dataType());
      INDArray half = f.readFloat("half");
      assertEquals(DataType.FLOAT, half.dataType());
      assertArrayEquals(new float[] {1.0f, -2.5f, 65504f}, half.toFloatVector());
      assertArrayEquals(new float[] {3.140625f}, f.readFloat("bf16").toFloatVector());
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> f.readFloat("double"));
      assertTrue(e.getMessage().contains("'double' is F64"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> f.readFloat("int"));
      assertTrue(e.getMessage().contains("'int' is I32"), e.getMessage());
    }
  }

  @Test
  void anUnknownNameListsSomeThatExist() throws IOException {
    Path file = dir.resolve("names.safetensors");
    Safetensors.write(file, Map.of("fc.weight", Nd4j.zeros(2), "fc.bias", Nd4j.zeros(1)), Map.of());
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> f.read("fc.wieght"));
      assertTrue(e.getMessage().contains("no tensor 'fc.wieght'") && e.getMessage().contains("fc.bias, fc.weight"),
          e.getMessage());
      assertThrows(IllegalArgumentException.class, () -> f.info("nope"));
    }
  }

  @Test
  void aClosedFileRefusesToRead() throws IOException {
    Path file = dir.resolve("closed.safetensors");
    Safetensors.write(file, Map.of("a", Nd4j.zeros(2)), Map.of());
    SafetensorsFile f = SafetensorsFile.open(file);
    f.close();
    assertEquals(List.of("a"), f.names(), "the header stays readable");
    assertThrows(IllegalStateException.class, () -> f.read("a"));
    assertThrows(IllegalStateException.class, () -> f.readFloat("a"));
  }

  @Test
  void anOpenFileKeepsReadingTheFileItValidatedAfterItIsReplaced() throws IOException {
    Path file = dir.resolve("replaced.safetensors");
    Safetensors.write(file, Map.of("a", Nd4j.createFromArray(1f, 2f)), Map.of());
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      Safetensors.write(file, Map.of("b", Nd4j.createFromArray(3.0, 4.0, 5.0)), Map.of());
      assertArrayEquals(new float[] {1f, 2f}, f.read("a").toFloatVector());
    }
  }

  @Test
  void badArgumentsFailBeforeTouchingTheDisk() {
    Path file = dir.resolve("bad.safetensors");
    INDArray ok = Nd4j.zeros(2);
    assertThrows(IllegalArgumentException.class,
        () -> Safetensors.write(file, Map.of("__metadata__", ok), Map.of()));
    Map<String, INDArray> nullArray = new LinkedHashMap<>();
    nullArray.put("a", null);
    assertThrows(IllegalArgumentException.class, () -> Safetensors.write(file, nullArray, Map.of()));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Safetensors.write(file, Map.of("u32", Nd4j.create(DataType.UINT32, 2)), Map.of()));
    assertTrue(e.getMessage().contains("tensor 'u32'") && e.getMessage().contains("UINT32"), e.getMessage());
    assertFalse(Files.exists(file));
    assertEquals(List.of(), listing());
  }

  @Test
  void anUnwritableTypeLeavesTheOldFileByteIdenticalAndNoTemporaryFile() throws IOException {
    Path file = dir.resolve("model.safetensors");
    Safetensors.write(file, Map.of("a", Nd4j.createFromArray(1f, 2f)), Map.of("format", "pt"));
    byte[] before = Files.readAllBytes(file);
    for (INDArray unwritable : List.of(Nd4j.create("utf8", "strings"), Nd4j.create(DataType.UINT16, 3))) {
      assertThrows(IllegalArgumentException.class, () -> Safetensors.write(file,
          Map.of("a", Nd4j.createFromArray(9f, 9f), "z", unwritable), Map.of()));
      assertArrayEquals(before, Files.readAllBytes(file));
      assertEquals(List.of(file), listing());
    }
  }

  @Test
  void aFailureWhileWritingDeletesTheTemporaryFileAndLeavesTheOldOne() throws IOException {
    Path file = dir.resolve("model.safetensors");
    Safetensors.write(file, Map.of("a", Nd4j.createFromArray(1f, 2f)), Map.of("format", "pt"));
    byte[] before = Files.readAllBytes(file);
    Thread.currentThread().interrupt(); // the channel's first write then fails with ClosedByInterruptException
    try {
      assertThrows(ClosedByInterruptException.class,
          () -> Safetensors.write(file, Map.of("b", Nd4j.createFromArray(3.0, 4.0)), Map.of()));
    } finally {
      Thread.interrupted();
    }
    assertArrayEquals(before, Files.readAllBytes(file));
    assertEquals(List.of(file), listing());

    Path directory = dir.resolve("a_directory");
    Files.createDirectories(directory.resolve("inside"));
    assertThrows(IOException.class, () -> Safetensors.write(directory, Map.of("a", Nd4j.zeros(1)), Map.of()),
        "a non-empty directory cannot be replaced by a rename");
    assertTrue(Files.isDirectory(directory.resolve("inside")));
    assertEquals(List.of(directory, file), listing());
  }

  private List<Path> listing() {
    try (Stream<Path> files = Files.list(dir)) {
      return files.sorted().toList();
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }
}
