package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.io.SafetensorsFile;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import picocli.CommandLine;

/**
 * The generate command on peft-core's tiny fixtures (which have no tokenizer.json, hence {@code --ids}): the tokens of
 * transformers' {@code generate} (scripts/make_generation_fixtures.py), and every bad input refused before anything
 * is printed.
 */
class GenerateTest {

  private static final Path FIXTURES = Path.of("..", "peft-core", "src", "test", "resources", "fixtures");
  private static final Path LLAMA = FIXTURES.resolve("tiny-llama");

  @TempDir
  static Path tmp;
  static Path promptFile;

  /** The golden prompts (unpadded) as id lines, and each fixture's expected new tokens as id lines. */
  static List<String> idLines(String fixture, String tensor) throws IOException {
    try (SafetensorsFile f = SafetensorsFile.open(FIXTURES.resolve(fixture).resolve("generation_golden.safetensors"))) {
      INDArray ids = f.read("input_ids");
      INDArray mask = f.read("attention_mask");
      INDArray sequences = f.read("sequences");
      List<String> out = new ArrayList<>();
      for (int r = 0; r < ids.size(0); r++) {
        long[] row = (tensor.equals("prompts") ? ids : sequences).getRow(r).toLongVector();
        int from = tensor.equals("prompts") ? (int) (ids.size(1) - mask.getRow(r).sumNumber().longValue())
            : (int) ids.size(1);
        out.add(Arrays.stream(row, from, row.length).mapToObj(Long::toString).collect(Collectors.joining(" ")));
      }
      return out;
    }
  }

  @BeforeAll
  static void prompts() throws IOException {
    promptFile = Files.write(tmp.resolve("prompts.txt"), idLines("tiny-llama", "prompts"));
  }

