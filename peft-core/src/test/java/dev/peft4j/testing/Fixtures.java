package dev.peft4j.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The golden checkpoints and adapters of scripts/make_fixtures.py and make_adapter_fixtures.py, as directories. From peft-core's own tests they are plain
 * files; from another module they may sit inside peft-core's test-jar, and are then copied to a temporary directory.
 */
public final class Fixtures {

  private static final List<String> FILES = List.of("config.json", "model.safetensors", "model.safetensors.index.json",
      "golden.safetensors", "model-00001-of-00006.safetensors", "model-00002-of-00006.safetensors",
      "model-00003-of-00006.safetensors", "model-00004-of-00006.safetensors", "model-00005-of-00006.safetensors",
      "model-00006-of-00006.safetensors", "adapter_config.json", "adapter_model.safetensors", "allocator.json",
      "allocator.safetensors", "budgets.json", "nf4_golden.json", "generation_config.json", "tokenizer.json",
      "generation_golden.safetensors");

  private Fixtures() {}

  /** The directory of fixture {@code name} (a checkpoint such as {@code tiny-llama}, or an adapter). */
  public static Path dir(String name) {
    URL config = Fixtures.class.getResource("/fixtures/" + name + "/config.json");
    if (config == null) {
      config = Fixtures.class.getResource("/fixtures/" + name + "/adapter_config.json");
    }
    if (config == null) {
      throw new IllegalArgumentException("no fixture " + name);
    }
    try {
      if (config.getProtocol().equals("file")) {
        return Path.of(config.toURI()).getParent();
      }
      Path dir = Files.createTempDirectory("peft4j-" + name);
      for (String file : FILES) {
        try (InputStream in = Fixtures.class.getResourceAsStream("/fixtures/" + name + "/" + file)) {
          if (in != null) {
            Files.copy(in, dir.resolve(file));
          }
        }
      }
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * A checkpoint directory in {@code dir}: tiny-llama's config and weights with the tiny ChatML tokenizer
   * ({@code fixtures/tiny-chat-tokenizer}, 128 ids as the model's vocabulary, made by
   * {@code scripts/make_tiny_tokenizer.py}).
   */
  public static Path tinyChatLlama(Path dir) throws IOException {
    Files.createDirectories(dir);
    for (String file : List.of("tiny-llama/config.json", "tiny-llama/model.safetensors",
        "tiny-llama/generation_config.json", "tiny-chat-tokenizer/tokenizer.json",
        "tiny-chat-tokenizer/tokenizer_config.json")) {
      try (InputStream in = Fixtures.class.getResourceAsStream("/fixtures/" + file)) {
        Files.copy(in, dir.resolve(file.substring(file.indexOf('/') + 1)));
      }
    }
    return dir;
  }
}
