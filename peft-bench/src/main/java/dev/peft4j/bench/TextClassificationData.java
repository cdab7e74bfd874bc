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
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import org.apache.commons.csv.CSVFormat;
import org.apache.commons.csv.CSVParser;
import org.apache.commons.csv.CSVRecord;

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
 * <p>The file must be UTF-8. The format follows the file name: {@code .jsonl} (one JSON object per line; blank lines
 * are skipped) or {@code .csv} (RFC 4180 through commons-csv: a header row, comma-separated, fields in double quotes
 * may hold commas, newlines and doubled quotes {@code ""}; blank lines are skipped). Labels may be strings or
 * integers: integers {@code 0..k-1} keep their value, any other label set is numbered in sorted order
 * ({@link #labelNames()}). The split column is all or nothing: when one row names a split, every row must, with one
 * of {@link #SPLITS}. A missing file, bytes that are not UTF-8 (by byte offset), a row without the text or label
 * column, with an empty text or split, with an unknown split value, or malformed (bad JSON, an unclosed quote, a wrong
 * field count) is refused with an {@link IllegalArgumentException} naming the file and the line.
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

  /** The split values a file may use. */
  public static final List<String> SPLITS = List.of("train", "validation", "test");

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
    boolean jsonl = name.endsWith(".jsonl") || name.endsWith(".ndjson");
    checkArgument(jsonl || name.endsWith(".csv"), "%s: unknown format; use a .csv or .jsonl file", file);
    String content = utf8(file);
    List<RawRow> rows = jsonl ? jsonl(file, content, columns) : csv(file, content, columns);
    checkArgument(!rows.isEmpty(), "%s: no rows", file);
    checkSplits(file, rows, columns);
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

  /**
   * The file's text; a missing file is "not found", and bytes that are not UTF-8 are named by byte offset and line.
   */
  static String utf8(Path file) throws IOException {
    try {
      return utf8(Files.readAllBytes(file), file.toString());
    } catch (NoSuchFileException e) {
      throw new IllegalArgumentException(file + ": not found", e);
    }
  }

  /** {@code bytes} as UTF-8; bytes that are not are named by byte offset and line of {@code source}. */
  static String utf8(byte[] bytes, String source) {
    CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
        .onUnmappableCharacter(CodingErrorAction.REPORT);
    ByteBuffer in = ByteBuffer.wrap(bytes);
    CharBuffer out = CharBuffer.allocate(bytes.length);
    CoderResult result = decoder.decode(in, out, true);
    if (!result.isError()) {
      result = decoder.flush(out);
    }
    if (result.isError()) {
      int offset = in.position();
      int line = 1;
      for (int i = 0; i < offset; i++) {
        line += bytes[i] == '\n' ? 1 : 0;
      }
      throw new IllegalArgumentException(String.format("%s:%s: byte offset %s: %s not UTF-8 (0x%02X); UTF-8 is "
          + "expected", source, line, offset, result.length() == 1 ? "a byte" : result.length() + " bytes",
          bytes[offset] & 0xFF));
    }
    return out.flip().toString();
  }

  /**
   * The split column is all or nothing, with values from {@link #SPLITS}: a blank cell among named splits would
   * otherwise drop to a random split silently, and an unknown value ({@code val}, {@code dev}) would drop its rows.
   */
  private static void checkSplits(Path file, List<RawRow> rows, Columns columns) {
    long named = rows.stream().filter(r -> r.split != null).count();
    if (named == 0) {
      return;
    }
    for (RawRow r : rows) {
      checkArgument(r.split != null, "%s:%s: empty '%s' cell, but %s of %s rows name their split; every row needs "
          + "one of %s", file, r.line, columns.split(), named, rows.size(), SPLITS);
    }
    Map<String, Integer> unexpected = new LinkedHashMap<>(); // value → its first line
    rows.stream().filter(r -> !SPLITS.contains(r.split)).forEach(r -> unexpected.putIfAbsent(r.split, r.line));
    if (!unexpected.isEmpty()) {
      List<String> found = unexpected.entrySet().stream().map(e -> "'" + e.getKey() + "' (first at line "
          + e.getValue() + ")").toList();
      throw new IllegalArgumentException(String.format("%s: column '%s' has the unexpected value(s) %s; accepted: "
          + "%s", file, columns.split(), String.join(", ", found), String.join(", ", SPLITS)));
    }
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
    // the line a record starts on, from its character position: commons-csv counts lines only up to the parser
    int[] lineStarts = lineStarts(content);
    CSVFormat format = CSVFormat.RFC4180.builder().setHeader().setSkipHeaderRecord(true).setIgnoreEmptyLines(true)
        .get();
    List<RawRow> rows = new ArrayList<>();
    try (CSVParser parser = CSVParser.parse(content, format)) {
      List<String> header = parser.getHeaderNames();
      checkArgument(!header.isEmpty(), "%s: empty CSV file, no header row", file);
      int text = header.indexOf(columns.text());
      int label = header.indexOf(columns.label());
      int split = columns.split() == null ? -1 : header.indexOf(columns.split());
      checkArgument(text >= 0, "%s:1: no column '%s' in the header %s", file, columns.text(), header);
      checkArgument(label >= 0, "%s:1: no column '%s' in the header %s", file, columns.label(), header);
      for (CSVRecord r : parser) {
        int line = lineOf(lineStarts, r.getCharacterPosition());
        checkArgument(r.size() == header.size(), "%s:%s: %s fields, the header has %s", file, line, r.size(),
            header.size());
        rows.add(row(file, line, r.get(text), r.get(label), split < 0 ? null : r.get(split), columns));
      }
    } catch (IOException | UncheckedIOException | IllegalStateException e) {
      // commons-csv's own message names the line: "(line 3) EOF reached before encapsulated token finished"
      String why = e instanceof UncheckedIOException && e.getCause() != null ? e.getCause().getMessage()
          : e.getMessage();
      throw new IllegalArgumentException(String.format("%s: bad CSV: %s", file, why), e);
    }
    return rows;
  }

  private static int[] lineStarts(String content) {
    List<Integer> starts = new ArrayList<>(List.of(0));
    for (int i = 0; i < content.length(); i++) {
      if (content.charAt(i) == '\n') {
        starts.add(i + 1);
      }
    }
    return starts.stream().mapToInt(Integer::intValue).toArray();
  }

  /** 1-based line of a character position. */
  private static int lineOf(int[] lineStarts, long position) {
    int i = Arrays.binarySearch(lineStarts, (int) position);
    return (i >= 0 ? i : -i - 2) + 1;
  }

  private static RawRow row(Path file, int line, String text, String label, String split, Columns columns) {
    checkArgument(!text.isBlank(), "%s:%s: empty text in column '%s'", file, line, columns.text());
    checkArgument(!label.isBlank(), "%s:%s: empty label in column '%s'", file, line, columns.label());
    return new RawRow(text, label.strip(), split == null || split.isBlank() ? null : split.strip(), line);
  }

  private static String abbreviate(String s) {
    return s.length() <= 80 ? s : s.substring(0, 77) + "...";
  }
}
