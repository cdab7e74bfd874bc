package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.Gson;
import com.google.gson.TypeAdapter;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;

/**
 * A text-classification data set read from a CSV or JSONL file: one text column, one label column and, optionally, a
 * split column ({@code train} / {@code validation} / {@code test}).
 *
 * <pre>{@code
 * TextClassificationData data = TextClassificationData.read(Path.of("reviews.csv"),
 *     TextClassificationData.Columns.of("review", "sentiment"));
 * List<Example> train = data.split("train");
 * }</pre>
 *
 * <p>The format follows the file name: {@code .jsonl} (one JSON object per line; blank lines are skipped) or
 * {@code .csv} (RFC 4180: a header row, comma-separated, fields in double quotes may hold commas, newlines and
 * doubled quotes {@code ""}). Labels may be strings or integers: integers {@code 0..k-1} keep their value, any other
 * label set is numbered in sorted order ({@link #labelNames()}). A row without the text or label column, with an
 * empty text, or malformed (bad JSON, an unclosed quote, a wrong field count) is refused with an
 * {@link IllegalArgumentException} naming the file and the line.
 */
public final class TextClassificationData {

  /** One row: its text, its label index, its split ({@code null} without a split column) and its line. */
  public record Example(String text, int label, String split, int line) {}

  /** Which columns hold the text, the label and (optionally, may be {@code null}) the split. */
  public record Columns(String text, String label, String split) {
    public Columns {
      checkArgument(text != null && !text.isEmpty(), "the text column must be named");
      checkArgument(label != null && !label.isEmpty(), "the label column must be named");
    }

    /** Text and label columns, and the split from a column {@code split} if the file has one. */
    public static Columns of(String text, String label) {
      return new Columns(text, label, "split");
    }
  }

  private static final TypeAdapter<JsonElement> STRICT = new Gson().getAdapter(JsonElement.class);

  private final List<String> labelNames;
  private final List<Example> examples;

  private TextClassificationData(List<String> labelNames, List<Example> examples) {
    this.labelNames = List.copyOf(labelNames);
    this.examples = List.copyOf(examples);
  }

  /**
   * Reads {@code file}.
   *
   * @throws IOException if the file cannot be read
   * @throws IllegalArgumentException naming the file and line of a bad row, a format other than CSV or JSONL, or a
   *     file with fewer than two labels
   */
  public static TextClassificationData read(Path file, Columns columns) throws IOException {
    String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
    String content = Files.readString(file, StandardCharsets.UTF_8);
    List<RawRow> rows;
    if (name.endsWith(".jsonl") || name.endsWith(".ndjson")) {
      rows = jsonl(file, content, columns);
    } else if (name.endsWith(".csv")) {
      rows = csv(file, content, columns);
    } else {
      throw new IllegalArgumentException(String.format("%s: unknown format; use a .csv or .jsonl file", file));
    }
    checkArgument(!rows.isEmpty(), "%s: no rows", file);
    TreeSet<String> distinct = new TreeSet<>();
    rows.forEach(r -> distinct.add(r.label));
    checkArgument(distinct.size() >= 2, "%s: column '%s' has only the label(s) %s; a classifier needs at least 2",
        file, columns.label(), distinct);
    List<String> names = labelNames(distinct);
    Map<String, Integer> index = new HashMap<>();
    for (int i = 0; i < names.size(); i++) {
      index.put(names.get(i), i);
    }
    List<Example> examples = new ArrayList<>();
    for (RawRow r : rows) {
      examples.add(new Example(r.text, index.get(r.label), r.split, r.line));
    }
    return new TextClassificationData(names, examples);
  }

  /** Integers 0..k-1 keep their value; anything else is numbered in sorted order. */
  private static List<String> labelNames(TreeSet<String> distinct) {
    List<String> asIntegers = new ArrayList<>();
    for (int i = 0; i < distinct.size(); i++) {
      asIntegers.add(Integer.toString(i));
    }
    return distinct.containsAll(asIntegers) ? asIntegers : new ArrayList<>(distinct);
  }

  /** Label index → the label as written in the file. */
  public List<String> labelNames() {
    return labelNames;
  }

  public List<Example> examples() {
    return examples;
  }

  /** Whether every row names its split. */
  public boolean hasSplits() {
    return examples.stream().allMatch(e -> e.split() != null);
  }

  /** The rows of one split, in file order. */
  public List<Example> split(String split) {
    return examples.stream().filter(e -> split.equals(e.split())).toList();
  }

  /**
   * The rows shuffled with {@code seed} and cut into train and validation ({@code validationFraction} of the rows),
   * for files without a split column.
   */
  public Map<String, List<Example>> randomSplit(double validationFraction, long seed) {
    checkArgument(validationFraction > 0 && validationFraction < 1, "validation fraction must be in (0, 1), got %s",
        validationFraction);
    List<Example> shuffled = new ArrayList<>(examples);
    Collections.shuffle(shuffled, new Random(seed));
    int validation = (int) Math.max(1, Math.round(shuffled.size() * validationFraction));
    Map<String, List<Example>> out = new LinkedHashMap<>();
    out.put("train", List.copyOf(shuffled.subList(validation, shuffled.size())));
    out.put("validation", List.copyOf(shuffled.subList(0, validation)));
    return out;
  }

  private record RawRow(String text, String label, String split, int line) {}

