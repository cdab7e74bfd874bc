package dev.peft4j.spark;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.PeftModel;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * How an executor gets its model: a base checkpoint every executor can reach, and the {@link ModelBuilder} that turns
 * the checkpoint into the {@link PeftModel} to train or score (load the graph, add a head, apply the adapter config).
 * Executors build it once per JVM ({@link ExecutorModels}) and keep it for every later task of the same source.
 *
 * <pre>{@code
 * ModelSource source = ModelSource.path("/shared/models/all-MiniLM-L6-v2", dir ->
 *     Peft.lora(16).alpha(32).target("query", "value")
 *         .apply(Heads.sequenceClassification(HfModels.load(dir).sameDiff(), 384, 2, Heads.Pooling.MEAN, 7)));
 * }</pre>
 *
 * <p>Two ways to reach the checkpoint:
 * <ul>
 *   <li>{@link #path}: a directory every executor can read (a shared or distributed file system mounted at the same
 *       place, or a copy at the same path on every node). Nothing is shipped; an executor that cannot read it fails
 *       naming the path, itself and its host.</li>
 *   <li>{@link #files}: the checkpoint directory's files read on the driver and carried inside this object (up to
 *       {@value #MAX_CARRIED_BYTES} bytes): for small models and tests. Ship it once per executor by broadcasting the
 *       source (the trainers do), not inside every task's closure; the executor writes the files to a temporary
 *       directory once and builds from there.</li>
 * </ul>
 *
 * <p>The builder runs on every executor and must build the same graph and the same trainable parameters there as on
 * the driver (deterministic heads: give them a seed). It is serialised with the source: a lambda works when the
 * target interface is {@link ModelBuilder} (which is {@link Serializable}) and captures only serialisable values.
 *
 * <p>A source carries the peft4j version of the JVM that made it; an executor with another peft4j version refuses it,
 * naming both, rather than failing later in a way that hides the cause.
 */
public final class ModelSource implements Serializable {

  private static final long serialVersionUID = 1L;

  /** The largest checkpoint {@link #files} carries: beyond it a shared path is the better way. */
  public static final long MAX_CARRIED_BYTES = 512L << 20;

  /** Builds the model on a JVM from the checkpoint directory; serialised with the source to every executor. */
  @FunctionalInterface
  public interface ModelBuilder extends Serializable {
    /**
     * @param checkpoint the checkpoint directory on this JVM
     * @throws IOException if the checkpoint cannot be read
     */
    PeftModel build(Path checkpoint) throws IOException;
  }

  private final String id;
  private final String path;                  // null when the files are carried
  private final LinkedHashMap<String, byte[]> files; // file name → contents; null with a path
  private final ModelBuilder builder;
  private final String driverVersion;

  ModelSource(String path, LinkedHashMap<String, byte[]> files, ModelBuilder builder, String driverVersion) {
    checkArgument(builder != null, "the model builder must not be null");
    this.id = UUID.randomUUID().toString();
    this.path = path;
    this.files = files;
    this.builder = builder;
    this.driverVersion = driverVersion;
  }

  /**
   * A checkpoint directory every executor reads at {@code path}. The path is not checked here (the driver need not
   * see it); executors check it before building.
   *
   * @throws IllegalArgumentException if {@code path} is blank or {@code builder} is null
   */
  public static ModelSource path(String path, ModelBuilder builder) {
    checkArgument(path != null && !path.isBlank(), "the checkpoint path must not be blank");
    return new ModelSource(path, null, builder, localVersion());
  }

  /**
   * The regular files of the checkpoint directory {@code dir} (not its subdirectories), read now and carried by this
   * source.
   *
   * @throws IOException naming {@code dir}, if it is not a readable directory or its files cannot be read
   * @throws IllegalArgumentException naming the size, if the files together exceed {@value #MAX_CARRIED_BYTES} bytes
   */
  public static ModelSource files(Path dir, ModelBuilder builder) throws IOException {
    checkArgument(dir != null, "the checkpoint directory must not be null");
    if (!Files.isDirectory(dir)) {
      throw new IOException(dir + ": not a directory (the checkpoint directory whose files to carry)");
    }
    LinkedHashMap<String, byte[]> files = new LinkedHashMap<>();
    long total = 0;
    try (Stream<Path> list = Files.list(dir)) {
      for (Path f : list.filter(Files::isRegularFile).sorted().toList()) {
        total += Files.size(f);
        checkArgument(total <= MAX_CARRIED_BYTES, "%s holds more than %s bytes: too large to carry in the source; use "
            + "ModelSource.path with a directory every executor can read", dir, MAX_CARRIED_BYTES);
        files.put(f.getFileName().toString(), Files.readAllBytes(f));
      }
    }
    if (files.isEmpty()) {
      throw new IOException(dir + ": no files in the checkpoint directory");
    }
    return new ModelSource(null, files, builder, localVersion());
  }

  /** Identifies this source in the executors' caches: each source made is a new one, copies share it. */
  String id() {
    return id;
  }

  /** The peft4j version of the JVM that made this source. */
  String driverVersion() {
    return driverVersion;
  }

  /** Bytes carried with the source (0 for a path): what broadcasting it ships to each executor. */
  public long carriedBytes() {
    return files == null ? 0 : files.values().stream().mapToLong(b -> b.length).sum();
  }

  /**
   * Builds the model on this JVM, uncached: the driver's own copy, which a trainer updates. Executors go through
   * {@link ExecutorModels}, which checks the version and the path first.
   *
   * @throws IOException naming the checkpoint, if it cannot be read
   */
  public PeftModel load() throws IOException {
    return builder.build(checkpoint());
  }

  /** The checkpoint directory on this JVM: the path, or a temporary directory holding the carried files. */
  Path checkpoint() throws IOException {
    if (path != null) {
      return Path.of(path);
    }
    Path dir = Files.createTempDirectory("peft4j-spark-model-");
    dir.toFile().deleteOnExit();
    for (Map.Entry<String, byte[]> f : files.entrySet()) {
      Path file = dir.resolve(f.getKey());
      Files.write(file, f.getValue());
      file.toFile().deleteOnExit();
    }
    return dir;
  }

  /** The shared path, or null when the files are carried. */
  String path() {
    return path;
  }

  ModelBuilder builder() {
    return builder;
  }

  /** The peft4j version on this JVM's classpath (peft-core's {@code dev/peft4j/versions.properties}). */
  static String localVersion() {
    try (InputStream in = ModelSource.class.getClassLoader().getResourceAsStream("dev/peft4j/versions.properties")) {
      if (in == null) {
        throw new IllegalStateException("dev/peft4j/versions.properties is missing from peft-core's jar on this JVM");
      }
      Properties p = new Properties();
      p.load(in);
      return p.getProperty("peft4j.version");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Override
  public String toString() {
    return path != null ? "ModelSource(path " + path + ")"
        : "ModelSource(" + List.copyOf(files.keySet()) + ", " + carriedBytes() + " bytes carried)";
  }
}
