package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.ChatTemplate;
import dev.peft4j.model.HfModels;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.train.Batch;
import dev.peft4j.train.InstructionBatches;
import dev.peft4j.train.InstructionData;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * finetune end to end on the tiny Llama with the tiny ChatML tokenizer: the response loss falls, the saved adapter
 * reproduces it, and bad input is refused before any work with nothing written.
 */
class FinetuneTest {

  @TempDir
  static Path tmp;
  static Path model;
  static Path data;

  @BeforeAll
  static void fixtures() throws IOException {
    model = Fixtures.tinyChatLlama(tmp.resolve("tiny-chat-llama"));
    List<String> lines = new ArrayList<>();
    String[][] pairs = {{"What is two plus three?", "Five."}, {"What is one plus one?", "Two."},
        {"Name a colour.", "Red."}, {"Repeat after me: hello world.", "hello world."}};
    for (String[] p : pairs) {
      lines.add("{\"prompt\": \"" + p[0] + "\", \"response\": \"" + p[1] + "\"}");
    }
    lines.add("{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": "
        + "\"Yes?\"}, {\"role\": \"assistant\", \"content\": \"Yes.\"}, {\"role\": \"user\", \"content\": "
        + "\"No?\"}, {\"role\": \"assistant\", \"content\": \"No.\"}]}");
    data = Files.write(tmp.resolve("train.jsonl"), lines);
  }

  static Finetune.Result run(String... args) throws IOException {
    return Finetune.run(Finetune.parse(args), new PrintStream(new ByteArrayOutputStream(), true,
        StandardCharsets.UTF_8));
  }

  @Test
  void loraLowersTheResponseLossAndTheSavedAdapterReproducesIt() throws IOException {
    Path out = tmp.resolve("adapter");
    ByteArrayOutputStream progress = new ByteArrayOutputStream();
    Finetune.Result r = Finetune.run(Finetune.parse("--model", model.toString(), "--data", data.toString(), "--out",
        out.toString(), "--r", "4", "--alpha", "8", "--dropout", "0", "--targets", "q_proj,k_proj,v_proj,o_proj",
        "--lr", "2e-2", "--steps", "30", "--batch", "2", "--seq", "64", "--seed", "3"),
        new PrintStream(progress, true, StandardCharsets.UTF_8));
    String log = progress.toString(StandardCharsets.UTF_8);
    System.out.printf("finetune seed 3: response loss %.4f -> %.4f over %d steps%n", r.responseLossBefore(),
        r.responseLossAfter(), r.steps());
    assertEquals(5, r.examples());
    assertEquals(30, r.steps());
    assertTrue(r.responseLossAfter() < 0.5 * r.responseLossBefore(), "response loss " + r.responseLossBefore()
        + " -> " + r.responseLossAfter());
    assertTrue(log.contains("5 examples (0 cut to 64 tokens), chat template CHATML, 30 steps of 2"), log);
    assertTrue(log.contains("adapter saved to " + out), log);

    JsonObject config = JsonParser.parseString(Files.readString(out.resolve("adapter_config.json")))
        .getAsJsonObject();
    assertEquals("LORA", config.get("peft_type").getAsString());
    assertEquals(4, config.get("r").getAsInt());
    assertEquals("CAUSAL_LM", config.get("task_type").getAsString());
    assertTrue(Files.size(out.resolve("adapter_model.safetensors")) > 0);

    // the saved adapter on a fresh base gives the trained model's response loss
    HfModels.Decoder fresh = HfModels.loadDecoder(model);
    PeftModel loaded = Peft.load(fresh.sameDiff(), out);
    InstructionBatches encoded = InstructionBatches.of(InstructionData.read(data), fresh.tokenizer().orElseThrow(),
        ChatTemplate.read(model.resolve("tokenizer_config.json")), OptionalLong.empty(), 64);
    List<Batch> batches = encoded.shuffled(3).batches(2, 4);
    assertEquals(r.responseLossAfter(), Finetune.responseLoss(loaded, batches), 1e-4);
    fresh.tokenizer().orElseThrow().close();
  }

  @Test
  void packedRowsTrainToo() throws IOException {
    Path out = tmp.resolve("packed-adapter");
    ByteArrayOutputStream progress = new ByteArrayOutputStream();
    Finetune.Result r = Finetune.run(Finetune.parse("--model", model.toString(), "--data", data.toString(), "--out",
        out.toString(), "--r", "4", "--alpha", "8", "--dropout", "0", "--targets", "q_proj,k_proj,v_proj,o_proj",
        "--lr", "2e-2", "--steps", "30", "--batch", "1", "--seq", "64", "--seed", "3", "--packing"),
        new PrintStream(progress, true, StandardCharsets.UTF_8));
    String log = progress.toString(StandardCharsets.UTF_8);
    System.out.printf("finetune --packing seed 3: response loss %.4f -> %.4f over %d steps%n", r.responseLossBefore(),
        r.responseLossAfter(), r.steps());
    java.util.regex.Matcher rows = java.util.regex.Pattern.compile("5 examples \\(0 cut to 64 tokens\\) packed into "
        + "(\\d+) rows").matcher(log);
    assertTrue(rows.find() && Integer.parseInt(rows.group(1)) < 5, "several examples a row: " + log);
    assertTrue(r.responseLossAfter() < 0.5 * r.responseLossBefore(), "response loss " + r.responseLossBefore()
        + " -> " + r.responseLossAfter());
    JsonObject config = JsonParser.parseString(Files.readString(out.resolve("adapter_config.json")))
        .getAsJsonObject();
    assertEquals("CAUSAL_LM", config.get("task_type").getAsString());
    assertEquals(model.toString(), config.get("base_model_name_or_path").getAsString());
  }

