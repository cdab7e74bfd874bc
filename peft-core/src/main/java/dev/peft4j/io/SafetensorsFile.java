package dev.peft4j.io;

import static com.google.common.base.Preconditions.checkNotNull;
import static com.google.common.base.Preconditions.checkState;

import java.io.IOException;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * An open safetensors file (format in {@link dev.peft4j.io}): its header, parsed and validated by {@link #open},
 * and its tensors, read on demand with positioned reads, one bounded chunk at a time, straight into the arrays'
 * memory, so that a file of many gigabytes never has to fit on the Java heap.
 * <pre>{@code
 * try (SafetensorsFile f = SafetensorsFile.open(Path.of("adapter_model.safetensors"))) {
 *   for (String name : f.names()) {
 *     INDArray w = f.readFloat(name);   // F16 and BF16 widened to FLOAT
 *   }
 * }
 * }</pre>
 * The file stays open until {@link #close}: every read sees the file the header was read from, even if a writer
 * replaces it meanwhile (as {@link Safetensors#write} does, by renaming). Reads may run from several threads at
 * once.
 */
public final class SafetensorsFile implements AutoCloseable {

  /** The largest header accepted, 100 MiB (the reference implementation stops at 100,000,000 bytes). */
  static final long MAX_HEADER_BYTES = 100L << 20;

  private static final int LENGTH_BYTES = 8;

  private final Path file;
  private final FileChannel channel;
  private final long dataStart; // file position of the data section
  private final Map<String, TensorInfo> tensors; // in the order of their data
  private final Map<String, String> metadata;

  private SafetensorsFile(Path file, FileChannel channel, long dataStart, SafetensorsHeader header) {
    this.file = file;
    this.channel = channel;
    this.dataStart = dataStart;
    Map<String, TensorInfo> byName = new LinkedHashMap<>();
    header.tensors().forEach(t -> byName.put(t.name(), t));
    this.tensors = Collections.unmodifiableMap(byName);
    this.metadata = header.metadata();
  }

  /**
   * Opens {@code file} and reads and validates its whole header; no data is read. Checks: the header length is at
   * least 2 and at most min(file size − 8, 100 MiB); the header is UTF-8 strict JSON; each tensor has a supported
   * dtype, a shape of non-negative integers and {@code data_offsets} {@code [begin, end]} with
   * {@code 0 ≤ begin ≤ end ≤} the data section's length and {@code end − begin = product(shape) × dtype size}; no
   * two tensors' bytes overlap.
   *
   * @throws SafetensorsFormatException if the file breaks the format; its message names the file and the problem
   * @throws IOException                if the file cannot be read
   */
  public static SafetensorsFile open(Path file) throws IOException {
    checkNotNull(file, "file");
    FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
    boolean opened = false;
    try {
      long size = channel.size();
      if (size < LENGTH_BYTES) {
        throw new SafetensorsFormatException(file, String.format(
            "the file has %s bytes, fewer than the 8 of the header length", size));
      }
      ByteBuffer lengthBytes = ByteBuffer.allocate(LENGTH_BYTES).order(ByteOrder.LITTLE_ENDIAN);
      readFully(file, channel, lengthBytes, 0, "the header length");
      long headerLength = lengthBytes.getLong(0); // unsigned: "negative" means above 2^63 - 1
      if (headerLength >= 0 && headerLength < 2) {
        throw new SafetensorsFormatException(file, String.format(
            "header length %s is too short for a JSON object", headerLength));
      }
      if (Long.compareUnsigned(headerLength, MAX_HEADER_BYTES) > 0) {
        throw new SafetensorsFormatException(file, String.format(
            "header length %s exceeds the limit of %s bytes", Long.toUnsignedString(headerLength), MAX_HEADER_BYTES));
      }
      if (headerLength > size - LENGTH_BYTES) {
        throw new SafetensorsFormatException(file, String.format(
            "header length %s overruns the %s bytes after the length field", headerLength, size - LENGTH_BYTES));
      }
      ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
      readFully(file, channel, headerBytes, LENGTH_BYTES, "the header");
      long dataStart = LENGTH_BYTES + headerLength;
      SafetensorsHeader header = SafetensorsHeader.parse(file, headerBytes.array(), size - dataStart);
      SafetensorsFile result = new SafetensorsFile(file, channel, dataStart, header);
      opened = true;
      return result;
    } finally {
      if (!opened) {
        channel.close();
      }
    }
  }

  /** The tensors' names, in the order of their data in the file. */
  public List<String> names() {
    return List.copyOf(tensors.keySet());
  }

  /**
   * The header entry of tensor {@code name}.
   *
   * @throws IllegalArgumentException if there is no such tensor; the message lists a few that exist
   */
  public TensorInfo info(String name) {
    TensorInfo info = tensors.get(name);
    if (info == null) {
      List<String> some = tensors.keySet().stream().limit(5).toList();
      throw new IllegalArgumentException(String.format("%s has no tensor '%s'; it has %s tensors%s", file, name,
          tensors.size(), some.isEmpty() ? "" : ", e.g. " + String.join(", ", some)));
    }
    return info;
  }

  /** The header's {@code __metadata__}, in its order; empty if it has none. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /**
   * Tensor {@code name} as an array of its own type ({@link SafetensorsDtype#nd4jType()}), C order, of its shape:
   * rank 0 for a scalar, empty for a shape with a 0.
   *
   * @throws IllegalArgumentException   if there is no such tensor
   * @throws IllegalStateException      if this file was closed
   * @throws SafetensorsFormatException if the file has become shorter since it was opened
   * @throws IOException                if reading fails
   */
  public INDArray read(String name) throws IOException {
    TensorInfo info = info(name);
    checkState(channel.isOpen(), "%s is closed", file);
    INDArray array = Nd4j.createUninitialized(info.dtype().nd4jType(), info.shape(), 'c');
    long length = info.byteLength();
    for (long done = 0; done < length; done += NativeBytes.CHUNK) {
      ByteBuffer window = NativeBytes.window(array, done, (int) Math.min(NativeBytes.CHUNK, length - done));
      readFully(file, channel, window, dataStart + info.begin() + done, "tensor '" + name + "'");
    }
    NativeBytes.afterHostWrite(array);
    Reference.reachabilityFence(array); // the windows do not keep the array's memory alive
    return array;
  }

  /**
   * Tensor {@code name} as a FLOAT array: F32 as is, F16 and BF16 widened exactly. Other types are not converted,
   * so that nothing is silently narrowed (F64) or turned from integers into floats.
   *
   * @throws IllegalArgumentException if there is no such tensor or its dtype is not F32, F16 or BF16
   * @see #read
   */
  public INDArray readFloat(String name) throws IOException {
    TensorInfo info = info(name);
    return switch (info.dtype()) {
      case F32 -> read(name);
      case F16, BF16 -> widen(info);
      default -> throw new IllegalArgumentException(String.format(
          "tensor '%s' is %s; readFloat reads only F32, F16 and BF16 (read gives it as %s)", name, info.dtype(),
          info.dtype().nd4jType()));
    };
  }

  /** Closes the file; later reads fail. */
  @Override
  public void close() throws IOException {
    channel.close();
  }

  private INDArray widen(TensorInfo info) throws IOException {
    checkState(channel.isOpen(), "%s is closed", file);
    INDArray array = Nd4j.createUninitialized(DataType.FLOAT, info.shape(), 'c');
    ByteBuffer halves = ByteBuffer.allocate(NativeBytes.CHUNK / 2).order(ByteOrder.LITTLE_ENDIAN);
    long length = info.byteLength(); // 2 bytes per element
    for (long done = 0; done < length; done += halves.capacity()) {
      int chunk = (int) Math.min(halves.capacity(), length - done);
      halves.clear().limit(chunk);
      readFully(file, channel, halves, dataStart + info.begin() + done, "tensor '" + info.name() + "'");
      FloatBuffer floats = NativeBytes.window(array, done * 2, chunk * 2).asFloatBuffer();
      for (int i = 0; i < chunk / 2; i++) {
        short bits = halves.getShort(2 * i);
        floats.put(i, info.dtype() == SafetensorsDtype.F16 ? HalfFloats.f16ToFloat(bits)
            : HalfFloats.bf16ToFloat(bits));
      }
    }
    NativeBytes.afterHostWrite(array);
    Reference.reachabilityFence(array);
    return array;
  }

  /** Fills {@code buffer} from {@code position}; the file must not end first. */
  private static void readFully(Path file, FileChannel channel, ByteBuffer buffer, long position, String what)
      throws IOException {
    long at = position;
    while (buffer.hasRemaining()) {
      int n = channel.read(buffer, at);
      if (n < 0) {
        throw new SafetensorsFormatException(file, String.format(
            "the file ends at byte %s, inside %s (did it change after it was opened?)", at, what));
      }
      at += n;
    }
  }
}
