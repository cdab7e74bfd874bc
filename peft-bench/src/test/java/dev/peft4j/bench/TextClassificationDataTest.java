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
  void splitColumnAndSeededRandomSplit() throws IOException {
    Path f = file("d.jsonl", "{\"text\":\"a\",\"label\":0,\"split\":\"train\"}\n"
        + "{\"text\":\"b\",\"label\":1,\"split\":\"validation\"}\n{\"text\":\"c\",\"label\":1,\"split\":\"train\"}\n");
    TextClassificationData d = TextClassificationData.read(f, Columns.of("text", "label"));
    assertTrue(d.hasSplits());
    assertEquals(List.of("a", "c"), d.split("train").stream().map(Example::text).toList());
    assertEquals(List.of("b"), d.split("validation").stream().map(Example::text).toList());
    Map<String, List<Example>> random = d.randomSplit(0.34, 3);
    assertEquals(2, random.get("train").size());
    assertEquals(1, random.get("validation").size());
    assertEquals(random, d.randomSplit(0.34, 3)); // seeded
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
    assertEquals(unclosed + ":3: a quoted field is never closed", e.getMessage());

    Path stray = file("e.csv", "text,label\nab\"c,0\n");
    e = assertThrows(IllegalArgumentException.class,
        () -> TextClassificationData.read(stray, Columns.of("text", "label")));
    assertTrue(e.getMessage().startsWith(stray + ":2: a quote inside an unquoted field"), e.getMessage());

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
