package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The library's jars split no package between them, so they can sit on the module path together (each jar carries
 * an {@code Automatic-Module-Name}, and the module system refuses two modules holding one package).
 */
class ModuleLayoutTest {

  private static final List<String> LIBRARY = List.of("peft-core", "peft-methods", "peft-cuda");

  @Test
  void noPackageIsInTwoLibraryModules() throws IOException {
    Map<String, Set<String>> owners = new TreeMap<>();
    for (String module : LIBRARY) {
      Path root = Path.of("..", module, "src/main/java");
      try (Stream<Path> files = Files.walk(root)) {
        files.filter(f -> f.toString().endsWith(".java"))
            .map(f -> root.relativize(f.getParent()).toString().replace('/', '.'))
            .forEach(p -> owners.computeIfAbsent(p, k -> new TreeSet<>()).add(module));
      }
    }
    assertTrue(owners.containsKey("dev.peft4j") && owners.containsKey("dev.peft4j.methods"), owners.keySet()
        .toString());
    Map<String, Set<String>> split = new HashMap<>();
    owners.forEach((p, m) -> {
      if (m.size() > 1) {
        split.put(p, m);
      }
    });
    assertEquals(Map.of(), split, "packages split between library modules");
  }
}
