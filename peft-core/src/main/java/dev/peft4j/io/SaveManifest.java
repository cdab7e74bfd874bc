package dev.peft4j.io;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The record of one peft4j save, {@value AdapterFiles#MANIFEST}, written into every adapter directory of the save
 * and moved into place before the data files it lists; a reader that finds one accepts the directory only if every
 * listed file has the recorded size and SHA-256, so it sees one whole save or a refusal, never a mix of two.
 * <pre>
 *   {"peft4j_manifest": 1,                       format version
 *    "save": "1b4e…",                            random id, the same in every directory of one save
 *    "adapter": "default" | "other" | null,      the adapter in this directory (null: the root of a save without one)
 *    "adapters": ["default", "other"],           every adapter of the save
 *    "files": {"adapter_config.json": {"size": 412, "sha256": "9f…"}, "adapter_model.safetensors": {…}}}
 * </pre>
 * Adapters saved by Hugging Face PEFT have no manifest and are read as they are.
 */
record SaveManifest(String save, String adapter, List<String> adapters, Map<String, FileDigest> files) {

  static final int FORMAT = 1;
  /** Manifests are a few hundred bytes; anything far larger was not written by peft4j. */
  private static final long MAX_BYTES = 1 << 20;

  /** The size and SHA-256 (lower-case hex) of one file. */
  record FileDigest(long size, String sha256) {

    static FileDigest of(Path file) throws IOException {
      MessageDigest sha = newSha256();
      long size = 0;
      byte[] buffer = new byte[1 << 16];
      try (InputStream in = new DigestInputStream(Files.newInputStream(file), sha)) {
        for (int n; (n = in.read(buffer)) >= 0; ) {
          size += n;
        }
      }
      return new FileDigest(size, HexFormat.of().formatHex(sha.digest()));
    }
  }

  SaveManifest {
    adapters = List.copyOf(adapters);
    files = Map.copyOf(files);
  }

  /** True if this directory holds an adapter of the save (a save without a default adapter has none at its root). */
  boolean holdsAdapter() {
    return adapter != null;
  }

  String toJson() {
    JsonObject json = new JsonObject();
    json.addProperty("peft4j_manifest", FORMAT);
    json.addProperty("save", save);
    json.addProperty("adapter", adapter);
    JsonArray names = new JsonArray();
    adapters.forEach(names::add);
    json.add("adapters", names);
    JsonObject listed = new JsonObject();
    files.keySet().stream().sorted().forEach(name -> {
      JsonObject f = new JsonObject();
      f.addProperty("size", files.get(name).size());
      f.addProperty("sha256", files.get(name).sha256());
      listed.add(name, f);
    });
    json.add("files", listed);
    return new GsonBuilder().setPrettyPrinting().serializeNulls().create().toJson(json) + "\n";
  }

  /**
   * The manifest in {@code dir}, or null if there is none.
   *
   * @throws IOException naming the manifest, if it is not one peft4j wrote (unreadable, not JSON, another format
   *     version, a field of the wrong type, a file name that is not a plain name in the directory)
   */
  static SaveManifest readIn(Path dir) throws IOException {
    Path file = dir.resolve(AdapterFiles.MANIFEST);
    String text;
    try {
      long size = Files.size(file);
      if (size > MAX_BYTES) {
        throw new IOException(String.format("%s: %s bytes, more than the %s a peft4j manifest can have", file, size,
            MAX_BYTES));
      }
      text = readUtf8(file);
    } catch (NoSuchFileException e) {
      return null;
    }
    try {
      JsonElement parsed = JsonParser.parseString(text);
      if (!parsed.isJsonObject()) {
        throw new IOException(file + ": not a JSON object");
      }
      JsonObject json = parsed.getAsJsonObject();
      JsonElement format = json.get("peft4j_manifest");
      if (format == null || !format.isJsonPrimitive() || !format.getAsJsonPrimitive().isNumber()
          || format.getAsDouble() != FORMAT) {
        throw new IOException(String.format("%s: peft4j_manifest is %s, expected %s (a newer peft4j wrote it?)",
            file, format, FORMAT));
      }
      String save = string(json, "save", file, false);
      String adapter = string(json, "adapter", file, true);
      List<String> adapters = new ArrayList<>();
      for (JsonElement e : array(json, "adapters", file)) {
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
          throw new IOException(String.format("%s: adapters holds %s, expected adapter names", file, e));
        }
        adapters.add(e.getAsString());
      }
      JsonElement filesJson = json.get("files");
      if (filesJson == null || !filesJson.isJsonObject()) {
        throw new IOException(String.format("%s: files is %s, expected an object", file, filesJson));
      }
      Map<String, FileDigest> files = new LinkedHashMap<>();
      for (Map.Entry<String, JsonElement> e : filesJson.getAsJsonObject().entrySet()) {
        if (!e.getKey().equals(AdapterFiles.CONFIG) && !e.getKey().equals(AdapterFiles.WEIGHTS)) {
          throw new IOException(String.format("%s: lists '%s', expected only %s and %s", file, e.getKey(),
              AdapterFiles.CONFIG, AdapterFiles.WEIGHTS));
        }
        if (!e.getValue().isJsonObject()) {
          throw new IOException(String.format("%s: files.%s is %s, expected an object", file, e.getKey(),
              e.getValue()));
        }
        JsonObject f = e.getValue().getAsJsonObject();
        JsonElement size = f.get("size");
        if (size == null || !size.isJsonPrimitive() || !size.getAsJsonPrimitive().isNumber()
            || size.getAsDouble() < 0 || size.getAsDouble() != Math.rint(size.getAsDouble())) {
          throw new IOException(String.format("%s: files.%s.size is %s, expected a byte count", file, e.getKey(),
              size));
        }
        String sha = string(f, "sha256", file, false);
        if (!sha.matches("[0-9a-f]{64}")) {
          throw new IOException(String.format("%s: files.%s.sha256 is '%s', expected 64 lower-case hex digits",
              file, e.getKey(), sha));
        }
        files.put(e.getKey(), new FileDigest(size.getAsLong(), sha));
      }
      return new SaveManifest(save, adapter, adapters, files);
    } catch (JsonParseException | StackOverflowError e) {
      throw new IOException(file + ": not valid JSON (" + e + ")", e);
    }
  }

  /**
   * Checks {@code dir} against its manifest, if it has one: both adapter files must be listed and have the recorded
   * size and SHA-256, and an adapter in a subdirectory must belong to the same save as the manifest of the directory
   * above it, if that has one.
   *
   * @return the manifest, or null for a directory without one (saved by Hugging Face PEFT)
   * @throws IOException naming the file that differs, what was found and what the manifest records: the directory
   *     holds parts of two saves (a save was interrupted, is in progress, or the files were edited by hand)
   */
  static SaveManifest verify(Path dir) throws IOException {
    SaveManifest manifest = readIn(dir);
    if (manifest == null) {
      return null;
    }
    Path file = dir.resolve(AdapterFiles.MANIFEST);
    if (!manifest.holdsAdapter()) {
      throw new IOException(String.format("%s: the peft4j save in %s has no adapter at this level (its adapters, "
          + "each in a subdirectory: %s)", file, dir, manifest.adapters()));
    }
    for (String name : List.of(AdapterFiles.CONFIG, AdapterFiles.WEIGHTS)) {
      FileDigest expected = manifest.files().get(name);
      if (expected == null) {
        throw new IOException(String.format("%s: does not list %s, expected both %s and %s", file, name,
            AdapterFiles.CONFIG, AdapterFiles.WEIGHTS));
      }
      Path data = dir.resolve(name);
      FileDigest found;
      try {
        found = Files.isRegularFile(data) ? FileDigest.of(data) : null;
      } catch (NoSuchFileException e) {
        found = null;
      }
      if (!expected.equals(found)) {
        throw new IOException(String.format("%s: %s, but %s records %s bytes with SHA-256 %s: the directory holds "
                + "parts of two saves (a save was interrupted or is in progress, or the file was edited); save "
                + "again, or delete %s to load the files as they are",
            data, found == null ? "missing" : found.size() + " bytes with SHA-256 " + found.sha256(), file,
            expected.size(), expected.sha256(), AdapterFiles.MANIFEST));
      }
    }
    if (!manifest.adapter().equals(AdapterFiles.DEFAULT_ADAPTER)) {
      requireSameSaveAsParent(dir, manifest);
    }
    return manifest;
  }

  /**
   * Checks that no save changed {@code dir} since {@link #verify} returned {@code before}: the manifest (and the one
   * above it, for an adapter in a subdirectory) are still those of the same save, or still absent.
   */
  static void requireUnchanged(Path dir, SaveManifest before) throws IOException {
    SaveManifest now = readIn(dir);
    if (!Objects.equals(before == null ? null : before.save(), now == null ? null : now.save())) {
      throw new IOException(String.format("%s: a peft4j save into %s ran while it was being read (%s was %s, is "
              + "now %s); read it again", dir.resolve(AdapterFiles.MANIFEST), dir, AdapterFiles.MANIFEST,
          before == null ? "absent" : "of save " + before.save(), now == null ? "absent" : "of save " + now.save()));
    }
    if (now != null && now.holdsAdapter() && !now.adapter().equals(AdapterFiles.DEFAULT_ADAPTER)) {
      requireSameSaveAsParent(dir, now);
    }
  }

  private static void requireSameSaveAsParent(Path dir, SaveManifest manifest) throws IOException {
    Path parent = dir.toAbsolutePath().getParent();
    SaveManifest above = parent == null ? null : readIn(parent);
    if (above != null && !above.save().equals(manifest.save())) {
      throw new IOException(String.format("%s: adapter '%s' belongs to save %s, but %s records save %s (adapters "
              + "%s): a stale adapter of an earlier save, or a save in progress; save again, or delete %s to load "
              + "the files as they are", dir.resolve(AdapterFiles.MANIFEST), manifest.adapter(), manifest.save(),
          parent.resolve(AdapterFiles.MANIFEST), above.save(), above.adapters(), AdapterFiles.MANIFEST));
    }
  }

  private static String readUtf8(Path file) throws IOException {
    try {
      return Files.readString(file, StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      throw e;
    } catch (IOException e) {
      throw new IOException(file + ": cannot be read (" + e + ")", e);
    }
  }

  private static String string(JsonObject json, String field, Path file, boolean nullable) throws IOException {
    JsonElement e = json.get(field);
    if (nullable && (e == null || e.isJsonNull())) {
      return null;
    }
    if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
      throw new IOException(String.format("%s: %s is %s, expected a string", file, field, e));
    }
    return e.getAsString();
  }

  private static JsonArray array(JsonObject json, String field, Path file) throws IOException {
    JsonElement e = json.get(field);
    if (e == null || !e.isJsonArray()) {
      throw new IOException(String.format("%s: %s is %s, expected an array", file, field, e));
    }
    return e.getAsJsonArray();
  }

  private static MessageDigest newSha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java platform has SHA-256", e);
    }
  }
}
