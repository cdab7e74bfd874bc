package dev.peft4j.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Crash consistency of saves: a child JVM ({@link SaveLoopChild}) saves two different saves alternately into one
 * directory and is killed ({@code destroyForcibly}, SIGKILL on Linux) at random times, 30 times; after each kill,
 * every adapter in the directory must read as one whole save (all from the same one) or be refused with an
 * IOException. The outcomes are counted and printed; the seed is printed and can be set with
 * {@code -Dpeft4j.crashSeed=…}.
 */
class SaveCrashTest {

  static final int KILLS = 30;
  static final List<String> SAVE_1 = List.of("default", "second", "only1");
  static final List<String> SAVE_2 = List.of("default", "second", "only2");

  @TempDir
  Path tmp;

  /** Starts {@link SaveLoopChild} and waits until it is about to save. */
  static Process startSaveLoop(Path dir, Path one, Path two) throws IOException {
    Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-cp", System.getProperty("java.class.path"),
        SaveLoopChild.class.getName(), dir.toString(), one.toString(), two.toString())
        .redirectErrorStream(true).start();
    BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
    String first = out.readLine();
    if (!"ready".equals(first)) {
      child.destroyForcibly();
      throw new AssertionError("the child failed to start: " + first);
    }
    return child;
  }

  /**
   * Two processes save into one directory at once (their saves are serialised by the OS file lock) for 3 s while
   * this one reads it: every read is one whole save or a refusal, and after both are killed the directory is too.
   */
  @Test
  void twoProcessesSavingIntoOneDirectoryWhileAThirdReads() throws Exception {
    Path one = tmp.resolve("source1");
    Path two = tmp.resolve("source2");
    AdapterFiles.writeAll(one, AdapterSaveTest.save(1, SAVE_1.toArray(String[]::new)));
    AdapterFiles.writeAll(two, AdapterSaveTest.save(2, SAVE_2.toArray(String[]::new)));
    Path dir = tmp.resolve("target");
    AdapterFiles.writeAll(dir, AdapterSaveTest.save(1, SAVE_1.toArray(String[]::new)));
    Map<String, Integer> reads = new TreeMap<>();
    Process a = startSaveLoop(dir, one, two);
    Process b = startSaveLoop(dir, two, one);
    try {
      long end = System.nanoTime() + 3_000_000_000L;
      while (System.nanoTime() < end) {
        for (String name : List.of("default", "second")) {
          int as = AdapterSaveTest.readsAs(dir, name);
          reads.merge(as == -1 ? "refused" : as == -2 ? "absent" : "whole save", 1, Integer::sum);
        }
      }
      assertTrue(a.isAlive() && b.isAlive(), "both children were still saving");
    } finally {
      a.destroyForcibly();
      b.destroyForcibly();
      a.waitFor(30, TimeUnit.SECONDS);
      b.waitFor(30, TimeUnit.SECONDS);
    }
    System.out.println("SaveCrashTest: reads while two processes saved: " + reads);
    assertEquals(null, reads.get("absent"), "an adapter file is never missing: " + reads);
    assertTrue(reads.getOrDefault("whole save", 0) > 0, "some reads saw a whole save: " + reads);
    Set<Integer> saves = new TreeSet<>();
    for (String name : List.of("default", "second", "only1", "only2")) {
      int as = AdapterSaveTest.readsAs(dir, name);
      if (as >= 0) {
        saves.add(as);
        assertTrue((as == 1 ? SAVE_1 : SAVE_2).contains(name), name + " reads as save " + as);
      }
    }
    assertTrue(saves.size() <= 1, "adapters of two saves load after the kills: " + saves);
  }

  @Test
  void everyKilledSaveLeavesOneWholeSaveOrARefusal() throws Exception {
    long seed = Long.getLong("peft4j.crashSeed", System.nanoTime());
    System.out.println("SaveCrashTest seed " + seed + " (-Dpeft4j.crashSeed=" + seed + " repeats it)");
    Random random = new Random(seed);
    Path one = tmp.resolve("source1");
    Path two = tmp.resolve("source2");
    AdapterFiles.writeAll(one, AdapterSaveTest.save(1, SAVE_1.toArray(String[]::new)));
    AdapterFiles.writeAll(two, AdapterSaveTest.save(2, SAVE_2.toArray(String[]::new)));
    Path dir = tmp.resolve("target");
    Files.createDirectories(dir);

    Map<String, Integer> outcomes = new TreeMap<>();
    int leftoverStaging = 0;
    long started = System.nanoTime();
    for (int kill = 0; kill < KILLS; kill++) {
      Process child = startSaveLoop(dir, one, two);
      try {
        // 0–1.2 s into the save loop: a save takes 80–450 ms here, most of it forcing files and directories to disk
        Thread.sleep(random.nextInt(1200));
        assertTrue(child.isAlive(), "the child stopped saving on its own");
      } finally {
        child.destroyForcibly();
        child.waitFor(30, TimeUnit.SECONDS);
      }

      Set<Integer> saves = new TreeSet<>();
      StringBuilder state = new StringBuilder();
      int loaded = 0;
      for (String name : List.of("default", "second", "only1", "only2")) {
        int as = AdapterSaveTest.readsAs(dir, name);
        if (as >= 0) {
          saves.add(as);
          loaded++;
          assertTrue((as == 1 ? SAVE_1 : SAVE_2).contains(name),
              "kill " + kill + ": " + name + " reads as save " + as + ", which has no " + name);
        }
        state.append(name).append('=').append(as == -1 ? "refused" : as == -2 ? "absent" : "save" + as).append(' ');
      }
      assertTrue(saves.size() <= 1, "kill " + kill + ": adapters of two saves load: " + state);
      String outcome = saves.isEmpty() ? "nothing loads (" + state.toString().trim() + ")"
          : loaded == 3 ? "whole save " + saves.iterator().next()
          : "save " + saves.iterator().next() + ", part refused (" + state.toString().trim() + ")";
      outcomes.merge(outcome, 1, Integer::sum);
      try (Stream<Path> entries = Files.list(dir)) {
        leftoverStaging += (int) entries.filter(p -> p.getFileName().toString()
            .startsWith(DirectorySave.STAGING_PREFIX)).count();
      }
    }
    double seconds = (System.nanoTime() - started) / 1e9;
    System.out.printf("SaveCrashTest: %d kills in %.1f s; outcomes %s; staging directories left by kills: %d%n",
        KILLS, seconds, outcomes, leftoverStaging);

    AdapterFiles.writeAll(dir, AdapterSaveTest.save(3, "default", "second"));
    assertEquals(3, AdapterSaveTest.readsAs(dir, "default"), "the next save after the kills completes");
    assertEquals(3, AdapterSaveTest.readsAs(dir, "second"));
    assertEquals(-2, AdapterSaveTest.readsAs(dir, "only1"), "stale adapters removed");
    assertEquals(-2, AdapterSaveTest.readsAs(dir, "only2"));
    try (Stream<Path> entries = Files.list(dir)) {
      assertEquals(Set.of(".peft4j-save.lock", "adapter_config.json", "adapter_model.safetensors",
          "peft4j-manifest.json", "second"), entries.map(p -> p.getFileName().toString())
          .collect(java.util.stream.Collectors.toSet()), "no leftovers after the next save");
    }
  }
}
