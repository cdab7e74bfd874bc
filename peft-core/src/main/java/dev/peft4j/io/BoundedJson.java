package dev.peft4j.io;

import com.google.gson.Gson;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.Strictness;
import com.google.gson.TypeAdapter;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.io.StringReader;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads a small JSON file written by another program (an {@code adapter_config.json}) with limits checked before
 * Gson builds anything: at most {@link #MAX_BYTES} bytes, strict UTF-8, nesting at most {@link #MAX_DEPTH} deep,
 * strings (names included) at most {@link #MAX_STRING_CHARS} characters, strict JSON (no comments, single quotes or
 * trailing text). Hugging Face PEFT's configs are a few KB, nested 3 deep; the limits leave room for large
 * {@code rank_pattern}s while no input can exhaust the stack or the heap.
 */
final class BoundedJson {

  static final long MAX_BYTES = 4L << 20;
  static final int MAX_DEPTH = 64;
  static final int MAX_STRING_CHARS = 1 << 16;

  private static final TypeAdapter<JsonElement> TREE = new Gson().getAdapter(JsonElement.class);

  private BoundedJson() {}

  /**
   * The JSON object in {@code file}.
   *
   * @throws IOException naming the file and what was found where a JSON object within the limits was expected: a
   *     missing file, a directory, an oversized file, invalid UTF-8 (with the byte offset), invalid JSON (with
   *     Gson's position), nesting or a string beyond the limits, a value that is not an object
   */
  static JsonObject readObject(Path file) throws IOException {
    if (Files.isDirectory(file)) {
      throw new IOException(file + ": is a directory; expected a JSON file");
    }
    if (!Files.exists(file)) {
      throw new IOException(file + ": not found");
    }
    long size = Files.size(file);
    if (size > MAX_BYTES) {
      throw new IOException(String.format("%s: %s bytes; an adapter config may have at most %s", file, size,
          MAX_BYTES));
    }
    String text = utf8(file, Files.readAllBytes(file));
    checkLimits(file, text);
    JsonReader reader = new JsonReader(new StringReader(text));
    reader.setStrictness(Strictness.STRICT);
    JsonElement parsed;
    try {
      parsed = TREE.read(reader);
      if (reader.peek() != JsonToken.END_DOCUMENT) {
        throw new IOException(String.format("%s: not valid JSON: more text after the JSON value %s", file,
            reader.getPath()));
      }
    } catch (IOException | RuntimeException e) { // MalformedJsonException, EOFException, JsonSyntaxException
      if (e.getMessage() != null && e.getMessage().startsWith(file.toString())) {
        throw e;
      }
      throw new IOException(file + ": not valid JSON (" + e.getMessage() + ")", e);
    }
    if (!parsed.isJsonObject()) {
      throw new IOException(String.format("%s: holds a JSON %s; expected a JSON object", file, kind(parsed)));
    }
    return parsed.getAsJsonObject();
  }

  /** Decodes strictly, naming the byte offset of the first byte that is not UTF-8. */
  private static String utf8(Path file, byte[] bytes) throws IOException {
    CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT)
        .onUnmappableCharacter(CodingErrorAction.REPORT);
    ByteBuffer in = ByteBuffer.wrap(bytes);
    CharBuffer out = CharBuffer.allocate(bytes.length);
    CoderResult result = decoder.decode(in, out, true);
    if (!result.isError()) {
      result = decoder.flush(out);
    }
    if (result.isError()) {
      throw new IOException(String.format("%s: byte %s (0x%02X) is not valid UTF-8; expected a UTF-8 JSON file",
          file, in.position(), bytes[Math.min(in.position(), bytes.length - 1)] & 0xFF));
    }
    return out.flip().toString();
  }

  /**
   * One pass over the text counting nesting outside strings and each string's length, so that a document nested
   * thousands deep (even inside a field nobody reads) is refused before a recursive walk could overflow the stack.
   */
  private static void checkLimits(Path file, String text) throws IOException {
    int depth = 0;
    boolean inString = false;
    int stringStart = 0;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (inString) {
        if (c == '\\') {
          i++; // the escaped character cannot end the string
        } else if (c == '"') {
          inString = false;
        }
        if (i - stringStart > MAX_STRING_CHARS) {
          throw new IOException(String.format("%s: a string starting at character %s is longer than %s characters",
              file, stringStart, MAX_STRING_CHARS));
        }
      } else if (c == '"') {
        inString = true;
        stringStart = i;
      } else if (c == '{' || c == '[') {
        if (++depth > MAX_DEPTH) {
          throw new IOException(String.format("%s: nested more than %s deep at character %s", file, MAX_DEPTH, i));
        }
      } else if (c == '}' || c == ']') {
        depth--;
      }
    }
  }

  private static String kind(JsonElement e) {
    if (e.isJsonArray() || e.isJsonNull()) {
      return e.isJsonArray() ? "array" : "null";
    }
    return e.getAsJsonPrimitive().isString() ? "string" : e.getAsJsonPrimitive().isNumber() ? "number" : "boolean";
  }
}
