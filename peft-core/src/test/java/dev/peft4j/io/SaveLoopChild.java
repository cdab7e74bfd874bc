package dev.peft4j.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The child JVM of {@link SaveCrashTest}: saves two prepared saves alternately into one directory until it is
 * killed. It copies the prepared files through {@link DirectorySave}, the code path of {@link AdapterFiles#writeAll}
 * after the tensors are serialised, so it needs no ND4J backend and starts in a fraction of a second.
 *
 * <p>Arguments: the target directory, then the directories of the two prepared saves (each written by
 * {@link AdapterFiles#writeAll}; their manifests name their adapters).
 */
final class SaveLoopChild {

  private SaveLoopChild() {}

  public static void main(String[] args) throws IOException {
    Path dir = Path.of(args[0]);
    List<Map<String, DirectorySave.AdapterWriter>> saves = List.of(writers(Path.of(args[1])),
        writers(Path.of(args[2])));
    System.out.println("ready");
    System.out.flush();
    DirectorySave save = new DirectorySave(step -> { });
    for (long i = 0; ; i++) {
      save.save(dir, saves.get((int) (i % 2)));
    }
  }

  private static Map<String, DirectorySave.AdapterWriter> writers(Path source) throws IOException {
    Map<String, DirectorySave.AdapterWriter> writers = new LinkedHashMap<>();
    for (String name : SaveManifest.readIn(source).adapters()) {
      Path from = name.equals(AdapterFiles.DEFAULT_ADAPTER) ? source : source.resolve(name);
      byte[] config = Files.readAllBytes(from.resolve(AdapterFiles.CONFIG));
      byte[] weights = Files.readAllBytes(from.resolve(AdapterFiles.WEIGHTS));
      writers.put(name, into -> {
        Files.write(into.resolve(AdapterFiles.WEIGHTS), weights);
        Files.write(into.resolve(AdapterFiles.CONFIG), config);
      });
    }
    return writers;
  }
}
