package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.bench.TextClassificationData.Columns;
import dev.peft4j.bench.TextClassificationData.Example;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** CSV and JSONL reading: quoting, label numbering, splits, and every bad row named by file and line. */
class TextClassificationDataTest {

  @TempDir
  Path dir;

  private Path file(String name, String content) throws IOException {
    return Files.writeString(dir.resolve(name), content, StandardCharsets.UTF_8);
  }

  @Test
  void csvQuotingCommasNewlinesAndDoubledQuotes() throws IOException {
    Path f = file("d.csv", "id,review,sentiment\r\n"
        + "1,\"Good, really good\",pos\r\n"
        + "2,\"two\nlines\",neg\n"
        + "3,\"she said \"\"meh\"\"\",neg\n"
        + "4,plain text,pos");
    TextClassificationData d = TextClassificationData.read(f, Columns.of("review", "sentiment"));
    assertEquals(List.of("neg", "pos"), d.labelNames()); // sorted
    List<Example> e = d.examples();
    assertEquals(4, e.size());
    assertEquals("Good, really good", e.get(0).text());
    assertEquals(1, e.get(0).label());
    assertEquals("two\nlines", e.get(1).text());
    assertEquals("she said \"meh\"", e.get(2).text());
    assertEquals(0, e.get(2).label());
    assertEquals("plain text", e.get(3).text());
    assertEquals(List.of(2, 3, 5, 6), e.stream().map(Example::line).toList()); // the line a record starts on
    assertFalse(d.hasSplits());
  }

  @Test
  void integerLabelsKeepTheirValue() throws IOException {
    Path f = file("d.jsonl", "{\"t\":\"a\",\"y\":2}\n\n{\"t\":\"b\",\"y\":0}\n{\"t\":\"c\",\"y\":1}\n");
    TextClassificationData d = TextClassificationData.read(f, Columns.of("t", "y"));
    assertEquals(List.of("0", "1", "2"), d.labelNames());
    assertEquals(List.of(2, 0, 1), d.examples().stream().map(Example::label).toList());
    assertEquals(List.of(1, 3, 4), d.examples().stream().map(Example::line).toList());
  }

  @Test
  void splitColumn() throws IOException {
    Path f = file("d.jsonl", "{\"text\":\"a\",\"label\":0,\"split\":\"train\"}\n"
        + "{\"text\":\"b\",\"label\":1,\"split\":\"validation\"}\n{\"text\":\"c\",\"label\":1,\"split\":\"train\"}\n"
        + "{\"text\":\"d\",\"label\":1,\"split\":\"test\"}\n");
    TextClassificationData d = TextClassificationData.read(f, Columns.of("text", "label"));
    assertTrue(d.hasSplits());
    assertEquals(List.of("a", "c"), d.split("train").stream().map(Example::text).toList());
    assertEquals(List.of("b"), d.split("validation").stream().map(Example::text).toList());
    assertEquals(List.of("d"), d.split("test").stream().map(Example::text).toList());
  }

