package dev.peft4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.peft4j.model.ChatTemplate;
import dev.peft4j.model.Llama;
import dev.peft4j.model.Tokenizer;
import dev.peft4j.testing.Fixtures;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * JSONL instruction data: both line forms, every bad line named by file and line, and the labels: ids on what the
 * model must write, −100 elsewhere (expected ids from the Python tokenizers library on the same tokenizer.json).
 */
class InstructionDataTest {

  static final long M = Llama.IGNORE_INDEX;
  static Path checkpoint;
  static Tokenizer tokenizer;
  static ChatTemplate template;

  @BeforeAll
  static void load(@TempDir Path dir) throws Exception {
    checkpoint = Fixtures.tinyChatLlama(dir.resolve("tiny-chat-llama"));
    try (InputStream in = Files.newInputStream(checkpoint.resolve("tokenizer.json"))) {
      tokenizer = Tokenizer.read(in, 64);
    }
    template = ChatTemplate.read(checkpoint.resolve("tokenizer_config.json")).orElseThrow();
  }

  @AfterAll
  static void close() {
    tokenizer.close();
  }

  static Path jsonl(Path dir, String... lines) throws Exception {
    Path f = dir.resolve("data.jsonl");
    Files.writeString(f, String.join("\n", lines) + "\n");
    return f;
  }

