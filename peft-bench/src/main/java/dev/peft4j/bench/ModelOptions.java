package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.model.BertConfig;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * The base-model option {@code compare} and {@code predict} share (a picocli mixin), and the checks both make before
 * anything is created: the directory holds a BERT checkpoint and a tokenizer, and the sequence length fits the
 * model's positions.
 */
final class ModelOptions {

  @Option(names = "--model", paramLabel = "DIR", description = "a Hugging Face BERT checkpoint directory with "
      + "config.json and tokenizer.json (default: the bundled all-MiniLM-L6-v2)")
  Path model;

  /** The model's name for the records. */
  static String name(Path model) {
    return model == null ? "all-MiniLM-L6-v2 (bundled)" : model.toString();
  }

  /**
   * The model's {@code max_position_embeddings}, read from its config.json (512 for the bundled MiniLM).
   *
   * @throws IllegalArgumentException naming the directory or file that is missing, or a config without the field
   */
  static int maxPositions(Path model) throws IOException {
    if (model == null) {
      return BertConfig.miniLm().maxPositions();
    }
    checkArgument(Files.isDirectory(model), "--model %s: not found (a directory with config.json and "
        + "tokenizer.json is expected)", model);
    Path config = model.resolve("config.json");
    checkArgument(Files.isRegularFile(config), "--model %s: no config.json", model);
    checkArgument(Files.isRegularFile(model.resolve("tokenizer.json")), "--model %s: no tokenizer.json", model);
    JsonElement parsed = JsonParser.parseString(Files.readString(config, StandardCharsets.UTF_8));
    checkArgument(parsed.isJsonObject(), "%s: not a JSON object", config);
    JsonObject o = parsed.getAsJsonObject();
    checkArgument(o.has("max_position_embeddings"), "%s: no max_position_embeddings", config);
    return o.get("max_position_embeddings").getAsInt();
  }

  /** @throws IllegalArgumentException if {@code seq} is below 8 or beyond the model's positions */
  static void checkSequenceLength(Path model, int seq) throws IOException {
    checkArgument(seq >= 8, "--seq must be >= 8, got %s", seq);
    int positions = maxPositions(model);
    checkArgument(seq <= positions, "--seq %s is beyond the model's %s positions (max_position_embeddings of %s)",
        seq, positions, name(model));
  }
}