  @Test
  void aMissingFileIsNotFound() {
    Path missing = dir.resolve("nope.csv");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TextClassificationData.read(missing, Columns.of("text", "label")));
    assertEquals(missing + ": not found", e.getMessage());
  }

  @Test
  void bytesThatAreNotUtf8AreNamedByOffsetAndLine() throws IOException {
    byte[] head = "text,label\na,0\n".getBytes(StandardCharsets.UTF_8); // 15 bytes
    byte[] bytes = new byte[head.length + 6];
    System.arraycopy(head, 0, bytes, 0, head.length);
    byte[] tail = {'b', (byte) 0xE9, ',', '1', '\n', 'c'}; // Latin-1 'é' at byte offset 16
    System.arraycopy(tail, 0, bytes, head.length, tail.length);
    Path latin1 = Files.write(dir.resolve("latin1.csv"), bytes);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TextClassificationData.read(latin1, Columns.of("text", "label")));
    assertEquals(latin1 + ":3: byte offset 16: a byte not UTF-8 (0xE9); UTF-8 is expected", e.getMessage());
  }

  @Test
  void aBlankSplitCellAmongNamedSplitsIsRefused() throws IOException {
    Path f = file("s.csv", "text,label,split\na,0,train\nb,1,\nc,1,validation\n");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TextClassificationData.read(f, Columns.of("text", "label")));
    assertEquals(f + ":3: empty 'split' cell, but 2 of 3 rows name their split; every row needs one of [train, "
        + "validation, test]", e.getMessage());
    // a split column that is blank everywhere is no split column
    Path blank = file("b.csv", "text,label,split\na,0,\nb,1,\n");
    assertFalse(TextClassificationData.read(blank, Columns.of("text", "label")).hasSplits());
  }

  @Test
  void unexpectedSplitValuesAreListedWithTheAcceptedOnes() throws IOException {
    Path f = file("v.jsonl", "{\"text\":\"a\",\"label\":0,\"split\":\"train\"}\n"
        + "{\"text\":\"b\",\"label\":1,\"split\":\"val\"}\n{\"text\":\"c\",\"label\":1,\"split\":\"dev\"}\n"
        + "{\"text\":\"d\",\"label\":0,\"split\":\"val\"}\n");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TextClassificationData.read(f, Columns.of("text", "label")));
    assertEquals(f + ": column 'split' has the unexpected value(s) 'val' (first at line 2), 'dev' (first at line 3); "
        + "accepted: train, validation, test", e.getMessage());
  }

  @Test
  void badRowsNameTheFileAndLine() throws IOException {
    Path badJson = file("a.jsonl", "{\"text\":\"a\",\"label\":0}\n{\"text\":\"b\",\"label\":1}\n{\"text\": oops}\n");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TextClassificationData.read(badJson, Columns.of("text", "label")));
    assertTrue(e.getMessage().startsWith(badJson + ":3: bad JSON"), e.getMessage());

    Path missing = file("b.jsonl", "{\"text\":\"a\",\"label\":0}\n{\"body\":\"b\",\"label\":1}\n");
    e = assertThrows(IllegalArgumentException.class,
        () -> TextClassificationData.read(missing, Columns.of("text", "label")));
    assertEquals(missing + ":2: no 'text' field; fields: [body, label]", e.getMessage());

    Path fields = file("c.csv", "text,label\na,0\n\"b,c\",1,extra\n");
    e = assertThrows(IllegalArgumentException.class,
        () -> TextClassificationData.read(fields, Columns.of("text", "label")));
    assertEquals(fields + ":3: 3 fields, the header has 2", e.getMessage());

    Path unclosed = file("d.csv", "text,label\na,0\n\"never closed,1\nb,1\n");
    e = assertThrows(IllegalArgumentException.class,
        () -> TextClassificationData.read(unclosed, Columns.of("text", "label")));
    assertTrue(e.getMessage().startsWith(unclosed + ": bad CSV: ") && e.getMessage().contains("line 3")
        && e.getMessage().contains("EOF reached before encapsulated token finished"), e.getMessage());

    Path trailing = file("e.csv", "text,label\n\"ab\"c,0\n");
    e = assertThrows(IllegalArgumentException.class,
        () -> TextClassificationData.read(trailing, Columns.of("text", "label")));
    assertTrue(e.getMessage().startsWith(trailing + ": bad CSV: ") && e.getMessage().contains("line: 2"),
        e.getMessage());

    Path empty = file("f.csv", "text,label\na,0\n\"  \",1\n");
    e = assertThrows(IllegalArgumentException.class,
        () -> TextClassificationData.read(empty, Columns.of("text", "label")));
    assertEquals(empty + ":3: empty text in column 'text'", e.getMessage());

    Path header = file("g.csv", "body,label\na,0\n");
    e = assertThrows(IllegalArgumentException.class,
        () -> TextClassificationData.read(header, Columns.of("text", "label")));
    assertEquals(header + ":1: no column 'text' in the header [body, label]", e.getMessage());

    Path oneLabel = file("h.csv", "text,label\na,0\nb,0\n");
    e = assertThrows(IllegalArgumentException.class,
        () -> TextClassificationData.read(oneLabel, Columns.of("text", "label")));
    assertTrue(e.getMessage().contains("has only the label(s) [0]"), e.getMessage());

    Path tsv = file("i.tsv", "text\tlabel\n");
    e = assertThrows(IllegalArgumentException.class,
        () -> TextClassificationData.read(tsv, Columns.of("text", "label")));
    assertTrue(e.getMessage().contains("unknown format; use a .csv or .jsonl file"), e.getMessage());
  }

  @Test
  void committedSpamAssassinDataHasItsDocumentedSplits() throws IOException {
    TextClassificationData d = TextClassificationData.read(Path.of("data/spam-assassin.jsonl"),
        Columns.of("text", "label"));
    assertEquals(List.of("0", "1"), d.labelNames());
    assertEquals(2000, d.examples().size());
    assertTrue(d.hasSplits());
    Map<String, Long> sizes = d.examples().stream()
        .collect(Collectors.groupingBy(Example::split, Collectors.counting()));
    assertEquals(Map.of("train", 1398L, "validation", 301L, "test", 301L), sizes);
    assertEquals(1000, d.examples().stream().filter(x -> x.label() == 1).count());
    assertEquals(150, d.split("validation").stream().filter(x -> x.label() == 1).count());
    assertTrue(d.examples().stream().allMatch(x -> x.text().startsWith("Subject: ")));
  }
}
