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
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Option;

/**
 * The base-model option {@code compare} and {@code predict} share (a picocli mixin), and the checks both make before
 * anything is created: the directory holds a supported checkpoint ({@link #SUPPORTED}) and a tokenizer whose ids
 * fit the model's embedding rows, a decoder has a token to pad with, and the sequence length fits the model's
 * positions.
 */
final class ModelOptions {

  /** config.json {@code model_type}s compare and predict build a classifier for. */
  static final List<String> SUPPORTED = List.of("bert", "llama", "mistral", "qwen2", "qwen3", "gemma");
  private static final List<String> DECODERS = List.of("llama", "mistral", "qwen2", "qwen3", "gemma");

  @Option(names = "--model", paramLabel = "DIR", description = "a Hugging Face checkpoint directory with config.json "
      + "and tokenizer.json: a BERT encoder (mean-pooled classifier head), or a decoder of model_type llama, "
      + "mistral, qwen2, qwen3 or gemma (a new score head on the last non-padding token, as "
      + "…ForSequenceClassification; pads with pad_token_id, else eos_token_id) (default: the bundled "
      + "all-MiniLM-L6-v2)")
  Path model;

  /**
   * The token a decoder's batches are padded with, and where it came from.
   *
   * @param id     the id written at padding positions, which the {@value dev.peft4j.model.Heads#SCORE} head skips
   * @param source config.json's field it was read from, for the records
   */
  record DecoderPad(long id, String source) {}

  /** The model's name for the records. */
  static String name(Path model) {
    return model == null ? "all-MiniLM-L6-v2 (bundled)" : model.toString();
  }

  /** {@link ModelFamily#DECODER} for a Llama-family checkpoint, else {@link ModelFamily#ENCODER}. */
  static ModelFamily family(Path model) throws IOException {
    return model != null && DECODERS.contains(config(model).get("model_type").getAsString()) ? ModelFamily.DECODER
        : ModelFamily.ENCODER;
  }

  /**
   * A decoder's padding token: config.json's {@code pad_token_id}, else its {@code eos_token_id} (the first, if a
   * list), as Hugging Face's fine-tuning recipes set {@code pad_token = eos_token} for decoders without one.
   *
   * @throws IllegalArgumentException if config.json has neither
   */
  static DecoderPad decoderPad(Path model) throws IOException {
    JsonObject o = config(model);
    JsonElement pad = o.get("pad_token_id");
    if (pad != null && !pad.isJsonNull()) {
      return new DecoderPad(pad.getAsLong(), "pad_token_id " + pad.getAsLong() + " of config.json");
    }
    JsonElement eos = o.get("eos_token_id");
    if (eos != null && eos.isJsonArray() && !eos.getAsJsonArray().isEmpty()) {
      eos = eos.getAsJsonArray().get(0);
    }
    checkArgument(eos != null && eos.isJsonPrimitive(), "--model %s: config.json has neither pad_token_id nor "
        + "eos_token_id; a decoder classifier needs a token to pad batches with (transformers refuses batches of "
        + "several rows without pad_token_id)", model);
    return new DecoderPad(eos.getAsLong(), "eos_token_id " + eos.getAsLong() + " of config.json (it has no "
        + "pad_token_id; Hugging Face recipes pad decoders with the EOS token)");
  }

  /**
   * The model's {@code max_position_embeddings}, read from its config.json (512 for the bundled MiniLM), after
   * {@link #check}.
   *
   * @throws IllegalArgumentException as {@link #check}
   */
  static int maxPositions(Path model) throws IOException {
    if (model == null) {
      return BertConfig.miniLm().maxPositions();
    }
    check(model);
    return config(model).get("max_position_embeddings").getAsInt();
  }

  /**
   * Checks a {@code --model} directory from its config.json and tokenizer.json alone, before any weight is read.
   *
   * @throws IllegalArgumentException naming the directory and what is wrong: not found, no config.json or
   *     tokenizer.json, a model_type not in {@link #SUPPORTED} (listing them), no max_position_embeddings or
   *     vocab_size, token ids beyond the embedding rows (naming both counts), a decoder with nothing to pad with
   */
  static void check(Path model) throws IOException {
    checkArgument(Files.isDirectory(model), "--model %s: not found (a directory with config.json and "
        + "tokenizer.json is expected)", model);
    checkArgument(Files.isRegularFile(model.resolve("config.json")), "--model %s: no config.json", model);
    JsonObject o = config(model);
    String type = o.has("model_type") ? o.get("model_type").getAsString() : "(none)";
    checkArgument(SUPPORTED.contains(type), "--model %s: model_type '%s' is not supported; supported: %s", model,
        type, String.join(", ", SUPPORTED));
    checkArgument(Files.isRegularFile(model.resolve("tokenizer.json")), "--model %s: no tokenizer.json", model);
    for (String field : List.of("max_position_embeddings", "vocab_size")) {
      checkArgument(o.has(field), "%s: no %s", model.resolve("config.json"), field);
    }
    long ids = tokenizerIds(model.resolve("tokenizer.json"));
    long rows = o.get("vocab_size").getAsLong();
    checkArgument(ids <= rows, "--model %s: tokenizer.json has %s token ids but the model's embedding has %s rows "
        + "(vocab_size of config.json): ids beyond them have no embedding", model, ids, rows);
    if (DECODERS.contains(type)) {
      decoderPad(model);
    }
  }

  /** One more than the highest token id of a tokenizer.json: its model's vocabulary and its added tokens. */
  private static long tokenizerIds(Path tokenizerJson) throws IOException {
    JsonElement parsed = JsonParser.parseString(Files.readString(tokenizerJson, StandardCharsets.UTF_8));
    checkArgument(parsed.isJsonObject(), "%s: not a JSON object", tokenizerJson);
    JsonObject o = parsed.getAsJsonObject();
    long highest = -1;
    JsonElement vocab = o.has("model") && o.get("model").isJsonObject() ? o.getAsJsonObject("model").get("vocab")
        : null;
    if (vocab != null && vocab.isJsonObject()) {           // BPE, WordPiece, WordLevel: token → id
      for (Map.Entry<String, JsonElement> e : vocab.getAsJsonObject().entrySet()) {
        highest = Math.max(highest, e.getValue().getAsLong());
      }
    } else if (vocab != null && vocab.isJsonArray()) {     // Unigram: [token, score] at its id
      highest = vocab.getAsJsonArray().size() - 1;
    }
    if (o.has("added_tokens") && o.get("added_tokens").isJsonArray()) {
      for (JsonElement t : o.getAsJsonArray("added_tokens")) {
        highest = Math.max(highest, t.getAsJsonObject().get("id").getAsLong());
      }
    }
    return highest + 1;
  }

  private static JsonObject config(Path model) throws IOException {
    Path config = model.resolve("config.json");
    JsonElement parsed = JsonParser.parseString(Files.readString(config, StandardCharsets.UTF_8));
    checkArgument(parsed.isJsonObject(), "%s: not a JSON object", config);
    return parsed.getAsJsonObject();
  }

  /** @throws IllegalArgumentException if {@code seq} is below 8 or beyond the model's positions */
  static void checkSequenceLength(Path model, int seq) throws IOException {
    checkArgument(seq >= 8, "--seq must be >= 8, got %s", seq);
    int positions = maxPositions(model);
    checkArgument(seq <= positions, "--seq %s is beyond the model's %s positions (max_position_embeddings of %s)",
        seq, positions, name(model));
  }
}
