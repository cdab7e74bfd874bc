package dev.peft4j.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Whole-directory saves ({@link AdapterFiles#writeAll}): a save stopped after any of its steps leaves a directory
 * whose every adapter reads as the previous save, as the new one, or is refused, never a mix; concurrent saves and
 * reads; leftovers and stale adapters; adapter names.
 */
class AdapterSaveTest {

  @TempDir
  Path tmp;

  /**
   * Save {@code id}: each adapter's config records the save id and the adapter's name, and its tensor holds
   * {@code id·100 + k} (k: the adapter's position in {@code names}), so a reader can tell which save each file came
   * from.
   */
  static Map<String, AdapterFiles.Contents> save(int id, String... names) {
    Map<String, AdapterFiles.Contents> adapters = new LinkedHashMap<>();
    for (int k = 0; k < names.length; k++) {
      Map<String, Object> config = new TreeMap<>();
      config.put("peft_type", "LORA");
      config.put("save_id", id);
      config.put("adapter", names[k]);
      INDArray a = Nd4j.valueArrayOf(new long[] {2, 3}, (float) (id * 100 + k), DataType.FLOAT);
      adapters.put(names[k], new AdapterFiles.Contents(config, Map.of("fc.lora_A.weight", a)));
    }
    return adapters;
  }

  /** The directory adapter {@code name} has in a save into {@code dir}. */
  static Path adapterDir(Path dir, String name) {
    return name.equals(AdapterFiles.DEFAULT_ADAPTER) ? dir : dir.resolve(name);
  }

  /**
   * Which save adapter {@code name} in {@code dir} reads as: its save id, or -1 if the read is refused with an
   * IOException, or -2 if it has no config at all (never saved, or removed). Fails if the config and the tensor
   * come from two different saves.
   */
  static int readsAs(Path dir, String name) {
    Path d = adapterDir(dir, name);
    if (!Files.exists(d.resolve(AdapterFiles.CONFIG)) && !Files.exists(d.resolve(AdapterFiles.WEIGHTS))) {
      return -2;
    }
    AdapterFiles.Read read;
    try {
      read = AdapterFiles.read(d);
    } catch (IOException refused) {
      return -1;
    }
    int id = read.config().get("save_id").getAsInt();
    assertEquals(name, read.config().get("adapter").getAsString(), d + ": another adapter's config");
    float value = read.tensors().get("fc.lora_A.weight").getFloat(0);
    assertEquals(id, (int) value / 100, d + ": config of save " + id + " with the tensor of save " + (int) value / 100);
    return id;
  }

  private static List<String> steps(Path dir, Map<String, AdapterFiles.Contents> adapters) throws IOException {
    List<String> steps = new ArrayList<>();
    AdapterFiles.writeAll(dir, adapters, steps::add);
    return steps;
  }

  private static Set<String> leftovers(Path dir) throws IOException {
    try (Stream<Path> all = Files.walk(dir)) {
      return all.map(p -> dir.relativize(p).toString())
          .filter(n -> n.contains(DirectorySave.STAGING_PREFIX) || n.endsWith(".tmp"))
          .collect(java.util.stream.Collectors.toCollection(TreeSet::new));
    }
  }

  @Test
  void aSaveRoundTripsEveryAdapterAndLeavesOnlyItsFiles() throws IOException {
    Path dir = tmp.resolve("a");
    AdapterFiles.writeAll(dir, save(1, "default", "second"));
    assertEquals(1, readsAs(dir, "default"));
    assertEquals(1, readsAs(dir, "second"));
    try (Stream<Path> all = Files.walk(dir)) {
      assertEquals(new TreeSet<>(List.of("", ".peft4j-save.lock", "adapter_config.json", "adapter_model.safetensors",
              "peft4j-manifest.json", "second", "second/adapter_config.json", "second/adapter_model.safetensors",
              "second/peft4j-manifest.json")),
          all.map(p -> dir.relativize(p).toString()).collect(java.util.stream.Collectors.toCollection(TreeSet::new)));
    }
    SaveManifest root = SaveManifest.readIn(dir);
    SaveManifest second = SaveManifest.readIn(dir.resolve("second"));
    assertEquals(root.save(), second.save(), "one save id in every directory");
    assertEquals(List.of("default", "second"), root.adapters());
    assertEquals(Files.size(dir.resolve(AdapterFiles.WEIGHTS)), root.files().get(AdapterFiles.WEIGHTS).size());
  }

  /**
   * Save 2 (adapters default, second, third) over save 1 (default, second, gone) stopped after each of its steps:
   * every adapter reads as save 1, save 2, or is refused, all that read come from one save, and the next save
   * repairs the directory.
   */
  @Test
  void aSaveStoppedAfterAnyStepLeavesTheOldSaveTheNewOneOrARefusal() throws IOException {
    List<String> all = steps(tmp.resolve("probe"), save(2, "default", "second", "third"));
    Files.createDirectories(tmp.resolve("record"));
    AdapterFiles.writeAll(tmp.resolve("record"), save(1, "default", "second", "gone"));
    all = steps(tmp.resolve("record"), save(2, "default", "second", "third"));
    // staged, 3 moves in each of third/, second/ and the root, the removal of gone/
    assertEquals(11, all.size(), all.toString());
    Map<String, Integer> outcomes = new TreeMap<>();
    for (int stop = 0; stop < all.size(); stop++) {
      Path dir = tmp.resolve("stop" + stop);
      AdapterFiles.writeAll(dir, save(1, "default", "second", "gone"));
      String at = all.get(stop);
      IOException e = assertThrows(IOException.class, () -> AdapterFiles.writeAll(dir,
          save(2, "default", "second", "third"), step -> {
            if (step.equals(at)) {
              throw new IOException("injected failure after " + step);
            }
          }));
      assertTrue(e.getMessage().contains("injected"), e.getMessage());
      assertEquals(Set.of(), leftovers(dir), "the staging directory is removed when a save fails");

      Set<Integer> saves = new TreeSet<>();
      StringBuilder state = new StringBuilder();
      for (String name : List.of("default", "second", "third", "gone")) {
        int as = readsAs(dir, name);
        state.append(name).append('=').append(as == -1 ? "refused" : as == -2 ? "absent" : "save" + as).append(' ');
        if (as >= 0) {
          saves.add(as);
          boolean inThatSave = as == 1 ? !name.equals("third") : !name.equals("gone");
          assertTrue(inThatSave, "stopped after '" + at + "': " + name + " reads as save " + as + ", which has no "
              + name);
        }
      }
      assertTrue(saves.size() <= 1, "stopped after '" + at + "': adapters of two saves load: " + state);
      System.out.println("stopped after '" + at + "': " + state);
      outcomes.merge(state.toString().trim(), 1, Integer::sum);
      if (stop == 0) {
        assertEquals("default=save1 second=save1 third=absent gone=save1", state.toString().trim(),
            "nothing is moved before the staged files are on disk");
      }

      AdapterFiles.writeAll(dir, save(3, "default", "second", "third"));
      for (String name : List.of("default", "second", "third")) {
        assertEquals(3, readsAs(dir, name), "the next save repairs " + name + " after a stop at '" + at + "'");
      }
      assertEquals(-2, readsAs(dir, "gone"), "the next save removes the stale adapter");
      assertFalse(Files.exists(dir.resolve("gone")));
    }
    System.out.println("outcomes: " + outcomes);
    assertTrue(outcomes.containsKey("default=save2 second=save2 third=save2 gone=refused")
            || outcomes.containsKey("default=save2 second=save2 third=save2 gone=absent"),
        "a stop before the stale adapter's removal leaves it refused: " + outcomes);
  }

  @Test
  void aFailingWriterLeavesTheOldSave() throws IOException {
    Path dir = tmp.resolve("a");
    AdapterFiles.writeAll(dir, save(1, "default", "second"));
    Map<String, AdapterFiles.Contents> bad = save(2, "default", "second");
    bad.put("second", new AdapterFiles.Contents(bad.get("second").config(),
        Map.of("x", Nd4j.create(DataType.UTF8, 1)))); // safetensors has no string type
    assertThrows(IllegalArgumentException.class, () -> AdapterFiles.writeAll(dir, bad));
    assertEquals(1, readsAs(dir, "default"));
    assertEquals(1, readsAs(dir, "second"));
    assertEquals(Set.of(), leftovers(dir));
  }

  @Test
  void aFileEditedAfterTheSaveIsRefusedNamingItUntilTheManifestIsDeleted() throws IOException {
    Path dir = tmp.resolve("a");
    AdapterFiles.writeAll(dir, save(1, "default"));
    Path config = dir.resolve(AdapterFiles.CONFIG);
    Files.writeString(config, Files.readString(config).replace("\"save_id\": 1", "\"save_id\": 1 "));
    IOException e = assertThrows(IOException.class, () -> AdapterFiles.read(dir));
    assertTrue(e.getMessage().startsWith(config + ": ") && e.getMessage().contains("records")
        && e.getMessage().contains("delete " + AdapterFiles.MANIFEST), e.getMessage());
    Files.delete(dir.resolve(AdapterFiles.MANIFEST));
    assertEquals(1, readsAs(dir, "default"), "without the manifest the files are read as they are");
  }

  @Test
  void aSubdirectoryOfAnotherSaveIsRefused() throws IOException {
    Path dir = tmp.resolve("a");
    AdapterFiles.writeAll(dir, save(1, "default", "second"));
    Path other = tmp.resolve("b");
    AdapterFiles.writeAll(other, save(2, "default", "second"));
    for (String f : List.of(AdapterFiles.CONFIG, AdapterFiles.WEIGHTS, AdapterFiles.MANIFEST)) {
      Files.copy(other.resolve("second").resolve(f), dir.resolve("second").resolve(f),
          java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }
    IOException e = assertThrows(IOException.class, () -> AdapterFiles.read(dir.resolve("second")));
    assertTrue(e.getMessage().contains("adapter 'second' belongs to save " + SaveManifest.readIn(other).save()),
        e.getMessage());
    assertEquals(2, readsAs(other, "second"));
  }

  @Test
  void aSaveWithoutDefaultAdapterLeavesNothingLoadableAtTheRoot() throws IOException {
    Path dir = tmp.resolve("a");
    AdapterFiles.writeAll(dir, save(1, "default", "second"));
    AdapterFiles.writeAll(dir, save(2, "second"));
    assertEquals(-2, readsAs(dir, "default"), "the previous default adapter is removed");
    assertEquals(2, readsAs(dir, "second"));
    Files.copy(dir.resolve("second").resolve(AdapterFiles.CONFIG), dir.resolve(AdapterFiles.CONFIG));
    Files.copy(dir.resolve("second").resolve(AdapterFiles.WEIGHTS), dir.resolve(AdapterFiles.WEIGHTS));
    IOException e = assertThrows(IOException.class, () -> AdapterFiles.read(dir));
    assertTrue(e.getMessage().contains("has no adapter at this level") && e.getMessage().contains("[second]"),
        e.getMessage());
  }

  /** Hugging Face PEFT's directories have no manifest: they load, and a save never deletes what it did not write. */
  @Test
  void filesPeft4jDidNotWriteAreNeverDeleted() throws IOException {
    Path dir = tmp.resolve("a");
    AdapterFiles.writeAll(tmp.resolve("source"), save(7, "hf"));
    Files.createDirectories(dir.resolve("hf"));
    for (String f : List.of(AdapterFiles.CONFIG, AdapterFiles.WEIGHTS)) { // as Hugging Face PEFT writes it
      Files.copy(tmp.resolve("source").resolve("hf").resolve(f), dir.resolve("hf").resolve(f));
    }
    assertEquals(7, readsAs(dir, "hf"), "no manifest: read as it is");

    AdapterFiles.writeAll(dir, save(1, "default", "gone", "edited"));
    Files.writeString(dir.resolve("gone").resolve("notes.txt"), "mine");
    Path edited = dir.resolve("edited").resolve(AdapterFiles.CONFIG);
    Files.writeString(edited, Files.readString(edited) + " ");
    AdapterFiles.writeAll(dir, save(2, "default"));

    assertEquals(7, readsAs(dir, "hf"), "an adapter directory without a manifest is not peft4j's");
    assertEquals(List.of("notes.txt"), names(dir.resolve("gone")), "the user's file stays, peft4j's are gone");
    assertTrue(Files.exists(edited), "a file changed since the save is not the one peft4j wrote");
    assertFalse(Files.exists(dir.resolve("edited").resolve(AdapterFiles.WEIGHTS)));
    assertEquals(-1, readsAs(dir, "edited"), "and its manifest stays, so it does not load");
  }

  private static List<String> names(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void leftoversOfKilledSavesAreRemovedAndOthersKept() throws IOException {
    Path dir = tmp.resolve("a");
    AdapterFiles.writeAll(dir, save(1, "default", "second"));
    Files.createDirectories(dir.resolve(DirectorySave.STAGING_PREFIX + "dead/second"));
    Files.writeString(dir.resolve(DirectorySave.STAGING_PREFIX + "dead/second/adapter_config.json"), "{}");
    Files.writeString(dir.resolve("adapter_config.json.tmp"), "{"); // earlier peft4j versions' fixed name
    Files.writeString(dir.resolve("second/.adapter_model.safetensors.1f2e3d4c5b6a7988.tmp"), "");
    Files.writeString(dir.resolve(".mine.tmp"), "not peft4j's");
    AdapterFiles.writeAll(dir, save(2, "default", "second"));
    assertEquals(Set.of(".mine.tmp"), leftovers(dir));
    assertEquals(2, readsAs(dir, "second"));
  }

  /**
   * 4 threads save 6 times each into one directory while 2 threads read it: every read is one whole save (readers
   * wait for saves of their JVM; other processes' reads are covered by {@link SaveCrashTest} and the stopped saves
   * above), and the final directory is one whole save.
   */
  @Test
  void concurrentSavesAreSerialisedAndReadersNeverSeeAMix() throws Exception {
    Path dir = tmp.resolve("a");
    AdapterFiles.writeAll(dir, save(0, "default", "second"));
    ExecutorService pool = Executors.newFixedThreadPool(6);
    AtomicBoolean saving = new AtomicBoolean(true);
    Map<String, AtomicInteger> reads = new ConcurrentHashMap<>();
    CountDownLatch start = new CountDownLatch(1);
    try {
      List<Future<?>> savers = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        int thread = t;
        savers.add(pool.submit(() -> {
          start.await();
          for (int i = 1; i <= 6; i++) {
            AdapterFiles.writeAll(dir, save(thread * 10 + i, "default", "second"));
          }
          return null;
        }));
      }
      List<Future<?>> readers = new ArrayList<>();
      for (int r = 0; r < 2; r++) {
        String name = r == 0 ? "default" : "second";
        readers.add(pool.submit(() -> {
          start.await();
          while (saving.get()) {
            int as = readsAs(dir, name);
            reads.computeIfAbsent(as == -1 ? "refused" : as == -2 ? "absent" : "whole save",
                k -> new AtomicInteger()).incrementAndGet();
          }
          return null;
        }));
      }
      start.countDown();
      for (Future<?> f : savers) {
        f.get();
      }
      saving.set(false);
      for (Future<?> f : readers) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }
    System.out.println("concurrent reads during 24 saves: " + reads);
    assertNotNull(reads.get("whole save"));
    assertEquals(Set.of("whole save"), reads.keySet(), "readers in this JVM wait for a save, never refused");
    int last = readsAs(dir, "default");
    assertTrue(last > 0, "the final directory loads");
    assertEquals(last, readsAs(dir, "second"), "both adapters from the last save");
    assertEquals(Set.of(), leftovers(dir));
  }

  /** A save by another process between a read's first check and its end: the second check refuses the read. */
  @Test
  void aReadDuringASaveIsRefused() throws IOException {
    Path dir = tmp.resolve("a");
    AdapterFiles.writeAll(dir, save(1, "default"));
    SaveManifest before = SaveManifest.verify(dir);
    AdapterFiles.writeAll(dir, save(2, "default"));
    IOException e = assertThrows(IOException.class, () -> SaveManifest.requireUnchanged(dir, before));
    assertTrue(e.getMessage().contains("ran while it was being read"), e.getMessage());
    SaveManifest.requireUnchanged(dir, SaveManifest.verify(dir)); // no save in between: accepted
  }

  @Test
  void invalidAdapterNamesAreRefusedBeforeAnythingIsWritten() {
    String[][] cases = {
        {"", "is blank"}, {"  ", "is blank"}, {".", "itself or its parent"}, {"..", "itself or its parent"},
        {"a/b", "path separator"}, {"..\\x", "path separator"}, {"a\u0000b", "a\\u0000b\" contains a control"},
        {"tab\there", "tab\\u0009here\" contains a control"}, {"x".repeat(129), "129 characters"},
        {"adapter_config.json", "file peft4j writes"}, {".peft4j-staging-x", "file peft4j writes"},
        {"peft4j-manifest.json", "file peft4j writes"}};
    for (String[] c : cases) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> AdapterFiles.checkAdapterName(c[0]), c[0]);
      assertTrue(e.getMessage().contains(c[1]), e.getMessage());
    }
    assertThrows(IllegalArgumentException.class, () -> AdapterFiles.checkAdapterName(null));
    for (String ok : List.of("default", "second", "a.b", "-x", "ünï code", "x".repeat(128), "...")) {
      AdapterFiles.checkAdapterName(ok);
    }
    Path dir = tmp.resolve("names");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> AdapterFiles.writeAll(dir, save(1, "default", "..")));
    assertTrue(e.getMessage().contains("\"..\""), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> AdapterFiles.writeAll(dir, save(1, "Second", "second")));
    assertTrue(e.getMessage().contains("differ only in case"), e.getMessage());
    assertFalse(Files.exists(dir), "nothing written");
  }

  @Test
  void aFileWhereAnAdapterDirectoryGoesIsRefusedBeforeAnythingIsWritten() throws IOException {
    Path dir = tmp.resolve("a");
    AdapterFiles.writeAll(dir, save(1, "default"));
    Files.writeString(dir.resolve("second"), "a file");
    IOException e = assertThrows(IOException.class, () -> AdapterFiles.writeAll(dir, save(2, "default", "second")));
    assertTrue(e.getMessage().contains("adapter 'second' is saved in a directory of that name, but a file is there"),
        e.getMessage());
    assertEquals(1, readsAs(dir, "default"));
    assertEquals(Set.of(), leftovers(dir));
  }

  @Test
  void aManifestOfAnotherFormatIsRefusedNamingIt() throws IOException {
    Path dir = tmp.resolve("a");
    AdapterFiles.writeAll(dir, save(1, "default"));
    Path manifest = dir.resolve(AdapterFiles.MANIFEST);
    Files.writeString(manifest, Files.readString(manifest).replace("\"peft4j_manifest\": 1", "\"peft4j_manifest\": 2"));
    IOException e = assertThrows(IOException.class, () -> AdapterFiles.read(dir));
    assertTrue(e.getMessage().startsWith(manifest + ": peft4j_manifest is 2, expected 1"), e.getMessage());
    Files.writeString(manifest, "[");
    e = assertThrows(IOException.class, () -> AdapterFiles.read(dir));
    assertTrue(e.getMessage().startsWith(manifest + ": not valid JSON"), e.getMessage());
    Files.write(manifest, new byte[(1 << 20) + 1]);
    e = assertThrows(IOException.class, () -> AdapterFiles.read(dir));
    assertEquals(manifest + ": 1048577 bytes, more than the 1048576 a peft4j manifest can have", e.getMessage());
    Files.delete(manifest);
    Files.createDirectory(manifest);
    e = assertThrows(IOException.class, () -> AdapterFiles.read(dir));
    assertTrue(e.getMessage().startsWith(manifest + ": cannot be read"), e.getMessage());
  }
}
