package dev.peft4j.io;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.stream.Stream;

/**
 * One save of a whole adapter directory (Hugging Face PEFT's layout: the adapter {@value
 * AdapterFiles#DEFAULT_ADAPTER} in {@code dir}, any other in {@code dir/<name>}), so that a reader sees one whole
 * save or a refusal.
 * <ol>
 *   <li>Serialise: one lock per directory inside the JVM, then an OS lock on {@value #LOCK} for other processes.</li>
 *   <li>Remove what a killed save left: staging directories {@value #STAGING_PREFIX}…, and the fixed temporary names
 *       earlier peft4j versions used.</li>
 *   <li>Write every file into a fresh staging directory inside {@code dir} (one file system, so renames are atomic)
 *       and force it to disk.</li>
 *   <li>Per adapter directory, the subdirectories first and {@code dir} last: move its {@link SaveManifest} into place
 *       first, then the config and the weights (each an atomic rename over the old file), then force the
 *       directory. In between, the manifest and the files disagree and {@link SaveManifest#verify} refuses.</li>
 *   <li>Remove the adapters of the previous save that this one does not hold, if that save's manifest shows peft4j
 *       wrote them (config first, so they stop loading at once), and the staging directory.</li>
 * </ol>
 * POSIX cannot rename a directory over a non-empty one, and Windows cannot rename an open one, so the swap is per
 * file, made safe by the manifest rather than by a single rename.
 */
final class DirectorySave {

  static final String LOCK = ".peft4j-save.lock";
  static final String STAGING_PREFIX = ".peft4j-staging-";
  /** The fixed temporary name of the config that peft4j wrote before manifests existed. */
  private static final String OLD_CONFIG_TEMP = AdapterFiles.CONFIG + ".tmp";

  /** Writes one adapter's two files into the directory it is given. */
  interface AdapterWriter {
    void writeInto(Path adapterDir) throws IOException;
  }

  /** Called after each step of a save, with the step's name; tests throw from it to stop a save there. */
  interface Steps {
    void reached(String step) throws IOException;
  }

  /** A read of an adapter directory. */
  interface Read<T> {
    T run() throws IOException;
  }

  /** Per save root (real path): saves take the write lock, reads in this JVM the read lock. */
  private static final Map<Path, ReentrantReadWriteLock> LOCKS = new ConcurrentHashMap<>();

  private final Steps steps;

  DirectorySave(Steps steps) {
    this.steps = steps;
  }

  /**
   * Saves {@code adapters} (name → writer of its two files) into {@code dir}, replacing the save there.
   *
   * @throws IllegalArgumentException before anything is written, for an invalid adapter name or two names that
   *     differ only in case (one directory on Windows and macOS)
   */
  void save(Path dir, Map<String, AdapterWriter> adapters) throws IOException {
    Map<String, String> byLowerCase = new LinkedHashMap<>();
    for (String name : adapters.keySet()) {
      AdapterFiles.checkAdapterName(name);
      String other = byLowerCase.put(name.toLowerCase(java.util.Locale.ROOT), name);
      if (other != null) {
        throw new IllegalArgumentException(String.format("adapters '%s' and '%s' differ only in case; they would "
            + "share one directory on Windows and macOS", other, name));
      }
    }
    Files.createDirectories(dir);
    Path root = dir.toRealPath();
    Lock local = LOCKS.computeIfAbsent(root, p -> new ReentrantReadWriteLock()).writeLock();
    local.lock();
    try (FileChannel lockFile = FileChannel.open(root.resolve(LOCK), StandardOpenOption.CREATE,
        StandardOpenOption.WRITE);
        FileLock ignored = lockFile.lock()) {
      saveLocked(root, adapters);
    } finally {
      local.unlock();
    }
  }

  /**
   * Runs {@code read} of adapter directory {@code dir} while no save of this JVM runs into {@code dir} or into the
   * directory above it (whose save an adapter in a subdirectory belongs to): readers in this process wait for a save
   * rather than being refused. Saves by other processes are caught by {@link SaveManifest}'s checks.
   */
  static <T> T whileNotSaving(Path dir, Read<T> read) throws IOException {
    List<Lock> held = new ArrayList<>();
    try {
      if (Files.isDirectory(dir)) {
        Path real = dir.toRealPath();
        for (Path root : real.getParent() == null ? List.of(real) : List.of(real.getParent(), real)) {
          ReentrantReadWriteLock lock = LOCKS.get(root); // none: no save into it from this JVM yet
          if (lock != null) {
            lock.readLock().lock();
            held.add(lock.readLock());
          }
        }
      }
      return read.run();
    } finally {
      held.forEach(Lock::unlock);
    }
  }

