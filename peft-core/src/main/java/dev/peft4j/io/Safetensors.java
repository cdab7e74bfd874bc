package dev.peft4j.io;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import com.google.gson.stream.JsonWriter;
import java.io.IOException;
import java.io.StringWriter;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Writes safetensors files (format in {@link dev.peft4j.io}) that Hugging Face's {@code safetensors} library reads.
 * <pre>{@code
 * Safetensors.write(Path.of("adapter_model.safetensors"), Map.of("fc.lora_A.weight", a), Map.of("format", "pt"));
 * }</pre>
 * The header is compact JSON, {@code __metadata__} first (if any), then the tensor entries by name, padded with
 * spaces to a multiple of 8 bytes. The data puts the tensors with the widest elements first, then goes by name, as
 * the reference writer orders it: every tensor then starts at a multiple of its element size in the file, so that a
 * reader can map it in place.
 */
public final class Safetensors {

  private Safetensors() {}

  /**
   * Writes {@code tensors} and {@code metadata} to {@code file}, atomically: into a temporary file beside it, which
   * is flushed to disk and then renamed over {@code file}. If anything fails, the temporary file is deleted and an
   * existing {@code file} is left as it was. (The directory is not synced, so after a crash the rename itself may be
   * lost: the old file would then be found whole.)
   *
   * @param tensors  name → array of a type {@link SafetensorsDtype#of} supports (DOUBLE, FLOAT, FLOAT16 alias HALF,
   *                 BFLOAT16, INT64 alias LONG, INT32, INT16, INT8, UINT8, BOOL); any order or view, written in C
   *                 order
   * @param metadata string → string, stored as {@code __metadata__}; may be empty
   * @throws IllegalArgumentException before touching the disk, for a name {@code __metadata__}, a null name,
   *                                  array, key or value, or an array type with no safetensors dtype
   * @throws IOException              if writing or renaming fails
   */
  public static void write(Path file, Map<String, INDArray> tensors, Map<String, String> metadata)
      throws IOException {
    checkNotNull(file, "file");
    checkArgument(file.getFileName() != null, "%s is not a file name", file);
    checkNotNull(tensors, "tensors");
    checkNotNull(metadata, "metadata");
    Map<String, INDArray> byName = new TreeMap<>();
    tensors.forEach((name, array) -> {
      checkArgument(name != null, "a tensor name is null");
      checkArgument(!name.equals(SafetensorsHeader.METADATA), "'%s' is reserved for the metadata",
          SafetensorsHeader.METADATA);
      checkArgument(array != null, "tensor '%s' is null", name);
      try {
        SafetensorsDtype.of(array.dataType());
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(String.format("tensor '%s': %s", name, e.getMessage()), e);
      }
      byName.put(name, array);
    });
    Map<String, String> sortedMetadata = new TreeMap<>();
    metadata.forEach((key, value) -> {
      checkArgument(key != null && value != null, "metadata must have no null key or value, got %s=%s", key, value);
      sortedMetadata.put(key, value);
    });

    List<String> dataOrder = new ArrayList<>(byName.keySet());
    dataOrder.sort(Comparator.comparingInt((String n) -> -byName.get(n).dataType().width())
        .thenComparing(Comparator.naturalOrder()));
    Map<String, long[]> offsets = new TreeMap<>();
    long at = 0;
    for (String name : dataOrder) {
      long length = NativeBytes.byteLength(byName.get(name));
      offsets.put(name, new long[] {at, at + length});
      at += length;
    }
    byte[] header = header(byName, offsets, sortedMetadata);
    checkArgument(header.length <= SafetensorsFile.MAX_HEADER_BYTES,
        "the header would take %s bytes, more than the %s that readers accept", header.length,
        SafetensorsFile.MAX_HEADER_BYTES);

    AtomicFiles.write(file, channel -> {
      writeFully(channel, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length));
      writeFully(channel, ByteBuffer.wrap(header));
      for (String name : dataOrder) {
        writeData(channel, byName.get(name));
      }
    });
  }

  /** Compact JSON, {@code __metadata__} first, then the tensors by name; spaces pad it to a multiple of 8 bytes. */
  private static byte[] header(Map<String, INDArray> byName, Map<String, long[]> offsets,
      Map<String, String> metadata) throws IOException {
    StringWriter text = new StringWriter();
    JsonWriter json = new JsonWriter(text);
    json.beginObject();
    if (!metadata.isEmpty()) {
      json.name(SafetensorsHeader.METADATA).beginObject();
      for (Map.Entry<String, String> e : metadata.entrySet()) {
        json.name(e.getKey()).value(e.getValue());
      }
      json.endObject();
    }
    for (Map.Entry<String, INDArray> e : byName.entrySet()) {
      json.name(e.getKey()).beginObject();
      json.name("dtype").value(SafetensorsDtype.of(e.getValue().dataType()).name());
      json.name("shape").beginArray();
      for (long d : e.getValue().shape()) {
        json.value(d);
      }
      json.endArray();
      long[] range = offsets.get(e.getKey());
      json.name("data_offsets").beginArray().value(range[0]).value(range[1]).endArray();
      json.endObject();
    }
    json.endObject();
    json.close();
    byte[] utf8 = text.toString().getBytes(StandardCharsets.UTF_8);
    int padded = (utf8.length + 7) / 8 * 8;
    byte[] header = new byte[padded];
    System.arraycopy(utf8, 0, header, 0, utf8.length);
    Arrays.fill(header, utf8.length, padded, (byte) ' ');
    return header;
  }

  private static void writeData(FileChannel channel, INDArray array) throws IOException {
    INDArray c = NativeBytes.cOrder(array);
    NativeBytes.beforeHostRead(c);
    long length = NativeBytes.byteLength(c);
    for (long done = 0; done < length; done += NativeBytes.CHUNK) {
      writeFully(channel, NativeBytes.window(c, done, (int) Math.min(NativeBytes.CHUNK, length - done)));
    }
    Reference.reachabilityFence(c); // the windows do not keep the array's memory alive
  }

  private static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
    while (buffer.hasRemaining()) {
      channel.write(buffer);
    }
  }
}