  @Test
  void readsBothFormsAndSkipsBlankLines(@TempDir Path dir) throws Exception {
    InstructionData data = InstructionData.read(jsonl(dir,
        "{\"prompt\": \"What is two plus three?\", \"response\": \"Five.\", \"id\": 7}", "",
        "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"},"
            + " {\"role\": \"assistant\", \"content\": \"Yes.\"}]}"));
    assertEquals(2, data.examples().size());
    assertEquals(dir.resolve("data.jsonl") + ":3", data.examples().get(1).source(), "the blank line 2 counted");
    assertEquals(List.of(new ChatTemplate.Message("user", "What is two plus three?"),
        new ChatTemplate.Message("assistant", "Five.")), data.examples().get(0).messages());
    assertEquals(3, data.examples().get(1).messages().size());
  }

  @Test
  void labelsOnlyTheAssistantTurnWithTheChatTemplate(@TempDir Path dir) throws Exception {
    InstructionData data = InstructionData.read(jsonl(dir,
        "{\"prompt\": \"What is two plus three?\", \"response\": \"Five.\"}"));
    InstructionBatches.Encoded e = InstructionBatches.of(data, tokenizer, Optional.of(template), OptionalLong.empty(),
        64).examples().get(0);
    // <|im_start|>user\nWhat is two plus three?<|im_end|>\n<|im_start|>assistant\nFive.<|im_end|>\n
    assertArrayEquals(new long[] {3, 83, 75, 5, 88, 79, 95, 74, 67, 77, 98, 85, 65, 119, 4, 5, 3, 48, 66, 66, 81, 67,
        107, 67, 5, 103, 69, 89, 4, 5}, e.inputIds());
    assertArrayEquals(new long[] {M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
        103, 69, 89, 4, M}, e.labels(), "'Fi' 'v' 'e.' '<|im_end|>' learnt; the header and the last newline not");
  }

  @Test
  void labelsEveryAssistantTurnOfMessages(@TempDir Path dir) throws Exception {
    InstructionData data = InstructionData.read(jsonl(dir, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"},"
        + " {\"role\": \"assistant\", \"content\": \"Yes.\"}, {\"role\": \"user\", \"content\": \"No?\"},"
        + " {\"role\": \"assistant\", \"content\": \"No.\"}]}"));
    InstructionBatches.Encoded e = InstructionBatches.of(data, tokenizer, Optional.of(template), OptionalLong.empty(),
        64).examples().get(0);
    StringBuilder learnt = new StringBuilder();
    for (int i = 0; i < e.labels().length; i++) {
      if (e.labels()[i] != M) {
        learnt.append(tokenizer.decode(new long[] {e.labels()[i]}, false)).append('|');
      }
    }
    assertEquals("Ye|s|.|<|im_end|>|N|o|.|<|im_end|>|", learnt.toString().replace("▁", ""));
  }

  @Test
  void withoutTemplatePromptThenResponseThenEos(@TempDir Path dir) throws Exception {
    InstructionData data = InstructionData.read(jsonl(dir, "{\"prompt\": \"What is one plus one?\", \"response\": "
        + "\"Two.\"}"));
    InstructionBatches.Encoded e = InstructionBatches.of(data, tokenizer, Optional.empty(), OptionalLong.of(2), 64)
        .examples().get(0);
    assertArrayEquals(new long[] {1, 101, 95, 86, 98, 86, 21, 74, 105, 9, 2}, e.inputIds(), "<s> prompt, response, </s>");
    assertArrayEquals(new long[] {M, M, M, M, M, M, M, 74, 105, 9, 2}, e.labels());
    assertEquals(4, e.learntTokens());
  }

  @Test
  void batchesArePaddedOnTheRightWithMaskedLabels(@TempDir Path dir) throws Exception {
    InstructionData data = InstructionData.read(jsonl(dir,
        "{\"prompt\": \"What is one plus one?\", \"response\": \"Two.\"}",
        "{\"prompt\": \"Hi\", \"response\": \"Yes.\"}",
        "{\"prompt\": \"Red?\", \"response\": \"Yes.\"}"));
    InstructionBatches b = InstructionBatches.of(data, tokenizer, Optional.empty(), OptionalLong.of(2), 64);
    List<Batch> batches = b.batches(2, 0);
    assertEquals(2, batches.size(), "3 examples, 2 a batch");
    Batch first = batches.get(0);
    long[] second = b.examples().get(1).inputIds();
    long[][] ids = first.inputs().get(Llama.INPUT_IDS).toLongMatrix();
    long[][] mask = first.inputs().get(Llama.ATTENTION_MASK).toLongMatrix();
    long[][] labels = first.inputs().get(Llama.LABELS).toLongMatrix();
    assertEquals(11, ids[0].length, "padded to the longest");
    for (int t = 0; t < 11; t++) {
      assertEquals(t < second.length ? second[t] : 0, ids[1][t]);
      assertEquals(t < second.length ? 1 : 0, mask[1][t]);
      assertEquals(t < second.length ? b.examples().get(1).labels()[t] : M, labels[1][t]);
    }
    assertEquals(11 + second.length, first.tokens(), "real tokens only");
    assertEquals(1, batches.get(1).inputs().get(Llama.INPUT_IDS).size(0));
  }

  @Test
  void truncatesLongExamplesButRefusesOnesLeftWithoutResponse(@TempDir Path dir) throws Exception {
    InstructionData data = InstructionData.read(jsonl(dir,
        "{\"prompt\": \"Hi\", \"response\": \"the quick brown fox jumps over the lazy dog\"}"));
    InstructionBatches cut = InstructionBatches.of(data, tokenizer, Optional.empty(), OptionalLong.of(2), 8);
    assertEquals(1, cut.truncated());
    assertEquals(8, cut.examples().get(0).inputIds().length);
    InstructionData longPrompt = InstructionData.read(jsonl(dir,
        "{\"prompt\": \"the quick brown fox jumps over the lazy dog\", \"response\": \"Yes.\"}"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> InstructionBatches.of(longPrompt,
        tokenizer, Optional.empty(), OptionalLong.of(2), 8));
    assertEquals(dir.resolve("data.jsonl") + ":1: no response token within the first 8 tokens (the example has 34; "
        + "its response starts at token 29)", e.getMessage());
  }

  @Test
  void messagesWithoutTemplateAreRefused(@TempDir Path dir) throws Exception {
    InstructionData data = InstructionData.read(jsonl(dir, "{\"prompt\": \"a\", \"response\": \"b\"}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Yes.\"}]}"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> InstructionBatches.of(data,
        tokenizer, Optional.empty(), OptionalLong.of(2), 64));
    assertEquals(dir.resolve("data.jsonl") + ":2: 'messages' need a chat template, and the tokenizer has none "
        + "(tokenizer_config.json without chat_template); use 'prompt'/'response' lines", e.getMessage());
  }

  @Test
  void badLinesAreNamedBeforeAnyWork(@TempDir Path dir) throws Exception {
    String good = "{\"prompt\": \"a\", \"response\": \"b\"}";
    String at = dir.resolve("data.jsonl") + ":2: ";
    assertEquals(at + "neither 'prompt' and 'response' nor 'messages'; found fields [question, answer]",
        refused(dir, good, "{\"question\": \"a\", \"answer\": \"b\"}"));
    assertEquals(at + "no 'response'", refused(dir, good, "{\"prompt\": \"a\"}"));
    assertEquals(at + "the response is empty", refused(dir, good, "{\"prompt\": \"a\", \"response\": \"  \"}"));
    assertEquals(at + "'response' must be a string, found 3", refused(dir, good, "{\"prompt\": \"a\", \"response\": 3}"));
    assertEquals(at + "both 'messages' and 'prompt'/'response'; one form per line is expected",
        refused(dir, good, "{\"prompt\": \"a\", \"response\": \"b\", \"messages\": []}"));
    assertEquals(at + "a JSON object is expected, found [1, 2]", refused(dir, good, "[1, 2]"));
    assertEquals(at + "no assistant message with text: nothing to learn", refused(dir, good,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"\"}]}"));
    assertEquals(dir.resolve("data.jsonl") + ":2 message 1: role must be system, user or assistant, found 'tool'",
        refused(dir, good, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"tool\", "
            + "\"content\": \"x\"}]}"));
    assertEquals(at + "'messages' must be a non-empty list of {role, content}",
        refused(dir, good, "{\"messages\": []}"));
    String notJson = refused(dir, good, "{\"prompt\": \"a\", ");
    assertEquals(at + "not JSON", notJson.substring(0, at.length() + 8));

    Path bad = dir.resolve("data.jsonl");
    byte[] latin1 = "{\"prompt\": \"caf\u00e9\", \"response\": \"b\"}".getBytes(StandardCharsets.ISO_8859_1);
    Files.write(bad, (good + "\n").getBytes(StandardCharsets.UTF_8));
    Files.write(bad, latin1, java.nio.file.StandardOpenOption.APPEND);
    assertEquals(at + "not valid UTF-8", assertThrows(IllegalArgumentException.class,
        () -> InstructionData.read(bad)).getMessage());
    Files.writeString(bad, "\n\n");
    assertEquals(bad + ": no examples (a JSON object per line is expected)", assertThrows(
        IllegalArgumentException.class, () -> InstructionData.read(bad)).getMessage());
  }

  private static String refused(Path dir, String... lines) throws Exception {
    Path f = jsonl(dir, lines);
    return assertThrows(IllegalArgumentException.class, () -> InstructionData.read(f)).getMessage();
  }
}
