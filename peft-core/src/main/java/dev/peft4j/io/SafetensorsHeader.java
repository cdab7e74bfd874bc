package dev.peft4j.io;

import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.io.StringReader;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.LongStream;

/**
 * A parsed and validated safetensors header: the tensors in the order of their data, and the metadata.
 * <pre>
 *   {"__metadata__": {"format": "pt"},                                       optional; string values only
 *    "&lt;name&gt;": {"dtype": "F32", "shape": [3, 2], "data_offsets": [begin, end]}, ...}
 * </pre>
 * Strict JSON (no comments, single quotes or trailing commas); a name may appear once; a tensor entry has exactly
 * those three fields. Like the reference implementation, it refuses shapes whose element count overflows 64 bits,
 * even when a dimension is 0. Unlike it, it allows unused bytes between tensors and after the last one.
 */
final class SafetensorsHeader {

  static final String METADATA = "__metadata__";

  private final Path file;
  private final long dataLength;
  private final List<TensorInfo> tensors = new ArrayList<>();
  private final Map<String, String> metadata = new LinkedHashMap<>();

  private SafetensorsHeader(Path file, long dataLength) {
    this.file = file;
    this.dataLength = dataLength;
  }

  /**
   * Parses {@code utf8} and checks every entry against a data section of {@code dataLength} bytes.
   *
   * @throws SafetensorsFormatException naming {@code file} and the problem
   */
  static SafetensorsHeader parse(Path file, byte[] utf8, long dataLength) throws SafetensorsFormatException {
    SafetensorsHeader header = new SafetensorsHeader(file, dataLength);
    String json;
    try {
      json = StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(utf8))
          .toString();
    } catch (CharacterCodingException e) {
      throw new SafetensorsFormatException(file, "the header is not valid UTF-8", e);
    }
    if (!json.startsWith("{")) {
      throw header.problem("the header does not start with '{'");
    }
    JsonReader reader = new JsonReader(new StringReader(json));
    reader.setStrictness(Strictness.STRICT);
    try {
      header.readObject(reader);
    } catch (SafetensorsFormatException e) {
      throw e;
    } catch (IOException e) { // Gson's MalformedJsonException and EOFException
      throw new SafetensorsFormatException(file, "the header is not valid JSON: " + syntaxError(e), e);
    }
    header.checkNoOverlap();
    header.tensors.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end)
        .thenComparing(TensorInfo::name));
    return header;
  }

  /** The tensors in the order of their data: by begin, then end, then name. */
  List<TensorInfo> tensors() {
    return Collections.unmodifiableList(tensors);
  }

  /** The metadata in the header's order; empty if there is none. */
  Map<String, String> metadata() {
    return Collections.unmodifiableMap(metadata);
  }

  private void readObject(JsonReader reader) throws IOException {
    reader.beginObject(); // the text starts with '{'
    boolean sawMetadata = false;
    Set<String> names = new HashSet<>();
    while (reader.peek() != JsonToken.END_OBJECT) {
      String name = reader.nextName();
      if (name.equals(METADATA)) {
        if (sawMetadata) {
          throw problem("'%s' appears twice", METADATA);
        }
        sawMetadata = true;
        readMetadata(reader);
      } else {
        if (!names.add(name)) {
          throw problem("tensor '%s' appears twice", name);
        }
        tensors.add(readTensor(reader, name));
      }
    }
    reader.endObject();
    if (reader.peek() != JsonToken.END_DOCUMENT) {
      throw problem("the header has more after its JSON object");
    }
  }

  private void readMetadata(JsonReader reader) throws IOException {
    if (reader.peek() == JsonToken.NULL) { // as the reference implementation reads it: no metadata
      reader.nextNull();
      return;
    }
    expect(reader, JsonToken.BEGIN_OBJECT, "'%s' must be an object of strings", METADATA);
    reader.beginObject();
    while (reader.peek() != JsonToken.END_OBJECT) {
      String key = reader.nextName();
      if (metadata.containsKey(key)) {
        throw problem("'%s' has the key '%s' twice", METADATA, key);
      }
      expect(reader, JsonToken.STRING, "'%s' value of '%s' must be a string", METADATA, key);
      metadata.put(key, reader.nextString());
    }
    reader.endObject();
  }

  private TensorInfo readTensor(JsonReader reader, String name) throws IOException {
    expect(reader, JsonToken.BEGIN_OBJECT, "tensor '%s' must be an object {dtype, shape, data_offsets}", name);
    reader.beginObject();
    String dtypeName = null;
    long[] shape = null;
    long[] offsets = null;
    while (reader.peek() != JsonToken.END_OBJECT) {
      String field = reader.nextName();
      switch (field) {
        case "dtype" -> {
          checkUnset(dtypeName, name, field);
          expect(reader, JsonToken.STRING, "tensor '%s' dtype must be a string", name);
          dtypeName = reader.nextString();
        }
        case "shape" -> {
          checkUnset(shape, name, field);
          shape = readCounts(reader, name, field);
        }
        case "data_offsets" -> {
          checkUnset(offsets, name, field);
          offsets = readCounts(reader, name, field);
        }
        default -> throw problem("tensor '%s' has an unknown field '%s'", name, field);
      }
    }
    reader.endObject();
    if (dtypeName == null || shape == null || offsets == null) {
      throw problem("tensor '%s' lacks %s", name, dtypeName == null ? "a dtype" : shape == null ? "a shape"
          : "data_offsets");
    }
    String dtypeFinal = dtypeName;
    SafetensorsDtype dtype = SafetensorsDtype.fromHeader(dtypeName).orElseThrow(
        () -> problem("tensor '%s' has dtype '%s', not one of %s", name, dtypeFinal,
            Arrays.toString(SafetensorsDtype.values())));
    if (offsets.length != 2) {
      throw problem("tensor '%s' data_offsets must be [begin, end], got %s", name, Arrays.toString(offsets));
    }
    long begin = offsets[0];
    long end = offsets[1];
    if (begin > end) {
      throw problem("tensor '%s' data_offsets [%s, %s] begin after they end", name, begin, end);
    }
    if (end > dataLength) {
      throw problem("tensor '%s' data_offsets [%s, %s] overrun the %s-byte data section", name, begin, end,
          dataLength);
    }
    long bytes = dtype.byteSize();
    try {
      for (long d : shape) {
        bytes = Math.multiplyExact(bytes, d);
      }
    } catch (ArithmeticException e) {
      throw problem("tensor '%s' shape %s has more bytes than a 64-bit count holds", name, Arrays.toString(shape));
    }
    if (end - begin != bytes) {
      throw problem("tensor '%s' data_offsets [%s, %s] hold %s bytes, but %s %s needs %s", name, begin, end,
          end - begin, dtype, Arrays.toString(shape), bytes);
    }
    return new TensorInfo(name, dtype, shape, begin, end);
  }

  /** A JSON array of non-negative integers that fit in a {@code long}: {@code 1.0} and {@code 1e3} are refused. */
  private long[] readCounts(JsonReader reader, String name, String field) throws IOException {
    expect(reader, JsonToken.BEGIN_ARRAY, "tensor '%s' %s must be an array of integers", name, field);
    reader.beginArray();
    LongStream.Builder counts = LongStream.builder();
    while (reader.peek() != JsonToken.END_ARRAY) {
      expect(reader, JsonToken.NUMBER, "tensor '%s' %s must be an array of integers", name, field);
      String literal = reader.nextString(); // the number's text as written
      if (!literal.chars().allMatch(c -> c >= '0' && c <= '9')) {
        throw problem("tensor '%s' %s holds %s, not a non-negative integer", name, field, literal);
      }
      try {
        counts.add(Long.parseLong(literal));
      } catch (NumberFormatException e) {
        throw problem("tensor '%s' %s holds %s, more than 2^63 - 1", name, field, literal);
      }
    }
    reader.endArray();
    return counts.build().toArray();
  }

  private void checkNoOverlap() throws SafetensorsFormatException {
    List<TensorInfo> nonEmpty = new ArrayList<>(tensors.stream().filter(t -> t.byteLength() > 0).toList());
    nonEmpty.sort(Comparator.comparingLong(TensorInfo::begin));
    for (int i = 1; i < nonEmpty.size(); i++) {
      TensorInfo a = nonEmpty.get(i - 1);
      TensorInfo b = nonEmpty.get(i);
      if (b.begin() < a.end()) {
        throw problem("tensors '%s' [%s, %s] and '%s' [%s, %s] overlap", a.name(), a.begin(), a.end(), b.name(),
            b.begin(), b.end());
      }
    }
  }

  /**
   * Gson's message without its second line (a link to Gson's troubleshooting guide) and with its advice to parse
   * leniently, which is meant for Gson's users, put as what it means here.
   */
  private static String syntaxError(IOException e) {
    String first = String.valueOf(e.getMessage()).lines().findFirst().orElse("");
    return first.replace("Use JsonReader.setStrictness(Strictness.LENIENT) to accept malformed JSON", "syntax error");
  }

  private void expect(JsonReader reader, JsonToken token, String message, Object... args) throws IOException {
    JsonToken next = reader.peek();
    if (next != token) {
      // the path may hold a '%', so it is appended after formatting
      throw new SafetensorsFormatException(file, String.format(message, args) + ", found " + next + " at "
          + reader.getPath());
    }
  }

  private void checkUnset(Object value, String name, String field) throws SafetensorsFormatException {
    if (value != null) {
      throw problem("tensor '%s' has %s twice", name, field);
    }
  }

  private SafetensorsFormatException problem(String message, Object... args) {
    return new SafetensorsFormatException(file, String.format(message, args));
  }
}
