package dev.peft4j.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Chat templates rendered character for character as transformers 5.18 renders the published templates
 * ({@code chat-templates/cases.json}, made by {@code scripts/make_chat_template_cases.py}).
 */
class ChatTemplateTest {

  static final String QWEN25_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

  /** The family (and default system message) each published template is recognised as. */
  static ChatTemplate template(String name, JsonObject c) {
    String bos = c.get("bos_token").isJsonNull() ? null : c.get("bos_token").getAsString();
    String eos = c.get("eos_token").isJsonNull() ? null : c.get("eos_token").getAsString();
    JsonObject vars = c.getAsJsonObject("variables");
    String date = vars.has("date_string") ? vars.get("date_string").getAsString() : null;
    Boolean thinking = vars.has("enable_thinking") ? vars.get("enable_thinking").getAsBoolean() : null;
    return switch (name) {
      case "llama3" -> new ChatTemplate(ChatTemplate.Family.LLAMA_3, bos, eos, "", date, null);
      case "llama31", "llama32" -> new ChatTemplate(ChatTemplate.Family.LLAMA_3_1, bos, eos, "", date, null);
      case "qwen2" -> new ChatTemplate(ChatTemplate.Family.CHATML, bos, eos, "You are a helpful assistant.", null, null);
      case "qwen25" -> new ChatTemplate(ChatTemplate.Family.CHATML, bos, eos, QWEN25_SYSTEM, null, null);
      case "qwen3" -> new ChatTemplate(ChatTemplate.Family.QWEN_3, bos, eos, "", null, thinking);
      case "mistral-v03" -> new ChatTemplate(ChatTemplate.Family.MISTRAL, bos, eos, "", null, null);
      case "mistral-nemo" -> new ChatTemplate(ChatTemplate.Family.MISTRAL_NEMO, bos, eos, "", null, null);
      default -> throw new IllegalStateException(name);
    };
  }

