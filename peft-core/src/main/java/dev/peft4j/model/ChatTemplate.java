package dev.peft4j.model;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The chat template of a decoder's {@code tokenizer_config.json}, rendered as transformers'
 * {@code apply_chat_template(messages, tokenize=False)} renders it, for conversations of text messages (no tools).
 *
 * <p>peft4j has no general Jinja engine: HubSpot's jinjava 2.7.4, tried on these templates with transformers'
 * {@code trim_blocks} and {@code lstrip_blocks}, kept indentation that transformers strips and failed on Qwen3's
 * template, and would bring Jackson, SnakeYAML and Javassist into every application. So this class recognises the
 * published templates of these families by their markers and renders them in Java, character for character:
 * <pre>
 *   LLAMA_3       Meta-Llama-3-*-Instruct            bos + per message: header(role) + trim(content) + &lt;|eot_id|&gt;
 *   LLAMA_3_1     Llama-3.1/3.2/3.3-*-Instruct       bos + a system block with "Cutting Knowledge Date" and
 *                                                    "Today Date" (date_string; today where the template calls
 *                                                    strftime_now, else its default), then as LLAMA_3
 *   CHATML        Qwen2, Qwen2.5 (and ChatML)         [default system] + &lt;|im_start|&gt;role\n content &lt;|im_end|&gt;\n
 *   QWEN_3        Qwen3                              CHATML without a default system; assistant turns after the last
 *                                                    user query carry a &lt;think&gt; block; enable_thinking=false
 *                                                    adds an empty one after the generation prompt
 *   MISTRAL       Mistral-7B-Instruct-v0.3           bos + [INST] user[/INST] assistant&lt;/s&gt;, the system message
 *                                                    before the last user message, roles alternating
 *   MISTRAL_NEMO  Mistral-Nemo-Instruct-2407         as MISTRAL without the spaces and without trimming
 * </pre>
 * A template that is none of these is refused when it is read, naming what was found, and so is one that carries a
 * family's markers but differs from the published template where the rendering depends on it (a check of
 * fingerprints, not a proof: a template edited elsewhere can still pass); messages the template would reject
 * (Mistral's alternation) are refused with the template's own message.
 *
 * <pre>{@code
 * ChatTemplate t = ChatTemplate.read(dir.resolve("tokenizer_config.json")).orElseThrow();
 * String prompt = t.render(List.of(new ChatTemplate.Message("user", "Hi")), true);
 * long[] ids = tokenizer.ids(prompt, false);   // the template wrote the special tokens already
 * }</pre>
 */
public final class ChatTemplate {

  /** The template families peft4j renders. */
  public enum Family { LLAMA_3, LLAMA_3_1, CHATML, QWEN_3, MISTRAL, MISTRAL_NEMO }

  /** The roles a message may have. */
  public static final Set<String> ROLES = Set.of("system", "user", "assistant");

  /**
   * One message of a conversation.
   *
   * @throws IllegalArgumentException if the role is not system, user or assistant, or the content is null
   */
  public record Message(String role, String content) {
    public Message {
      checkArgument(ROLES.contains(role), "role must be one of system, user, assistant, got '%s'", role);
      checkArgument(content != null, "the %s message has no content", role);
    }
  }

  /**
   * A rendered conversation and where its assistant turns are: {@code [start, end)} character ranges of
   * {@link #text}, each the assistant's text and its end-of-turn token (what a fine-tuned model must learn to write),
   * not the header before it.
   */
  public record Rendered(String text, List<int[]> assistantSpans) {}

  private static final DateTimeFormatter STRFTIME_D_B_Y = DateTimeFormatter.ofPattern("dd MMM yyyy", Locale.ENGLISH);
  private static final Pattern DATE_DEFAULT = Pattern.compile("set date_string = \"([^\"]+)\"");
  /** A ChatML default system message: {@code '<|im_start|>system\nDEFAULT<|im_end|>} with a literal or written \n. */
  private static final Pattern CHATML_DEFAULT_SYSTEM =
      Pattern.compile("'<\\|im_start\\|>system(?:\\n|\\\\n)([^'+]*?)<\\|im_end\\|>");

  private final Family family;
  private final String bosToken;
  private final String eosToken;
  /** CHATML's system message when a conversation has none ("" for none); LLAMA_3_1's date when it has one. */
  private final String defaultSystem;
  private final String dateString;
  private final Boolean enableThinking;

  ChatTemplate(Family family, String bosToken, String eosToken, String defaultSystem, String dateString,
      Boolean enableThinking) {
    this.family = family;
    this.bosToken = bosToken;
    this.eosToken = eosToken;
    this.defaultSystem = defaultSystem;
    this.dateString = dateString;
    this.enableThinking = enableThinking;
  }

  /**
   * The chat template of {@code tokenizer_config.json} ({@code chat_template}, a string or a list of named templates
   * of which the one named {@code default} is taken, as transformers does), with its {@code bos_token} and
   * {@code eos_token}; empty when the file has no chat template.
   *
   * @throws IOException naming the file, if it cannot be read or is not JSON
   * @throws IllegalArgumentException naming the file, if the template is none of the families above or a token it
   *     writes is missing
   */
  public static Optional<ChatTemplate> read(Path tokenizerConfigJson) throws IOException {
    JsonObject config;
    try {
      config = JsonParser.parseString(Files.readString(tokenizerConfigJson, StandardCharsets.UTF_8))
          .getAsJsonObject();
    } catch (RuntimeException e) {
      throw new IOException(tokenizerConfigJson + ": not a JSON object: " + e.getMessage(), e);
    }
    JsonElement template = config.get("chat_template");
    if (template == null || template.isJsonNull()) {
      return Optional.empty();
    }
    String text = null;
    if (template.isJsonArray()) {
      for (JsonElement named : template.getAsJsonArray()) {
        if (named.isJsonObject() && "default".equals(string(named.getAsJsonObject().get("name")))) {
          text = string(named.getAsJsonObject().get("template"));
        }
      }
      checkArgument(text != null, "%s: chat_template is a list without a template named 'default'",
          tokenizerConfigJson);
    } else {
      text = string(template);
    }
    try {
      return Optional.of(of(text, token(config.get("bos_token")), token(config.get("eos_token"))));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(tokenizerConfigJson + ": " + e.getMessage(), e);
    }
  }

  /**
   * Recognises {@code template}'s family.
   *
   * @param bosToken the template's {@code bos_token}, or null when the tokenizer has none (Qwen)
   * @param eosToken the template's {@code eos_token}, or null
   * @throws IllegalArgumentException if the template is none of the families above (quoting its start), or a token
   *     it writes is null
   */
  public static ChatTemplate of(String template, String bosToken, String eosToken) {
    checkArgument(template != null && !template.isBlank(), "the chat template is empty");
    Family family;
    String defaultSystem = "";
    String date = null;
    if (template.contains("<|start_header_id|>") && template.contains("<|eot_id|>")) {
      // Meta's templates write bos_token and trim each message; derived ones that do not are not rendered as theirs
      checkArgument(template.contains("bos_token") && template.contains("message['content'] | trim"), "a Llama 3 "
          + "chat template that differs from Meta's (bos_token, each message's content trimmed): %s", quote(template));
      family = template.contains("Cutting Knowledge Date") ? Family.LLAMA_3_1 : Family.LLAMA_3;
      if (family == Family.LLAMA_3_1 && !template.contains("strftime_now")) {
        Matcher m = DATE_DEFAULT.matcher(template);
        checkArgument(m.find(), "a Llama 3.1 chat template with neither strftime_now nor a default date_string");
        date = m.group(1);
      }
    } else if (template.contains("<|im_start|>") && template.contains("<|im_end|>")) {
      checkArgument(template.contains("'<|im_start|>' + message.role") || template.contains("'<|im_start|>' + "
          + "message['role']"), "a ChatML chat template that differs from Qwen's (each message as '<|im_start|>' + "
          + "its role): %s", quote(template));
      family = template.contains("<think>") ? Family.QWEN_3 : Family.CHATML;
      Matcher m = CHATML_DEFAULT_SYSTEM.matcher(template);
      if (family == Family.CHATML && m.find()) {
        defaultSystem = m.group(1);
      }
    } else if (template.contains("[INST]") && template.contains("[/INST]")) {
      boolean spaced = template.contains("\"[INST] \"") || template.contains("'[INST] '");
      boolean tight = template.contains("\"[INST]\" +") || template.contains("'[INST]' +");
      checkArgument(spaced != tight && !template.contains(" [/INST]"), "a Mistral chat template of a form peft4j "
          + "does not render (it renders Mistral-7B-Instruct-v0.3's and Mistral-Nemo's): %s", quote(template));
      family = spaced ? Family.MISTRAL : Family.MISTRAL_NEMO;
    } else {
      throw new IllegalArgumentException("the chat template is none of the families peft4j renders (Llama 3, "
          + "Llama 3.1-3.3, Qwen2/Qwen2.5/ChatML, Qwen3, Mistral v0.3, Mistral Nemo; peft4j has no general Jinja "
          + "engine): " + quote(template));
    }
    boolean writesBos = family == Family.LLAMA_3 || family == Family.LLAMA_3_1 || family == Family.MISTRAL
        || family == Family.MISTRAL_NEMO;
    checkArgument(!writesBos || bosToken != null, "the %s chat template writes bos_token, which is missing", family);
    checkArgument(!family.name().startsWith("MISTRAL") || eosToken != null,
        "the %s chat template writes eos_token, which is missing", family);
    return new ChatTemplate(family, bosToken, eosToken, defaultSystem, date, null);
  }

  public Family family() {
    return family;
  }

  /** This template with {@code date_string} set (Llama 3.1+; default: today, or the template's own default). */
  public ChatTemplate withDateString(String date) {
    checkArgument(date != null && !date.isBlank(), "date_string must not be empty");
    return new ChatTemplate(family, bosToken, eosToken, defaultSystem, date, enableThinking);
  }

  /** This template with {@code enable_thinking} set (Qwen3; default: undefined, as transformers leaves it). */
  public ChatTemplate withThinking(boolean enable) {
    return new ChatTemplate(family, bosToken, eosToken, defaultSystem, dateString, enable);
  }

  /**
   * The conversation as text, special tokens written out (tokenize it without adding special tokens).
   *
   * @param addGenerationPrompt whether the assistant's header follows, for generation (Mistral has none)
   * @throws IllegalArgumentException if there are no messages, or the template refuses their order
   */
  public String render(List<Message> messages, boolean addGenerationPrompt) {
    return renderWithSpans(messages, addGenerationPrompt).text();
  }

  /** {@link #render}, with the character ranges of the assistant turns. */
  public Rendered renderWithSpans(List<Message> messages, boolean addGenerationPrompt) {
    checkArgument(!messages.isEmpty(), "no messages to render");
    Out out = new Out();
    switch (family) {
      case LLAMA_3, LLAMA_3_1 -> llama(messages, addGenerationPrompt, out);
      case CHATML, QWEN_3 -> chatMl(messages, addGenerationPrompt, out);
      case MISTRAL, MISTRAL_NEMO -> mistral(messages, out);
    }
    return new Rendered(out.text.toString(), List.copyOf(out.spans));
  }

  private void llama(List<Message> messages, boolean generationPrompt, Out out) {
    List<Message> rest = messages;
    if (family == Family.LLAMA_3_1) {
      String system = "";
      if (messages.get(0).role().equals("system")) {
        system = messages.get(0).content().strip();
        rest = messages.subList(1, messages.size());
      }
      String date = dateString != null ? dateString : LocalDate.now().format(STRFTIME_D_B_Y);
      out.add(bosToken + "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
          + "Today Date: " + date + "\n\n" + system + "<|eot_id|>");
    } else {
      out.add(bosToken);
    }
    for (Message m : rest) {
      out.add("<|start_header_id|>" + m.role() + "<|end_header_id|>\n\n");
      out.add(m.content().strip() + "<|eot_id|>", m.role().equals("assistant"));
    }
    if (generationPrompt) {
      out.add("<|start_header_id|>assistant<|end_header_id|>\n\n");
    }
  }

  private void chatMl(List<Message> messages, boolean generationPrompt, Out out) {
    boolean hasSystem = messages.get(0).role().equals("system");
    if (!hasSystem && !defaultSystem.isEmpty()) {
      out.add("<|im_start|>system\n" + defaultSystem + "<|im_end|>\n");
    }
    int lastQuery = messages.size() - 1;
    for (int i = messages.size() - 1; i >= 0; i--) {
      String c = messages.get(i).content();
      if (messages.get(i).role().equals("user") && !(c.startsWith("<tool_response>")
          && c.endsWith("</tool_response>"))) {
        lastQuery = i;
        break;
      }
    }
    for (int i = 0; i < messages.size(); i++) {
      Message m = messages.get(i);
      out.add("<|im_start|>" + m.role() + "\n");
      if (!m.role().equals("assistant")) {
        out.add(m.content() + "<|im_end|>\n");
        continue;
      }
      String content = m.content();
      if (family == Family.QWEN_3) {
        String reasoning = "";
        if (content.contains("</think>")) {
          // content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n'), as the template has it
          String[] parts = content.split("</think>", -1);
          String before = stripTrailing(parts[0], '\n');
          int open = before.lastIndexOf("<think>");
          reasoning = stripLeading(open < 0 ? before : before.substring(open + "<think>".length()), '\n');
          content = stripLeading(parts[parts.length - 1], '\n');
        }
        if (i > lastQuery && (i == messages.size() - 1 || !reasoning.isEmpty())) {
          content = "<think>\n" + stripTrailing(stripLeading(reasoning, '\n'), '\n') + "\n</think>\n\n"
              + stripLeading(content, '\n');
        }
      }
      out.add(content + "<|im_end|>", true);
      out.add("\n");
    }
    if (generationPrompt) {
      out.add("<|im_start|>assistant\n");
      if (family == Family.QWEN_3 && Boolean.FALSE.equals(enableThinking)) {
        out.add("<think>\n\n</think>\n\n");
      }
    }
  }

  private void mistral(List<Message> messages, Out out) {
    boolean spaced = family == Family.MISTRAL;
    String system = null;
    List<Message> rest = messages;
    if (messages.get(0).role().equals("system")) {
      system = messages.get(0).content();
      rest = messages.subList(1, messages.size());
    }
    for (int i = 0; i < rest.size(); i++) {
      checkArgument(rest.get(i).role().equals("user") == (i % 2 == 0), "After the optional system message, "
          + "conversation roles must alternate user/assistant/user/assistant/...");
    }
    out.add(bosToken);
    String open = spaced ? "[INST] " : "[INST]";
    for (int i = 0; i < rest.size(); i++) {
      Message m = rest.get(i);
      if (m.role().equals("user")) {
        boolean withSystem = i == rest.size() - 1 && system != null;
        out.add(open + (withSystem ? system + "\n\n" : "") + m.content() + "[/INST]");
      } else if (m.role().equals("assistant")) {
        out.add((spaced ? " " + m.content().strip() : m.content()) + eosToken, true);
      } else {
        throw new IllegalArgumentException("Only user and assistant roles are supported, with the exception of an "
            + "initial optional system message!");
      }
    }
  }

  /** Python's {@code s.lstrip(c)}. */
  private static String stripLeading(String s, char c) {
    int i = 0;
    while (i < s.length() && s.charAt(i) == c) {
      i++;
    }
    return s.substring(i);
  }

  /** Python's {@code s.rstrip(c)}. */
  private static String stripTrailing(String s, char c) {
    int i = s.length();
    while (i > 0 && s.charAt(i - 1) == c) {
      i--;
    }
    return s.substring(0, i);
  }

  private static String quote(String template) {
    String start = template.strip().replace("\n", "\\n");
    return "'" + (start.length() > 80 ? start.substring(0, 80) + "…" : start) + "'";
  }

  private static String string(JsonElement e) {
    return e == null || e.isJsonNull() || !e.isJsonPrimitive() ? null : e.getAsString();
  }

  /** A special token as tokenizer_config.json writes it: a string, or an object with {@code content}. */
  private static String token(JsonElement e) {
    if (e != null && e.isJsonObject()) {
      return string(e.getAsJsonObject().get("content"));
    }
    return string(e);
  }

  /** The text being written and the ranges of it that are assistant turns. */
  private static final class Out {
    final StringBuilder text = new StringBuilder();
    final List<int[]> spans = new ArrayList<>();

    void add(String s) {
      add(s, false);
    }

    void add(String s, boolean assistant) {
      if (assistant) {
        spans.add(new int[] {text.length(), text.length() + s.length()});
      }
      text.append(s);
    }
  }
}
