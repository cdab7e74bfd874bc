package dev.peft4j.io;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
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
 *
 * <p>A save ({@link #writeAll}) replaces a whole directory so that a reader, in this process or another, reads one
 * complete save or is refused: each adapter directory gets a {@value #MANIFEST} (the save's id, its adapters, the
 * size and SHA-256 of each file), moved into place before the files it lists, and {@link #read} checks the files
 * against it. Besides the adapter files, a peft4j save leaves {@value #MANIFEST} in each adapter directory and
 * {@code .peft4j-save.lock} (the lock concurrent saves take) in the root. Directories written by Hugging Face PEFT
 * have no manifest and are read as they are.
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
  /** The record of a peft4j save in each adapter directory ({@link #writeAll}); Hugging Face PEFT ignores it. */
  public static final String MANIFEST = "peft4j-manifest.json";
  /** The adapter saved in the directory itself rather than in a subdirectory, as in Hugging Face PEFT. */
  public static final String DEFAULT_ADAPTER = "default";
  /** The longest adapter name {@link #checkAdapterName} accepts (a directory name must fit every file system). */
  public static final int MAX_ADAPTER_NAME_LENGTH = 128;

  private AdapterFiles() {}

  /** A read adapter directory: its config and its tensors keyed without {@link #PREFIX} (tuner-level ones whole). */
  public record Read(JsonObject config, Map<String, INDArray> tensors) {}

  /** One adapter's contents in a save: its config (written as JSON) and its tensors, laid out as in {@link #write}. */
  public record Contents(Map<String, Object> config, Map<String, INDArray> tensors) {}

  /**
   * Writes an adapter directory holding one adapter, {@value #DEFAULT_ADAPTER}; see {@link #writeAll}.
   *
   * @param tensors keyed relative to the model (without {@link #PREFIX}), or whole for tuner-level tensors
   *     ({@link #TUNER_PREFIX})
   */
  public static void write(Path dir, Map<String, Object> config, Map<String, INDArray> tensors) throws IOException {
    writeAll(dir, Map.of(DEFAULT_ADAPTER, new Contents(config, tensors)));
  }

  /**
   * Saves {@code adapters} into {@code dir} in Hugging Face PEFT's layout ({@value #DEFAULT_ADAPTER} in {@code dir},
   * any other in {@code dir/<name>}), replacing the save there as a whole: readers see the previous save or this one,
   * or are refused while it is being swapped in; never files of both. Saves into one directory from several threads
   * or processes run one after another. Temporary files a killed save left are removed. Adapters of the previous
   * peft4j save that {@code adapters} no longer holds are removed, if they are as that save wrote them; files
   * peft4j did not write are never deleted.
   *
   * @param adapters adapter name → contents; tensors keyed relative to the model (without {@link #PREFIX}), or whole
   *     for tuner-level tensors ({@link #TUNER_PREFIX})
   * @throws IllegalArgumentException before anything is written: an invalid name ({@link #checkAdapterName}), two
   *     names differing only in case, or a tensor safetensors cannot hold
   * @throws IOException if writing fails; the directory then holds the previous save, or is refused by {@link #read}
   *     until the next save, which completes it
   */
  public static void writeAll(Path dir, Map<String, Contents> adapters) throws IOException {
    writeAll(dir, adapters, step -> { });
  }

  /** {@link #writeAll(Path, Map)} with {@code steps} called after each step of the save (tests stop it there). */
  static void writeAll(Path dir, Map<String, Contents> adapters, DirectorySave.Steps steps) throws IOException {
    Map<String, DirectorySave.AdapterWriter> writers = new LinkedHashMap<>();
    adapters.forEach((name, contents) -> writers.put(name, into -> writeFiles(into, contents)));
    new DirectorySave(steps).save(dir, writers);
  }

  private static void writeFiles(Path dir, Contents contents) throws IOException {
    Map<String, INDArray> prefixed = new LinkedHashMap<>();
    contents.tensors().forEach((k, v) ->
        prefixed.put(k.startsWith(TUNER_PREFIX) || UNPREFIXED.contains(k) ? k : PREFIX + k, v));
    Safetensors.write(dir.resolve(WEIGHTS), prefixed, Map.of("format", "pt"));
    String json = new GsonBuilder().setPrettyPrinting().serializeNulls().create()
        .toJson(new TreeMap<>(contents.config()));
    Files.writeString(dir.resolve(CONFIG), json + "\n", StandardCharsets.UTF_8);
  }

  /**
   * Checks that {@code name} can name an adapter: its directory in a save ({@code dir/<name>}) must be a plain,
   * portable directory name that no peft4j file uses.
   *
   * @throws IllegalArgumentException naming the problem and the name (control characters escaped as a backslash,
   *     {@code u} and four hex digits): null, blank, longer than {@value #MAX_ADAPTER_NAME_LENGTH} characters,
   *     {@code .} or {@code ..}, a '/' or '\\', a control character (NUL included), the name of an adapter file, or
   *     the prefix {@code .peft4j} of peft4j's own files
   */
  public static void checkAdapterName(String name) {
    if (name == null) {
      throw new IllegalArgumentException("an adapter name must not be null");
    }
    String problem = null;
    if (name.isBlank()) {
      problem = "is blank";
    } else if (name.length() > MAX_ADAPTER_NAME_LENGTH) {
      problem = "has " + name.length() + " characters, more than " + MAX_ADAPTER_NAME_LENGTH;
    } else if (name.equals(".") || name.equals("..")) {
      problem = "would name the directory itself or its parent";
    } else if (name.indexOf('/') >= 0 || name.indexOf('\\') >= 0) {
      problem = "contains a path separator ('/' or '\\')";
    } else if (name.chars().anyMatch(Character::isISOControl)) {
      problem = "contains a control character";
    } else if (name.equals(CONFIG) || name.equals(WEIGHTS) || name.equals(MANIFEST)
        || name.startsWith(".peft4j")) {
      problem = "is the name of a file peft4j writes";
    }
    if (problem != null) {
      throw new IllegalArgumentException(String.format("adapter name \"%s\" %s; an adapter name becomes a directory "
          + "name: 1 to %s characters, no '/', '\\' or control characters, not '.' or '..'", escape(name), problem,
          MAX_ADAPTER_NAME_LENGTH));
    }
  }

  /** {@code name} with control characters, quotes and backslashes escaped, cut to 200 characters for messages. */
  private static String escape(String name) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < name.length() && out.length() < 200; i++) {
      char c = name.charAt(i);
      if (Character.isISOControl(c)) {
        out.append(String.format("\\u%04x", (int) c));
      } else if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else {
        out.append(c);
      }
    }
    return out.length() >= 200 ? out + "…" : out.toString();
  }

  /**
   * Reads and validates an adapter directory completely (the config as JSON, every safetensors header and tensor)
   * before anything is applied to a model. The config is read within {@code BoundedJson}'s limits: at most 4 MiB of
   * strict UTF-8 JSON, nested at most 64 deep, strings at most 65,536 characters.
   *
   * @throws IOException naming the file and the problem: a missing file or a directory in its place, an oversized,
   *     non-UTF-8 (with the byte offset), invalid or too deeply nested config, a corrupt or truncated safetensors
   *     file, a tensor key without the {@code base_model.model.} prefix; for a peft4j save, files that differ from
   *     its {@value #MANIFEST} (parts of two saves, or edited by hand: delete the manifest to read them as they are),
   *     or a save by another process into the directory while it was being read (a save in this JVM is waited for)
   */
  public static Read read(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new IOException(dir + (Files.exists(dir) ? ": is a file; expected an adapter directory" : ": not found"));
    }
    return DirectorySave.whileNotSaving(dir, () -> {
      SaveManifest save = SaveManifest.verify(dir); // a peft4j save: the files must be the ones it recorded
      Read read = readFiles(dir);
      SaveManifest.requireUnchanged(dir, save); // and no other process's save swapped files while they were read
      return read;
    });
  }

  private static Read readFiles(Path dir) throws IOException {
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
