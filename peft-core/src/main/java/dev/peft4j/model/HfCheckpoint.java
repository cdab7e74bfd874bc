package dev.peft4j.model;

import com.google.common.collect.ImmutableMap;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import dev.peft4j.io.SafetensorsFile;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The weights of a Hugging Face checkpoint directory: {@code model.safetensors}, or the shards listed by
 * {@code model.safetensors.index.json}. Every file's header is validated when the checkpoint is opened, before any
 * weight is read; tensors are then read one at a time, F16 and BF16 widened to F32. Linear weights are stored
 * {@code [out, in]} (PyTorch) and transposed by {@link #linearWeight}. A name that is not in the checkpoint is also
 * looked up under the task-model prefixes {@code bert.}, {@code model.}, {@code roberta.} and {@code distilbert.}, so a
 * {@code BertForSequenceClassification} checkpoint feeds the bare encoder, and a {@code transformer.…} name also
 * without that prefix (GPT-2 checkpoints of the bare {@code GPT2Model}).
 */
public final class HfCheckpoint implements Weights, AutoCloseable {

  static final String SINGLE = "model.safetensors";
  static final String INDEX = "model.safetensors.index.json";
  private static final String GPT2_PREFIX = "transformer.";
  private static final List<String> PREFIXES = List.of("", "bert.", "model.", "roberta.", "distilbert.");

  private final Path dir;
  private final List<SafetensorsFile> files;
  private final ImmutableMap<String, SafetensorsFile> byName;
  private final Set<String> used = new LinkedHashSet<>();

  private HfCheckpoint(Path dir, List<SafetensorsFile> files, ImmutableMap<String, SafetensorsFile> byName) {
    this.dir = dir;
    this.files = files;
    this.byName = byName;
  }

  /**
   * Opens and validates the checkpoint in {@code dir}.
   *
   * @throws IOException naming the file and the problem: no weights file, an unreadable or inconsistent index, a
   *     corrupt or truncated safetensors file, a tensor listed in the index but missing from its shard
   */
  public static HfCheckpoint open(Path dir) throws IOException {
    Path single = dir.resolve(SINGLE);
    Path index = dir.resolve(INDEX);
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      Map<String, SafetensorsFile> byName = new LinkedHashMap<>();
      if (Files.isRegularFile(single)) {
        SafetensorsFile f = SafetensorsFile.open(single);
        opened.add(f);
        f.names().forEach(n -> byName.put(n, f));
      } else if (Files.isRegularFile(index)) {
        Map<String, String> weightMap = readIndex(index);
        Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : weightMap.entrySet()) {
          SafetensorsFile shard = shards.get(e.getValue());
          if (shard == null) {
            Path file = dir.resolve(e.getValue()).normalize();
            if (!file.startsWith(dir.normalize())) {
              throw new IOException(index + ": shard '" + e.getValue() + "' lies outside the checkpoint directory");
            }
            shard = SafetensorsFile.open(file);
            opened.add(shard);
            shards.put(e.getValue(), shard);
          }
          if (!shard.names().contains(e.getKey())) {
            throw new IOException(String.format("%s lists tensor '%s' in %s, which does not hold it", index,
                e.getKey(), e.getValue()));
          }
          byName.put(e.getKey(), shard);
        }
      } else {
        throw new IOException(String.format("%s: no %s or %s", dir, SINGLE, INDEX));
      }
      return new HfCheckpoint(dir, opened, ImmutableMap.copyOf(byName));
    } catch (IOException | RuntimeException e) {
      for (SafetensorsFile f : opened) {
        try {
          f.close();
        } catch (IOException suppressed) {
          e.addSuppressed(suppressed);
        }
      }
      throw e;
    }
  }

  private static Map<String, String> readIndex(Path index) throws IOException {
    try {
      JsonElement root = JsonParser.parseString(Files.readString(index, StandardCharsets.UTF_8));
      if (!root.isJsonObject() || !root.getAsJsonObject().has("weight_map")
          || !root.getAsJsonObject().get("weight_map").isJsonObject()) {
        throw new IOException(index + ": no 'weight_map' object");
      }
      JsonObject map = root.getAsJsonObject().getAsJsonObject("weight_map");
      Map<String, String> out = new LinkedHashMap<>();
      for (Map.Entry<String, JsonElement> e : map.entrySet()) {
        if (!e.getValue().isJsonPrimitive()) {
          throw new IOException(index + ": weight_map entry '" + e.getKey() + "' is not a file name");
        }
        out.put(e.getKey(), e.getValue().getAsString());
      }
      return out;
    } catch (JsonParseException e) {
      throw new IOException(index + ": not valid JSON (" + e.getMessage() + ")", e);
    }
  }

  @Override
  public boolean has(String name) {
    return resolve(name) != null;
  }

  @Override
  public Set<String> names() {
    return byName.keySet();
  }

  @Override
  public INDArray tensor(String name) {
    String stored = resolve(name);
    if (stored == null) {
      throw new IllegalArgumentException(String.format("checkpoint %s has no tensor '%s' (it holds %d tensors, "
          + "e.g. %s)", dir, name, byName.size(), byName.keySet().asList().subList(0, Math.min(6, byName.size()))));
    }
    try {
      used.add(stored);
      return byName.get(stored).readFloat(stored);
    } catch (IOException e) {
      throw new UncheckedIOException(dir + ": cannot read tensor '" + stored + "': " + e.getMessage(), e);
    }
  }

  @Override
  public INDArray linearWeight(String module) {
    return tensor(module + ".weight").transpose().dup('c');
  }

  /** Tensors of the checkpoint no architecture asked for so far, sorted. */
  public Set<String> unused() {
    Set<String> out = new TreeSet<>(byName.keySet());
    out.removeAll(used);
    return out;
  }

  private String resolve(String name) {
    for (String prefix : PREFIXES) {
      if (byName.containsKey(prefix + name)) {
        return prefix + name;
      }
    }
    // GPT-2 checkpoints saved from the bare GPT2Model (the hub's gpt2) lack GPT2LMHeadModel's "transformer." prefix
    String bare = name.startsWith(GPT2_PREFIX) ? name.substring(GPT2_PREFIX.length()) : null;
    return bare != null && byName.containsKey(bare) ? bare : null;
  }

  @Override
  public void close() throws IOException {
    IOException first = null;
    for (SafetensorsFile f : files) {
      try {
        f.close();
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      throw first;
    }
  }
}