  private static String run(String... args) throws IOException {
    Generate.Command c = CommandLine.populateCommand(new Generate.Command(), args);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Generate.run(c, InputStream.nullInputStream(), new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    return out.toString(StandardCharsets.UTF_8);
  }

  private static String refused(String... args) {
    Generate.Command c = CommandLine.populateCommand(new Generate.Command(), args);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    String m = assertThrows(IllegalArgumentException.class, () -> Generate.run(c, InputStream.nullInputStream(),
        new PrintStream(out, true, StandardCharsets.UTF_8), System.err)).getMessage();
    assertEquals("", out.toString(StandardCharsets.UTF_8), "printed before refusing");
    return m;
  }

  @Test
  void greedyIdsFromAFileAreTransformersTokensInBatchesOfTwo() throws IOException {
    String out = run("--model", LLAMA.toString(), "--ids", "--input", promptFile.toString(), "--max-new-tokens", "10",
        "--batch", "2");
    assertEquals(idLines("tiny-llama", "sequences"), out.lines().toList());
  }

  @Test
  void anAdapterAndJsonLinesOutputGiveThePeftTokens() throws IOException {
    List<String> prompts = idLines("lora-tiny-llama", "prompts");
    List<String> args = new ArrayList<>(List.of("--model", LLAMA.toString(), "--adapter",
        FIXTURES.resolve("lora-tiny-llama").toString(), "--ids", "--max-new-tokens", "10", "--format", "jsonl"));
    args.addAll(prompts);
    List<String> lines = run(args.toArray(new String[0])).lines().toList();
    List<String> expected = idLines("lora-tiny-llama", "sequences");
    assertEquals(3, lines.size());
    for (int i = 0; i < 3; i++) {
      JsonObject o = JsonParser.parseString(lines.get(i)).getAsJsonObject();
      assertEquals(prompts.get(i), o.get("prompt").getAsString());
      assertEquals(expected.get(i), o.get("completion").getAsString());
      assertEquals(10, o.getAsJsonArray("tokens").size());
    }
  }

  @Test
  void textPromptsAreEncodedAndCompletionsDecodedWithTheCheckpointsTokenizer() throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("tiny-chat-llama"));
    for (String f : List.of("config.json", "model.safetensors", "generation_config.json")) {
      Files.copy(LLAMA.resolve(f), dir.resolve(f));
    }
    Files.copy(FIXTURES.resolve("tiny-chat-tokenizer/tokenizer.json"), dir.resolve("tokenizer.json")); // h20-tok's
    String prompt = "What is two plus three?";
    JsonObject text = JsonParser.parseString(run("--model", dir.toString(), "--max-new-tokens", "6", "--format",
        "jsonl", prompt).strip()).getAsJsonObject();
    try (dev.peft4j.model.Tokenizer tokenizer = dev.peft4j.model.Tokenizer.read(
        Files.newInputStream(dir.resolve("tokenizer.json")), 512)) {
      String ids = Arrays.stream(tokenizer.ids(prompt, true)).mapToObj(Long::toString)
          .collect(Collectors.joining(" "));
      String idOut = run("--model", dir.toString(), "--ids", "--max-new-tokens", "6", ids).strip();
      long[] tokens = Arrays.stream(idOut.split(" ")).mapToLong(Long::parseLong).toArray();
      assertEquals(idOut, text.getAsJsonArray("tokens").asList().stream().map(e -> e.getAsString())
          .collect(Collectors.joining(" ")), "the same tokens as from the prompt's ids");
      assertEquals(tokenizer.decode(tokens, true), text.get("completion").getAsString());
      assertEquals(prompt, text.get("prompt").getAsString());
      System.out.println("text completion of '" + prompt + "': '" + text.get("completion").getAsString() + "' "
          + idOut);
    }
  }

  @Test
  void chatRendersEachPromptAsAUserTurnWithTheCheckpointsTemplate() throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("tiny-chatml-llama"));
    for (String f : List.of("config.json", "model.safetensors", "generation_config.json")) {
      Files.copy(LLAMA.resolve(f), dir.resolve(f));
    }
    for (String f : List.of("tokenizer.json", "tokenizer_config.json")) {
      Files.copy(FIXTURES.resolve("tiny-chat-tokenizer").resolve(f), dir.resolve(f));
    }
    String prompt = "Name a prime.";
    // the fixture's ChatML template, rendered by hand: transformers' apply_chat_template(add_generation_prompt=True)
    String rendered = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n" + prompt
        + "<|im_end|>\n<|im_start|>assistant\n";
    try (dev.peft4j.model.Tokenizer tokenizer = dev.peft4j.model.Tokenizer.read(
        Files.newInputStream(dir.resolve("tokenizer.json")), 512)) {
      String ids = Arrays.stream(tokenizer.ids(rendered, false)).mapToObj(Long::toString)
          .collect(Collectors.joining(" "));
      String expected = run("--model", dir.toString(), "--ids", "--max-new-tokens", "5", ids).strip();
      JsonObject chat = JsonParser.parseString(run("--model", dir.toString(), "--chat", "--system", "Be brief.",
          "--max-new-tokens", "5", "--format", "jsonl", prompt).strip()).getAsJsonObject();
      assertEquals(expected, chat.getAsJsonArray("tokens").asList().stream().map(e -> e.getAsString())
          .collect(Collectors.joining(" ")), "--chat generates from the rendered template's ids");
      String plain = JsonParser.parseString(run("--model", dir.toString(), "--max-new-tokens", "5", "--format",
          "jsonl", prompt).strip()).getAsJsonObject().getAsJsonArray("tokens").toString();
      assertNotEquals(plain, chat.getAsJsonArray("tokens").toString(), "without --chat the prompt is not wrapped");
    }
    assertTrue(refused("--model", dir.toString(), "--chat", "--ids", "5").contains("does not go with --ids"));
    assertTrue(refused("--model", dir.toString(), "--system", "x", "hi").contains("needs --chat"));
    Files.delete(dir.resolve("tokenizer_config.json"));
    assertTrue(refused("--model", dir.toString(), "--chat", "hi").contains("no tokenizer_config.json"));
  }

  @Test
  void badInputIsRefusedBeforeAnythingIsPrinted() throws IOException {
    String model = LLAMA.toString();
    assertTrue(refused("--model", model, "--ids", "--max-new-tokens", "0", "5 6").contains("max_new_tokens must be > 0"));
    assertTrue(refused("--model", model, "--ids", "--sample", "--top-p", "1.5", "5 6").contains("top_p"));
    assertTrue(refused("--model", model, "--ids", "--sample", "--temperature", "0", "5 6").contains("temperature"));
    assertTrue(refused("--model", model, "--ids", "--top-k", "-2", "5 6").contains("top_k"));
    String tooLong = "7 ".repeat(60).strip();
    String m = refused("--model", model, "--ids", "--max-new-tokens", "10", "5 6", tooLong);
    assertTrue(m.contains("60 tokens") && m.contains("64 positions"), m);
    assertTrue(refused("--model", model, "--ids", "5 500").contains("id 500, outside the vocabulary of 128"));
    assertTrue(refused("--model", model, "--ids", "5 x").contains("prompt 0: --ids expects token ids"));
    assertTrue(refused("--model", model, "--ids").contains("no prompt"));
    assertTrue(refused("--model", model, "hello").contains("no tokenizer.json"));
    assertTrue(refused("--model", tmp.resolve("none").toString(), "--ids", "5").contains("no config.json"));
    assertTrue(refused("--model", model, "--adapter", tmp.toString(), "--ids", "5").contains("no adapter_config"));
    assertTrue(refused("--model", model, "--ids", "--input", promptFile.toString(), "5").contains("not both"));
    Path jsonl = Files.writeString(tmp.resolve("bad.jsonl"), "{\"prompt\": \"5 6\"}\n{\"text\": \"5 6\"}\n");
    m = refused("--model", model, "--ids", "--input", jsonl.toString());
    assertTrue(m.contains("bad.jsonl:2") && m.contains("\"prompt\""), m);
    Path good = Files.writeString(tmp.resolve("good.jsonl"), "{\"prompt\": \"5 6\"}\n\n{\"prompt\": \"9\"}\n");
    assertEquals(2, run("--model", model, "--ids", "--max-new-tokens", "2", "--input", good.toString()).lines().count());
  }
}