  private void saveLocked(Path root, Map<String, AdapterWriter> adapters) throws IOException {
    removeLeftovers(root, adapters.keySet());
    SaveManifest previous;
    try {
      previous = SaveManifest.readIn(root);
    } catch (IOException unreadable) {
      previous = null; // then nothing is known to be ours, and nothing is removed
    }
    String id = UUID.randomUUID().toString();
    List<String> names = new ArrayList<>(adapters.keySet());
    names.sort(Comparator.comparing((String n) -> n.equals(AdapterFiles.DEFAULT_ADAPTER)) // the root last
        .thenComparing(Comparator.naturalOrder()));
    if (!names.contains(AdapterFiles.DEFAULT_ADAPTER)) {
      names.add(null); // the root still gets a manifest: it records the save, and the root holds no adapter
    }
    for (String name : adapters.keySet()) {
      Path target = root.resolve(relative(name));
      if (Files.exists(target) && !Files.isDirectory(target)) {
        throw new IOException(String.format("%s: adapter '%s' is saved in a directory of that name, but a file is "
            + "there; nothing was written", target, name));
      }
    }
    Path staging = root.resolve(STAGING_PREFIX + id);
    try {
      Files.createDirectory(staging);
      Map<String, SaveManifest> manifests = new LinkedHashMap<>();
      for (String name : names) {
        Path staged = staging.resolve(relative(name));
        Files.createDirectories(staged);
        Map<String, SaveManifest.FileDigest> files = new LinkedHashMap<>();
        if (name != null) {
          adapters.get(name).writeInto(staged);
          for (String file : List.of(AdapterFiles.CONFIG, AdapterFiles.WEIGHTS)) {
            force(staged.resolve(file));
            files.put(file, SaveManifest.FileDigest.of(staged.resolve(file)));
          }
        }
        SaveManifest manifest = new SaveManifest(id, name, adapters.keySet().stream().sorted().toList(), files);
        Files.writeString(staged.resolve(AdapterFiles.MANIFEST), manifest.toJson());
        force(staged.resolve(AdapterFiles.MANIFEST));
        manifests.put(name, manifest);
      }
      // the staging directories themselves need no sync: only the renames out of them must last, and each target
      // directory is synced after them
      steps.reached("staged");

      for (String name : names) {
        Path staged = staging.resolve(relative(name));
        Path target = root.resolve(relative(name));
        Files.createDirectories(target);
        List<String> order = new ArrayList<>(List.of(AdapterFiles.MANIFEST));
        order.addAll(manifests.get(name).files().keySet().stream().sorted().toList());
        for (String file : order) {
          Files.move(staged.resolve(file), target.resolve(file), StandardCopyOption.ATOMIC_MOVE,
              StandardCopyOption.REPLACE_EXISTING);
          if (file.equals(AdapterFiles.MANIFEST)) {
            forceDirectory(target); // the manifest's rename reaches the disk before the files' on any file system
          }
          steps.reached("moved " + relative(name) + file);
        }
        forceDirectory(target);
      }

      for (String stale : staleAdapters(root, previous)) {
        if (!adapters.containsKey(stale)) {
          removeStale(root, stale, previous);
          steps.reached("removed " + stale);
        }
      }
    } finally {
      try {
        deleteStaging(staging);
      } catch (IOException ignored) {
        // harmless: the next save removes it, and readers never look into it
      }
    }
    forceDirectory(root);
  }

  /** {@code ""} for the default adapter (and the root of a save without one), {@code "<name>/"} otherwise. */
  private static String relative(String name) {
    return name == null || name.equals(AdapterFiles.DEFAULT_ADAPTER) ? "" : name + "/";
  }

