package dev.peft4j.model;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import dev.peft4j.io.JsonFields;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * A {@code config.json}: the typed reads of {@link JsonFields}, with errors as {@link IOException}s that name the file
 * and the field.
 */
final class JsonConfig {

  /** One read of {@link JsonFields}. */
  @FunctionalInterface
  private interface Read<T> {
    T from(JsonFields fields);
  }

  private final Path file;
  private final JsonFields fields;

  private JsonConfig(Path file, JsonObject root) {
    this.file = file;
    this.fields = JsonFields.of(root);
  }

  static JsonConfig read(Path file) throws IOException {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      throw new IOException(file + ": no such file", e);
    }
    try {
      JsonElement parsed = JsonParser.parseString(text);
      if (!parsed.isJsonObject()) {
        throw new IOException(file + ": not a JSON object");
      }
      return new JsonConfig(file, parsed.getAsJsonObject());
    } catch (JsonParseException e) {
      throw new IOException(file + ": not valid JSON (" + e.getMessage() + ")", e);
    }
  }

  String modelType() throws IOException {
    return string("model_type");
  }

  void requireModelType(String... supported) throws IOException {
    String type = modelType();
    for (String s : supported) {
      if (s.equals(type)) {
        return;
      }
    }
    throw new IOException(String.format("%s: model_type '%s' is not supported here; supported: %s", file, type,
        String.join(", ", supported)));
  }

  void requireString(String field, String expected) throws IOException {
    if (has(field) && !expected.equals(string(field))) {
      throw new IOException(String.format("%s: %s '%s' is not supported; only '%s'", file, field, string(field),
          expected));
    }
  }

  boolean has(String field) {
    return fields.has(field);
  }

  String string(String field) throws IOException {
    return read(f -> f.requiredString(field));
  }

  int integer(String field) throws IOException {
    if (!has(field)) {
      throw new IOException(String.format("%s: missing field '%s'", file, field));
    }
    return read(f -> f.integer(field, 0));
  }

  int integer(String field, int fallback) throws IOException {
    return read(f -> f.integer(field, fallback));
  }

  double number(String field, double fallback) throws IOException {
    return read(f -> f.number(field, fallback));
  }

  boolean bool(String field, boolean fallback) throws IOException {
    return read(f -> f.bool(field, fallback));
  }

  /**
   * The number of labels of a sequence-classification checkpoint: when {@code architectures} names a
   * {@code …ForSequenceClassification}, the size of {@code id2label} (transformers' {@code num_labels}; 2 when absent);
   * otherwise 0.
   */
  int sequenceClassificationLabels() throws IOException {
    if (!has("architectures") || !fields.get("architectures").isJsonArray()) {
      return 0;
    }
    for (JsonElement a : fields.get("architectures").getAsJsonArray()) {
      if (a.isJsonPrimitive() && a.getAsString().endsWith("ForSequenceClassification")) {
        return isObject("id2label") ? fields.object("id2label").size() : integer("num_labels", 2);
      }
    }
    return 0;
  }

  /** Whether {@code field} is present and JSON null. */
  boolean isNull(String field) {
    return has(field) && fields.get(field).isJsonNull();
  }

  /** A list of strings; empty when absent or null. */
  java.util.List<String> strings(String field) throws IOException {
    return read(f -> f.strings(field));
  }

  /** The number of entries of object {@code field} ({@code id2label}). */
  int size(String field) throws IOException {
    return read(f -> f.object(field).size());
  }

  /** Whether {@code field} holds a JSON object. */
  boolean isObject(String field) {
    return has(field) && fields.get(field).isJsonObject();
  }

  /** {@code field.key} as a string, or null when the field is no object or the key is absent or null. */
  String nestedString(String field, String key) throws IOException {
    return isObject(field) ? read(f -> JsonFields.of(f.object(field)).string(key, null)) : null;
  }

  /** {@code field.key} as a number, or {@code fallback} when absent. */
  double nestedNumber(String field, String key, double fallback) throws IOException {
    return isObject(field) ? read(f -> JsonFields.of(f.object(field)).number(key, fallback)) : fallback;
  }

  private <T> T read(Read<T> read) throws IOException {
    try {
      return read.from(fields);
    } catch (IllegalArgumentException e) {
      throw new IOException(file + ": " + e.getMessage(), e);
    }
  }
}
