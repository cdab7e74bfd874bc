package dev.peft4j.train;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.model.ChatTemplate;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Instruction-tuning examples from a JSONL file, each line one JSON object of either form:
 * <pre>
 *   {"prompt": "…", "response": "…"}                                   the response is what the model learns to write
 *   {"messages": [{"role": "system"|"user"|"assistant", "content": "…"}, …]}   every assistant turn is learnt
 * </pre>
 * Other fields are ignored; blank lines are skipped. The whole file is checked when it is read, so a bad line fails
 * before any tokenizing or training: a line that is not UTF-8, not a JSON object, has neither or both forms, a role
 * outside the three, a non-string content, an empty response, or no assistant turn with text → an
 * {@link IllegalArgumentException} naming the file and line.
 *
 * <pre>{@code
 * InstructionData data = InstructionData.read(Path.of("train.jsonl"));
 * List<Batch> batches = InstructionBatches.of(data, tokenizer, template, eosId, 256).batches(8, padId);
 * }</pre>
 */
public final class InstructionData {

  /**
   * One line's conversation.
   *
   * @param source {@code file:line}, for messages about this example
   * @param messages the conversation ({@code prompt}/{@code response} become a user and an assistant message)
   * @param promptResponse whether the line had the {@code prompt}/{@code response} form
   */
  public record Example(String source, List<ChatTemplate.Message> messages, boolean promptResponse) {
    public Example {
      messages = List.copyOf(messages);
    }
  }

  private final Path file;
  private final List<Example> examples;

  private InstructionData(Path file, List<Example> examples) {
    this.file = file;
    this.examples = List.copyOf(examples);
  }

  /**
   * Reads and checks every line of {@code jsonl}.
   *
   * @throws IOException if the file cannot be read
   * @throws IllegalArgumentException naming the file and line of the first bad line, or the file if it holds no
   *     example
   */
  public static InstructionData read(Path jsonl) throws IOException {
    byte[] bytes = Files.readAllBytes(jsonl);
    List<Example> examples = new ArrayList<>();
    int line = 0;
    for (int start = 0; start <= bytes.length; ) {
      int end = start;
      while (end < bytes.length && bytes[end] != '\n') {
        end++;
      }
      String where = jsonl + ":" + ++line;
      String text = utf8(bytes, start, end, where).strip();
      if (!text.isEmpty()) {
        examples.add(example(text, where));
      }
      start = end + 1;
    }
    checkArgument(!examples.isEmpty(), "%s: no examples (a JSON object per line is expected)", jsonl);
    return new InstructionData(jsonl, examples);
  }

  public Path file() {
    return file;
  }

  public List<Example> examples() {
    return examples;
  }

  private static String utf8(byte[] bytes, int start, int end, String where) {
    try {
      return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes, start, end - start))
          .toString();
    } catch (CharacterCodingException e) {
      throw new IllegalArgumentException(where + ": not valid UTF-8", e);
    }
  }

  private static Example example(String text, String where) {
    JsonElement parsed;
    try {
      parsed = JsonParser.parseString(text);
    } catch (RuntimeException e) {
      throw new IllegalArgumentException(where + ": not JSON: " + e.getMessage(), e);
    }
    checkArgument(parsed.isJsonObject(), "%s: a JSON object is expected, found %s", where, abbreviate(text));
    JsonObject o = parsed.getAsJsonObject();
    boolean hasMessages = o.has("messages");
    boolean hasPromptResponse = o.has("prompt") || o.has("response");
    checkArgument(!(hasMessages && hasPromptResponse),
        "%s: both 'messages' and 'prompt'/'response'; one form per line is expected", where);
    checkArgument(hasMessages || hasPromptResponse, "%s: neither 'prompt' and 'response' nor 'messages'; found "
        + "fields %s", where, o.keySet());
    if (hasPromptResponse) {
      String prompt = string(o, "prompt", where);
      String response = string(o, "response", where);
      checkArgument(!response.isBlank(), "%s: the response is empty", where);
      return new Example(where, List.of(new ChatTemplate.Message("user", prompt),
          new ChatTemplate.Message("assistant", response)), true);
    }
    checkArgument(o.get("messages").isJsonArray() && !o.getAsJsonArray("messages").isEmpty(),
        "%s: 'messages' must be a non-empty list of {role, content}", where);
    List<ChatTemplate.Message> messages = new ArrayList<>();
    boolean learnt = false;
    for (JsonElement m : o.getAsJsonArray("messages")) {
      String at = where + " message " + messages.size();
      checkArgument(m.isJsonObject(), "%s: a {role, content} object is expected, found %s", at, m);
      String role = string(m.getAsJsonObject(), "role", at);
      checkArgument(ChatTemplate.ROLES.contains(role), "%s: role must be system, user or assistant, found '%s'", at,
          role);
      String content = string(m.getAsJsonObject(), "content", at);
      learnt |= role.equals("assistant") && !content.isBlank();
      messages.add(new ChatTemplate.Message(role, content));
    }
    checkArgument(learnt, "%s: no assistant message with text: nothing to learn", where);
    return new Example(where, messages, false);
  }

  private static String string(JsonObject o, String field, String where) {
    JsonElement e = o.get(field);
    checkArgument(e != null, "%s: no '%s'", where, field);
    checkArgument(e.isJsonPrimitive() && e.getAsJsonPrimitive().isString(), "%s: '%s' must be a string, found %s",
        where, field, e);
    return e.getAsString();
  }

  private static String abbreviate(String text) {
    return text.length() > 60 ? text.substring(0, 60) + "…" : text;
  }
}