  static Stream<Arguments> cases() throws Exception {
    JsonObject all;
    try (InputStream in = ChatTemplateTest.class.getResourceAsStream("/chat-templates/cases.json")) {
      all = JsonParser.parseString(new String(in.readAllBytes(), StandardCharsets.UTF_8)).getAsJsonObject();
    }
    List<Arguments> out = new ArrayList<>();
    for (JsonElement e : all.getAsJsonArray("cases")) {
      JsonObject c = e.getAsJsonObject();
      List<ChatTemplate.Message> messages = new ArrayList<>();
      for (JsonElement m : all.getAsJsonObject("conversations").getAsJsonArray(c.get("conversation").getAsString())) {
        messages.add(new ChatTemplate.Message(m.getAsJsonObject().get("role").getAsString(),
            m.getAsJsonObject().get("content").getAsString()));
      }
      String name = c.get("template").getAsString() + " " + c.get("conversation").getAsString()
          + (c.get("add_generation_prompt").getAsBoolean() ? " +generation prompt" : "") + " " + c.get("variables");
      out.add(Arguments.of(name, c, messages));
    }
    return out.stream();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void rendersAsTransformers(String name, JsonObject c, List<ChatTemplate.Message> messages) {
    ChatTemplate t = template(c.get("template").getAsString(), c);
    boolean generationPrompt = c.get("add_generation_prompt").getAsBoolean();
    if (!c.get("error").isJsonNull()) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.render(messages,
          generationPrompt));
      assertEquals(c.get("error").getAsString(), e.getMessage());
      return;
    }
    ChatTemplate.Rendered r = t.renderWithSpans(messages, generationPrompt);
    assertEquals(c.get("text").getAsString(), r.text());
    // every assistant turn is one span, and each span is that turn's text (trimmed where the template trims it)
    List<ChatTemplate.Message> assistant = messages.stream().filter(m -> m.role().equals("assistant")).toList();
    assertEquals(assistant.size(), r.assistantSpans().size());
    for (int i = 0; i < assistant.size(); i++) {
      String span = r.text().substring(r.assistantSpans().get(i)[0], r.assistantSpans().get(i)[1]);
      String content = assistant.get(i).content().strip();
      String visible = content.contains("</think>") ? content.substring(content.indexOf("</think>") + 8).strip()
          : content;
      assertTrue(span.contains(visible) && span.endsWith(c.get("eos_token").getAsString()),
          "span '" + span + "' of assistant turn " + i);
    }
  }

  @Test
  void recognisesEachFamilyByItsMarkers() {
    assertEquals(ChatTemplate.Family.LLAMA_3, ChatTemplate.of("{{ bos_token }}<|start_header_id|>…<|eot_id|> "
        + "message['content'] | trim", "<|begin_of_text|>", "<|eot_id|>").family());
    ChatTemplate llama31 = ChatTemplate.of("{{- bos_token }}<|start_header_id|> Cutting Knowledge Date {%- set "
        + "date_string = \"26 Jul 2024\" %} message['content'] | trim <|eot_id|>", "<|begin_of_text|>", "<|eot_id|>");
    assertEquals(ChatTemplate.Family.LLAMA_3_1, llama31.family());
    assertTrue(llama31.render(List.of(new ChatTemplate.Message("user", "x")), false).contains(
        "Today Date: 26 Jul 2024\n"), "the template's own default date");
    ChatTemplate qwen25 = ChatTemplate.of("{{- '<|im_start|>system\\n" + QWEN25_SYSTEM + "<|im_end|>\\n' }}"
        + "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}", null, "<|im_end|>");
    assertEquals(ChatTemplate.Family.CHATML, qwen25.family());
    assertEquals("<|im_start|>system\n" + QWEN25_SYSTEM + "<|im_end|>\n<|im_start|>user\nx<|im_end|>\n",
        qwen25.render(List.of(new ChatTemplate.Message("user", "x")), false), "default system read from the template");
    ChatTemplate qwen2 = ChatTemplate.of("{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}"
        + "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}", null, "<|im_end|>");
    assertTrue(qwen2.render(List.of(new ChatTemplate.Message("user", "x")), false).startsWith(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"), "a template written with a real newline");
    assertEquals(ChatTemplate.Family.QWEN_3, ChatTemplate.of("'<|im_start|>' + message.role <think> <|im_end|>", null,
        "<|im_end|>").family());
    assertEquals(ChatTemplate.Family.MISTRAL, ChatTemplate.of("{{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}",
        "<s>", "</s>").family());
    assertEquals(ChatTemplate.Family.MISTRAL_NEMO, ChatTemplate.of("{{- \"[INST]\" + message[\"content\"] + "
        + "\"[/INST]\" }}", "<s>", "</s>").family());
  }

  @Test
  void refusesTemplatesItCannotRender() {
    IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class, () -> ChatTemplate.of(
        "{% for message in messages %}<start_of_turn>{{ message['content'] }}<end_of_turn>{% endfor %}", "<bos>",
        "<eos>"));
    assertEquals("the chat template is none of the families peft4j renders (Llama 3, Llama 3.1-3.3, "
        + "Qwen2/Qwen2.5/ChatML, Qwen3, Mistral v0.3, Mistral Nemo; peft4j has no general Jinja engine): "
        + "'{% for message in messages %}<start_of_turn>{{ message['content'] }}<end_of_turn…'",
        unknown.getMessage());
    IllegalArgumentException oldMistral = assertThrows(IllegalArgumentException.class, () -> ChatTemplate.of(
        "{{ bos_token }}{{ '[INST] ' + message['content'] + ' [/INST]' }}", "<s>", "</s>"));
    assertTrue(oldMistral.getMessage().startsWith("a Mistral chat template of a form peft4j does not render"),
        oldMistral.getMessage());
    IllegalArgumentException derivedLlama = assertThrows(IllegalArgumentException.class, () -> ChatTemplate.of(
        "{{- '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>' }}",
        "<|begin_of_text|>", "<|eot_id|>"));
    assertTrue(derivedLlama.getMessage().startsWith("a Llama 3 chat template that differs from Meta's"),
        derivedLlama.getMessage());
    IllegalArgumentException upperCaseRoles = assertThrows(IllegalArgumentException.class, () -> ChatTemplate.of(
        "{{ \"<|im_start|>\" + (message.role.upper() if role_capital else message.role) }}<|im_end|>", null,
        "<|im_end|>"));
    assertTrue(upperCaseRoles.getMessage().startsWith("a ChatML chat template that differs from Qwen's"),
        upperCaseRoles.getMessage());
    IllegalArgumentException noBos = assertThrows(IllegalArgumentException.class, () -> ChatTemplate.of(
        "{{ bos_token }}<|start_header_id|><|eot_id|> message['content'] | trim", null, "<|eot_id|>"));
    assertEquals("the LLAMA_3 chat template writes bos_token, which is missing", noBos.getMessage());
    assertThrows(IllegalArgumentException.class, () -> new ChatTemplate.Message("tool", "x"));
  }

  @Test
  void readsTokenizerConfig(@TempDir Path dir) throws Exception {
    Path config = dir.resolve("tokenizer_config.json");
    Files.writeString(config, new com.google.gson.Gson().toJson(Map.of(
        "bos_token", Map.of("content", "<s>", "special", true), "eos_token", "</s>",
        "chat_template", List.of(Map.of("name", "tool_use", "template", "unused"),
            Map.of("name", "default", "template", "{{ bos_token }}{{ '[INST] ' + m + '[/INST]' }}")))));
    ChatTemplate t = ChatTemplate.read(config).orElseThrow();
    assertEquals("<s>[INST] Hi[/INST] Yo</s>", t.render(List.of(new ChatTemplate.Message("user", "Hi"),
        new ChatTemplate.Message("assistant", "Yo ")), false));
    Files.writeString(config, "{\"eos_token\": \"</s>\"}");
    assertTrue(ChatTemplate.read(config).isEmpty());
    Files.writeString(config, "{\"chat_template\": \"{{ messages }}\"}");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ChatTemplate.read(config));
    assertTrue(e.getMessage().startsWith(config + ": the chat template is none of the families"), e.getMessage());
  }
}
