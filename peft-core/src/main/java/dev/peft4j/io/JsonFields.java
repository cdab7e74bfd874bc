package dev.peft4j.io;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Typed reads of a JSON object's fields ({@code adapter_config.json}, {@code config.json}), each checking the JSON
 * type: a number is a JSON number, a flag a JSON boolean, a list a JSON array. A field that is absent or
 * {@code null} takes the caller's fallback. Every failure is an {@link IllegalArgumentException} that names the field,
 * what it holds and what was expected.
 *
 * <pre>{@code
 * JsonFields f = JsonFields.of(json);
 * int r = f.integer("r", 8);                 // "r": 8.0 is 8; "r": [8], "r": "8" and "r": 8.5 are refused
 * List<String> save = f.strings("modules_to_save");
 * }</pre>
 */
public final class JsonFields {

  private final JsonObject json;

  private JsonFields(JsonObject json) {
    this.json = json;
  }

  public static JsonFields of(JsonObject json) {
    checkArgument(json != null, "no JSON object");
    return new JsonFields(json);
  }

  /** Whether {@code field} is present and not {@code null}. */
  public boolean has(String field) {
    return json.has(field) && !json.get(field).isJsonNull();
  }

  /** The raw value of {@code field}, or null when absent or {@code null}. */
  public JsonElement get(String field) {
    return has(field) ? json.get(field) : null;
  }

  /** The fields of the object that are not in {@code known}. */
  public List<String> unknown(Set<String> known) {
    return json.keySet().stream().filter(k -> !known.contains(k)).toList();
  }

  public boolean bool(String field, boolean fallback) {
    if (!has(field)) {
      return fallback;
    }
    JsonElement e = json.get(field);
    checkArgument(e.isJsonPrimitive() && e.getAsJsonPrimitive().isBoolean(), "field '%s' must be true or false, "
        + "got %s", field, shown(e));
    return e.getAsBoolean();
  }

  public String string(String field, String fallback) {
    return has(field) ? string(field, json.get(field)) : fallback;
  }

  /**
   * The constant of {@code type} named by the string in {@code field}; {@code fallback} when absent or {@code null}.
   *
   * @throws IllegalArgumentException naming the field, the value and the constants, if it is not one of them
   */
  public <E extends Enum<E>> E constant(String field, Class<E> type, E fallback) {
    String name = string(field, (String) null);
    if (name == null) {
      return fallback;
    }
    for (E e : type.getEnumConstants()) {
      if (e.name().equals(name)) {
        return e;
      }
    }
    throw new IllegalArgumentException(String.format("field '%s' must be one of %s, got \"%s\"", field,
        java.util.Arrays.toString(type.getEnumConstants()), shown(name)));
  }

  /**
   * @throws IllegalArgumentException if the field is absent, {@code null} or not a string
   */
  public String requiredString(String field) {
    checkArgument(has(field), "field '%s' is missing", field);
    return string(field, json.get(field));
  }

  public int integer(String field, int fallback) {
    return has(field) ? integer(field, json.get(field)) : fallback;
  }

  /** The integer in {@code field}, or null when absent or {@code null}. */
  public Integer optionalInteger(String field) {
    return has(field) ? integer(field, json.get(field)) : null;
  }

  public long longInteger(String field, long fallback) {
    if (!has(field)) {
      return fallback;
    }
    BigDecimal v = number(field, json.get(field));
    try {
      return v.longValueExact();
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException(String.format("field '%s' must be an integer in [%d, %d], got %s", field,
          Long.MIN_VALUE, Long.MAX_VALUE, shown(json.get(field))));
    }
  }

  /** A finite number; {@code fallback} when absent or {@code null}. */
  public double number(String field, double fallback) {
    if (!has(field)) {
      return fallback;
    }
    double v = number(field, json.get(field)).doubleValue();
    checkArgument(Double.isFinite(v), "field '%s' must be a finite number, got %s", field, shown(json.get(field)));
    return v;
  }

  /** A list of strings; empty when absent or {@code null}. */
  public List<String> strings(String field) {
    if (!has(field)) {
      return List.of();
    }
    JsonElement e = json.get(field);
    checkArgument(e.isJsonArray(), "field '%s' must be a list of strings, got %s", field, shown(e));
    List<String> out = new ArrayList<>();
    for (JsonElement item : e.getAsJsonArray()) {
      out.add(string(field, item));
    }
    return List.copyOf(out);
  }

  /** A list of integers, or one integer as a list of one; empty when absent or {@code null}. */
  public int[] integers(String field) {
    if (!has(field)) {
      return new int[0];
    }
    JsonElement e = json.get(field);
    if (!e.isJsonArray()) {
      return new int[] {integer(field, e)};
    }
    int[] out = new int[e.getAsJsonArray().size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = integer(field, e.getAsJsonArray().get(i));
    }
    return out;
  }

  /** The object in {@code field}, or null when absent or {@code null}. */
  public JsonObject object(String field) {
    if (!has(field)) {
      return null;
    }
    JsonElement e = json.get(field);
    checkArgument(e.isJsonObject(), "field '%s' must be a JSON object, got %s", field, shown(e));
    return e.getAsJsonObject();
  }

  private static String string(String field, JsonElement e) {
    checkArgument(e.isJsonPrimitive() && e.getAsJsonPrimitive().isString(), "field '%s' must be a string, got %s",
        field, shown(e));
    return e.getAsString();
  }

  private static int integer(String field, JsonElement e) {
    BigDecimal v = number(field, e);
    try {
      return v.intValueExact();
    } catch (ArithmeticException ex) {
      throw new IllegalArgumentException(String.format("field '%s' must be an integer in [%d, %d], got %s", field,
          Integer.MIN_VALUE, Integer.MAX_VALUE, shown(e)));
    }
  }

  private static BigDecimal number(String field, JsonElement e) {
    checkArgument(e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber(), "field '%s' must be a number, got %s",
        field, shown(e));
    JsonPrimitive p = e.getAsJsonPrimitive();
    try {
      BigDecimal v = new BigDecimal(p.getAsString());
      // an exponent like 1e999999999 would make the exact conversions below build a billion-digit integer
      checkArgument(Math.abs(v.scale()) <= 400, "field '%s' must be a number of ordinary size, got %s", field,
          shown(e));
      return v;
    } catch (NumberFormatException ex) {
      throw new IllegalArgumentException(String.format("field '%s' must be a number, got %s", field, shown(e)));
    }
  }

  /** A value as a message shows it: its JSON text, cut after 100 characters (a file may hold 64 KiB strings). */
  static String shown(Object value) {
    String text = String.valueOf(value);
    return text.length() <= 100 ? text : text.substring(0, 100) + "… (" + text.length() + " characters)";
  }
}