  /**
   * The adapters earlier peft4j saves left in {@code root}: those of the previous save's manifest, and every
   * subdirectory whose own manifest names it as its adapter (an interrupted save can leave one its root manifest
   * no longer lists).
   */
  private static Set<String> staleAdapters(Path root, SaveManifest previous) throws IOException {
    Set<String> found = new java.util.TreeSet<>();
    if (previous != null) {
      found.addAll(previous.adapters());
    }
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(root, Files::isDirectory)) {
      for (Path sub : entries) {
        String name = sub.getFileName().toString();
        if (!name.startsWith(STAGING_PREFIX) && Files.isRegularFile(sub.resolve(AdapterFiles.MANIFEST))) {
          found.add(name);
        }
      }
    }
    return found;
  }

  /**
   * Removes adapter {@code name} left by an earlier save (the previous root manifest {@code previous} describes
   * the default adapter's files, a subdirectory's own manifest its files): only files whose size and SHA-256 are
   * those recorded (so peft4j wrote them and nobody changed them since), the config first (the adapter no longer
   * loads), then the weights, the subdirectory's manifest, and the subdirectory if nothing else is in it.
   */
  private static void removeStale(Path root, String name, SaveManifest previous) throws IOException {
    Path dir = root.resolve(relative(name));
    SaveManifest manifest;
    if (name.equals(AdapterFiles.DEFAULT_ADAPTER)) {
      manifest = previous; // the root's manifest has been replaced by now; the previous one describes its files
      if (manifest == null || !name.equals(manifest.adapter())) {
        return;
      }
    } else {
      try {
        manifest = SaveManifest.readIn(dir);
      } catch (IOException unreadable) {
        return;
      }
      if (manifest == null || !name.equals(manifest.adapter())) {
        return; // not an adapter directory peft4j wrote: leave it
      }
    }
    boolean allRemoved = true;
    for (String file : List.of(AdapterFiles.CONFIG, AdapterFiles.WEIGHTS)) {
      Path data = dir.resolve(file);
      SaveManifest.FileDigest recorded = manifest.files().get(file);
      if (recorded != null && Files.isRegularFile(data) && recorded.equals(SaveManifest.FileDigest.of(data))) {
        Files.delete(data);
      } else if (Files.exists(data)) {
        allRemoved = false; // not the file the save wrote; its manifest stays and keeps the directory unloadable
      }
    }
    if (allRemoved && !dir.equals(root)) {
      Files.deleteIfExists(dir.resolve(AdapterFiles.MANIFEST));
      try (Stream<Path> rest = Files.list(dir)) {
        if (rest.findAny().isEmpty()) {
          Files.deleteIfExists(dir);
        }
      }
    }
  }

  /** What a killed save leaves: its staging directory in the root, and temporary files of older peft4j versions. */
  private static void removeLeftovers(Path root, Set<String> adapters) throws IOException {
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(root, STAGING_PREFIX + "*")) {
      for (Path staging : entries) {
        deleteStaging(staging);
      }
    }
    for (String name : adapters) {
      Path dir = root.resolve(relative(name));
      if (!Files.isDirectory(dir)) {
        continue;
      }
      Files.deleteIfExists(dir.resolve(OLD_CONFIG_TEMP));
      // Safetensors.write's temporary name: "." + file + "." + random hex + ".tmp"
      try (DirectoryStream<Path> temps = Files.newDirectoryStream(dir, "." + AdapterFiles.WEIGHTS + ".*.tmp")) {
        for (Path temp : temps) {
          if (temp.getFileName().toString().matches("\\." + AdapterFiles.WEIGHTS.replace(".", "\\.")
              + "\\.[0-9a-f]{1,16}\\.tmp")) {
            Files.deleteIfExists(temp);
          }
        }
      }
    }
  }

  /** Deletes a staging directory: only ever created by a save, under the lock, so everything in it is ours. */
  private static void deleteStaging(Path staging) throws IOException {
    if (!Files.isDirectory(staging, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(staging)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  private static void force(Path file) throws IOException {
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
      channel.force(true);
    }
  }

  /**
   * Forces a directory's entries (the renames into it) to disk where the OS allows: Linux and macOS open a directory
   * for reading and sync it; Windows refuses to open one, and its renames are journaled by NTFS.
   */
  private static void forceDirectory(Path dir) {
    try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
      channel.force(true);
    } catch (IOException notSupported) {
      // nothing to do: the OS does not let a directory be synced this way
    }
  }
}
