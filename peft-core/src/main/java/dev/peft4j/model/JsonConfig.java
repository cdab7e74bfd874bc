package dev.peft4j.model;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** A {@code config.json}, read with errors that name the file and the field. */
final class JsonConfig {

  private final Path file;
  private final JsonObject root;

  private JsonConfig(Path file, JsonObject root) {
    this.file = file;
    this.root = root;
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
    if (root.has(field) && !expected.equals(string(field))) {
      throw new IOException(String.format("%s: %s '%s' is not supported; only '%s'", file, field, string(field),
          expected));
    }
  }

  boolean has(String field) {
    return root.has(field) && !root.get(field).isJsonNull();
  }

  String string(String field) throws IOException {
    return primitive(field).getAsString();
  }

  int integer(String field) throws IOException {
    JsonElement e = primitive(field);
    try {
      return e.getAsInt();
    } catch (NumberFormatException ex) {
      throw new IOException(String.format("%s: field '%s' must be an integer, got %s", file, field, e));
    }
  }

  int integer(String field, int fallback) throws IOException {
    return has(field) ? integer(field) : fallback;
  }

  double number(String field, double fallback) throws IOException {
    if (!has(field)) {
      return fallback;
    }
    JsonElement e = primitive(field);
    try {
      return e.getAsDouble();
    } catch (NumberFormatException ex) {
      throw new IOException(String.format("%s: field '%s' must be a number, got %s", file, field, e));
    }
  }

  boolean bool(String field, boolean fallback) throws IOException {
    return has(field) ? primitive(field).getAsBoolean() : fallback;
  }

  /** Whether {@code field} holds a JSON object. */
  boolean isObject(String field) {
    return has(field) && root.get(field).isJsonObject();
  }

  /** {@code field.key} as a string, or null when the field is no object or the key is absent or null. */
  String nestedString(String field, String key) {
    if (!isObject(field)) {
      return null;
    }
    JsonElement value = root.getAsJsonObject(field).get(key);
    return value == null || value.isJsonNull() ? null : value.getAsString();
  }

  /** {@code field.key} as a number, or {@code fallback} when absent. */
  double nestedNumber(String field, String key, double fallback) throws IOException {
    if (!has(field) || !root.get(field).isJsonObject()) {
      return fallback;
    }
    JsonElement value = root.getAsJsonObject(field).get(key);
    if (value == null || value.isJsonNull()) {
      return fallback;
    }
    try {
      return value.getAsDouble();
    } catch (NumberFormatException | UnsupportedOperationException e) {
      throw new IOException(String.format("%s: field '%s.%s' must be a number, got %s", file, field, key, value));
    }
  }

  private JsonElement primitive(String field) throws IOException {
    if (!has(field)) {
      throw new IOException(String.format("%s: missing field '%s'", file, field));
    }
    JsonElement e = root.get(field);
    if (!e.isJsonPrimitive()) {
      throw new IOException(String.format("%s: field '%s' must be a single value, got %s", file, field, e));
    }
    return e;
  }
}