  @Test
  void existingOutIsRefusedUnlessOverwrite() throws IOException {
    Path out = Files.createDirectories(tmp.resolve("taken"));
    Files.writeString(out.resolve("notes.txt"), "mine");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> run("--model", model.toString(),
        "--data", data.toString(), "--out", out.toString()));
    assertEquals("--out " + out + " exists; pass --overwrite to replace the adapter in it", e.getMessage());
    assertEquals(List.of(out.resolve("notes.txt")), list(out), "nothing written");
    Path file = Files.writeString(tmp.resolve("a-file"), "x");
    assertEquals("--out " + file + " is a file, not a directory", assertThrows(IllegalArgumentException.class,
        () -> run("--model", model.toString(), "--data", data.toString(), "--out", file.toString())).getMessage());
  }

  @Test
  void badInputIsRefusedBeforeAnyWork() throws IOException {
    Path out = tmp.resolve("never");
    Path badData = Files.writeString(tmp.resolve("bad.jsonl"), "{\"prompt\": \"a\", \"response\": \"b\"}\n"
        + "{\"question\": \"a\"}\n");
    assertEquals(badData + ":2: neither 'prompt' and 'response' nor 'messages'; found fields [question]",
        refused("--model", model.toString(), "--data", badData.toString(), "--out", out.toString()));
    assertEquals("--seq 65 is beyond the model's 64 positions (max_position_embeddings of "
        + model.resolve("config.json") + ")", refused("--model", model.toString(), "--data", data.toString(),
        "--out", out.toString(), "--seq", "65"));
    assertEquals("--r must be >= 1, got 0", refused("--model", model.toString(), "--data", data.toString(), "--out",
        out.toString(), "--r", "0"));
    assertEquals("--model " + tmp.resolve("nowhere") + ": not found (a decoder checkpoint directory is expected)",
        refused("--model", tmp.resolve("nowhere").toString(), "--data", data.toString(), "--out", out.toString()));

    Path noTokenizer = copy("no-tokenizer");
    Files.delete(noTokenizer.resolve("tokenizer.json"));
    assertEquals("--model " + noTokenizer + ": no tokenizer.json", refused("--model", noTokenizer.toString(),
        "--data", data.toString(), "--out", out.toString()));

    Path smallVocab = copy("small-vocab");
    Path config = smallVocab.resolve("config.json");
    Files.writeString(config, Files.readString(config).replace("\"vocab_size\": 128", "\"vocab_size\": 100"));
    assertEquals(smallVocab.resolve("tokenizer.json") + " has 128 ids, more than the model's 100 embedding rows "
        + "(vocab_size of " + config + "): a tokenizer of another model?", refused("--model", smallVocab.toString(),
        "--data", data.toString(), "--out", out.toString()));

    Path gemmaTemplate = copy("gemma-template");
    Files.writeString(gemmaTemplate.resolve("tokenizer_config.json"), "{\"chat_template\": \"{% for m in messages "
        + "%}<start_of_turn>{{ m['content'] }}<end_of_turn>{% endfor %}\", \"eos_token\": \"</s>\"}");
    String message = refused("--model", gemmaTemplate.toString(), "--data", data.toString(), "--out",
        out.toString());
    assertTrue(message.startsWith(gemmaTemplate.resolve("tokenizer_config.json")
        + ": the chat template is none of the families peft4j renders"), message);

    assertThrows(CommandLine.ParameterException.class, () -> Finetune.parse("--model", model.toString(), "--data",
        data.toString(), "--out", out.toString(), "--method", "ia3"));
    Path encoder = copy("encoder");
    Path encoderConfig = encoder.resolve("config.json");
    Files.writeString(encoderConfig, Files.readString(encoderConfig).replace("\"model_type\": \"llama\"",
        "\"model_type\": \"bert\""));
    assertEquals(encoderConfig + ": model_type 'bert' is not a decoder; supported: llama, mistral, qwen2, qwen3, "
        + "gemma", refused("--model", encoder.toString(), "--data", data.toString(), "--out", out.toString()));
    assertEquals(2, new CommandLine(new Finetune.Command()).execute("--model", model.toString(), "--data",
        data.toString(), "--out", out.toString(), "--lr", "0"), "the command's exit code for bad input");
    assertFalse(Files.exists(out), "nothing written");
  }

  private static String refused(String... args) {
    return assertThrows(IllegalArgumentException.class, () -> run(args)).getMessage();
  }

  private static Path copy(String name) throws IOException {
    Path dir = Files.createDirectories(tmp.resolve(name));
    for (Path f : list(model)) {
      Files.copy(f, dir.resolve(f.getFileName()));
    }
    return dir;
  }

  private static List<Path> list(Path dir) throws IOException {
    try (var s = Files.list(dir)) {
      return s.sorted().toList();
    }
  }
}
