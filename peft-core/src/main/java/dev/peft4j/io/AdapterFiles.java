package dev.peft4j.io;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Hugging Face PEFT's adapter directory: {@code adapter_config.json} and {@code adapter_model.safetensors}
 * (metadata {@code {"format": "pt"}}, tensor keys prefixed {@code base_model.model.}).
 *
 * <p>A few tensors live on Hugging Face's tuner rather than in the model (VeRA's shared projections,
 * {@code base_model.vera_A}); their keys start with {@link #TUNER_PREFIX} but not {@link #PREFIX}, and peft4j keeps
 * them whole, in the file and in its state dicts.
 */
public final class AdapterFiles {

  public static final String CONFIG = "adapter_config.json";
  public static final String WEIGHTS = "adapter_model.safetensors";
  /** The prefix Hugging Face PEFT puts before every module path in the weights file. */
  public static final String PREFIX = "base_model.model.";
  /** The prefix of tensors kept on the tuner rather than in a module, e.g. {@code base_model.vera_A}. */
  public static final String TUNER_PREFIX = "base_model.";
  /**
   * Keys Hugging Face PEFT writes without {@link #PREFIX}: the virtual-token table of the prompt-learning methods
   * (prompt tuning, P-tuning, prefix tuning), which belongs to no module of the model.
   */
  public static final Set<String> UNPREFIXED = Set.of("prompt_embeddings");

  private AdapterFiles() {}

  /** A read adapter directory: its config and its tensors keyed without {@link #PREFIX} (tuner-level ones whole). */
  public record Read(JsonObject config, Map<String, INDArray> tensors) {}

  /**
   * Writes an adapter directory. Each file is written to a temporary file and renamed over the old one, the weights
   * first, so a crash never leaves a half-written file.
   *
   * @param tensors keyed relative to the model (without {@link #PREFIX}), or whole for tuner-level tensors
   *     ({@link #TUNER_PREFIX})
   */
  public static void write(Path dir, Map<String, Object> config, Map<String, INDArray> tensors) throws IOException {
    Files.createDirectories(dir);
    Map<String, INDArray> prefixed = new LinkedHashMap<>();
    tensors.forEach((k, v) ->
        prefixed.put(k.startsWith(TUNER_PREFIX) || UNPREFIXED.contains(k) ? k : PREFIX + k, v));
    Safetensors.write(dir.resolve(WEIGHTS), prefixed, Map.of("format", "pt"));
    String json = new GsonBuilder().setPrettyPrinting().serializeNulls().create().toJson(new TreeMap<>(config));
    Path temp = dir.resolve(CONFIG + ".tmp");
    try {
      Files.writeString(temp, json + "\n", StandardCharsets.UTF_8);
      Files.move(temp, dir.resolve(CONFIG), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(temp);
    }
  }

  /**
   * Reads and validates an adapter directory completely (the config as JSON, every safetensors header and tensor)
   * before anything is applied to a model. The config is read within {@code BoundedJson}'s limits: at most 4 MiB of
   * strict UTF-8 JSON, nested at most 64 deep, strings at most 65,536 characters.
   *
   * @throws IOException naming the file and the problem: a missing file or a directory in its place, an oversized,
   *     non-UTF-8 (with the byte offset), invalid or too deeply nested config, a corrupt or truncated safetensors
   *     file, a tensor key without the {@code base_model.model.} prefix
   */
  public static Read read(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new IOException(dir + (Files.exists(dir) ? ": is a file; expected an adapter directory" : ": not found"));
    }
    JsonObject config = BoundedJson.readObject(dir.resolve(CONFIG));
    Path weights = dir.resolve(WEIGHTS);
    if (Files.isDirectory(weights)) {
      throw new IOException(weights + ": is a directory; expected a safetensors file");
    }
    if (!Files.exists(weights)) {
      throw new IOException(weights + ": not found");
    }
    Map<String, INDArray> tensors = new LinkedHashMap<>();
    try (SafetensorsFile file = SafetensorsFile.open(weights)) {
      for (String name : file.names()) {
        if (!UNPREFIXED.contains(name) && !name.startsWith(TUNER_PREFIX)) {
          throw new IOException(String.format("%s: tensor '%s' lacks the '%s' prefix of a PEFT adapter", weights,
              name, PREFIX));
        }
        String key = name.startsWith(PREFIX) ? name.substring(PREFIX.length()) : name;
        if (tensors.containsKey(key)) { // "prompt_embeddings" beside "base_model.model.prompt_embeddings"
          throw new IOException(String.format("%s: tensor '%s' appears twice, with and without the '%s' prefix",
              weights, key, PREFIX));
        }
        tensors.put(key, file.read(name));
      }
    }
    return new Read(config, tensors);
  }
}