  private static List<RawRow> jsonl(Path file, String content, Columns columns) {
    List<RawRow> rows = new ArrayList<>();
    String[] lines = content.split("\r?\n", -1);
    for (int i = 0; i < lines.length; i++) {
      int line = i + 1;
      if (lines[i].isBlank()) {
        continue;
      }
      JsonObject object;
      try {
        JsonElement parsed = strictJson(lines[i]);
        checkArgument(parsed.isJsonObject(), "%s:%s: not a JSON object: %s", file, line, abbreviate(lines[i]));
        object = parsed.getAsJsonObject();
      } catch (JsonParseException | IOException e) {
        throw new IllegalArgumentException(String.format("%s:%s: bad JSON (%s): %s", file, line, e.getMessage(),
            abbreviate(lines[i])), e);
      }
      String split = columns.split() == null ? null : jsonValue(file, line, object, columns.split(), false);
      rows.add(row(file, line, jsonValue(file, line, object, columns.text(), true),
          jsonValue(file, line, object, columns.label(), true), split, columns));
    }
    return rows;
  }

  /** One JSON value and nothing after it; unlike {@code JsonParser}, not lenient (no unquoted strings). */
  private static JsonElement strictJson(String line) throws IOException {
    JsonReader reader = new JsonReader(new StringReader(line));
    reader.setLenient(false);
    JsonElement value = STRICT.read(reader);
    if (reader.peek() != JsonToken.END_DOCUMENT) {
      throw new IOException("text after the JSON value");
    }
    return value;
  }

  private static String jsonValue(Path file, int line, JsonObject object, String column, boolean required) {
    JsonElement value = object.get(column);
    if (value == null || value.isJsonNull()) {
      checkArgument(!required, "%s:%s: no '%s' field; fields: %s", file, line, column, object.keySet());
      return null;
    }
    checkArgument(value.isJsonPrimitive(), "%s:%s: field '%s' must be a string or number, got %s", file, line,
        column, abbreviate(value.toString()));
    return value.getAsString();
  }

  private static List<RawRow> csv(Path file, String content, Columns columns) {
    List<CsvRecord> records = parseCsv(file, content);
    checkArgument(!records.isEmpty(), "%s: empty CSV file, no header row", file);
    List<String> header = records.get(0).fields;
    int text = header.indexOf(columns.text());
    int label = header.indexOf(columns.label());
    int split = columns.split() == null ? -1 : header.indexOf(columns.split());
    checkArgument(text >= 0, "%s:1: no column '%s' in the header %s", file, columns.text(), header);
    checkArgument(label >= 0, "%s:1: no column '%s' in the header %s", file, columns.label(), header);
    List<RawRow> rows = new ArrayList<>();
    for (CsvRecord r : records.subList(1, records.size())) {
      if (r.fields.size() == 1 && r.fields.get(0).isEmpty()) {
        continue; // a blank line
      }
      checkArgument(r.fields.size() == header.size(), "%s:%s: %s fields, the header has %s", file, r.line,
          r.fields.size(), header.size());
      rows.add(row(file, r.line, r.fields.get(text), r.fields.get(label), split < 0 ? null : r.fields.get(split),
          columns));
    }
    return rows;
  }

  private static RawRow row(Path file, int line, String text, String label, String split, Columns columns) {
    checkArgument(!text.isBlank(), "%s:%s: empty text in column '%s'", file, line, columns.text());
    checkArgument(!label.isBlank(), "%s:%s: empty label in column '%s'", file, line, columns.label());
    return new RawRow(text, label.strip(), split == null || split.isBlank() ? null : split.strip(), line);
  }

  private record CsvRecord(List<String> fields, int line) {}

  /** RFC 4180 records; {@code line} is the line a record starts on. */
  private static List<CsvRecord> parseCsv(Path file, String s) {
    List<CsvRecord> records = new ArrayList<>();
    List<String> fields = new ArrayList<>();
    StringBuilder field = new StringBuilder();
    int line = 1;
    int recordLine = 1;
    int quoteLine = 0;
    boolean quoted = false;
    boolean fieldWasQuoted = false;
    int i = 0;
    while (i < s.length()) {
      char c = s.charAt(i);
      if (quoted) {
        if (c == '"') {
          if (i + 1 < s.length() && s.charAt(i + 1) == '"') {
            field.append('"');
            i++;
          } else {
            quoted = false;
          }
        } else {
          if (c == '\n') {
            line++;
          }
          field.append(c);
        }
      } else if (c == '"') {
        checkArgument(field.length() == 0 && !fieldWasQuoted, "%s:%s: a quote inside an unquoted field: %s", file,
            line, abbreviate(field + "\""));
        quoted = true;
        fieldWasQuoted = true;
        quoteLine = line;
      } else if (c == ',') {
        fields.add(field.toString());
        field.setLength(0);
        fieldWasQuoted = false;
      } else if (c == '\n' || c == '\r') {
        fields.add(field.toString());
        field.setLength(0);
        fieldWasQuoted = false;
        records.add(new CsvRecord(List.copyOf(fields), recordLine));
        fields.clear();
        if (c == '\r' && i + 1 < s.length() && s.charAt(i + 1) == '\n') {
          i++;
        }
        line++;
        recordLine = line;
      } else {
        checkArgument(!fieldWasQuoted, "%s:%s: text after a closing quote: %s", file, line, abbreviate(field + ""
            + c));
        field.append(c);
      }
      i++;
    }
    checkArgument(!quoted, "%s:%s: a quoted field is never closed", file, quoteLine);
    if (field.length() > 0 || !fields.isEmpty() || fieldWasQuoted) {
      fields.add(field.toString());
      records.add(new CsvRecord(List.copyOf(fields), recordLine));
    }
    return records;
  }

  private static String abbreviate(String s) {
    return s.length() <= 80 ? s : s.substring(0, 77) + "...";
  }
}
