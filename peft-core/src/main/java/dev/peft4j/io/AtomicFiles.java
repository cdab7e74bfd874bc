package dev.peft4j.io;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Replaces one file atomically, as {@link Safetensors#write} does: the content goes into a temporary file beside the
 * target, which is flushed to disk and then renamed over it. If anything fails, the temporary file is deleted and an
 * existing target is left as it was (a new one is not created). The directory is not synced, so after a crash the
 * rename itself may be lost: the old file would then be found whole.
 */
public final class AtomicFiles {

  private AtomicFiles() {}

  /** Writes a file's content into an open channel. */
  @FunctionalInterface
  public interface Content {
    void writeTo(FileChannel channel) throws IOException;
  }

  /**
   * Writes {@code content} to {@code file} atomically.
   *
   * @throws IllegalArgumentException if {@code file} has no file name
   * @throws IOException              if writing or renaming fails, or the directory does not exist
   */
  public static void write(Path file, Content content) throws IOException {
    checkNotNull(file, "file");
    checkNotNull(content, "content");
    checkArgument(file.getFileName() != null, "%s is not a file name", file);
    Path target = file.toAbsolutePath();
    // beside the target, so that the rename stays within one file system; CREATE_NEW gives it the permissions any
    // new file gets (Files.createTempFile would make it owner-only, and the target would keep that)
    Path temporary = target.resolveSibling(
        "." + target.getFileName() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
    try {
      try (FileChannel channel = FileChannel.open(temporary, StandardOpenOption.CREATE_NEW,
          StandardOpenOption.WRITE)) {
        content.writeTo(channel);
        channel.force(true);
      }
      Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (Throwable e) {
      try {
        Files.deleteIfExists(temporary);
      } catch (IOException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
  }
}
