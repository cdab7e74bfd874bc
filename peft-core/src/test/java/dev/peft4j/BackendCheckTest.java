package dev.peft4j;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.model.HfModels;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.bytedeco.javacpp.Loader;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.factory.Nd4jBackend;

/**
 * The first-use error when ND4J has no backend. ND4J's backend, once loaded, cannot be unloaded, so the failing
 * cases run in a child JVM whose classpath is this one's without the backend jars.
 */
class BackendCheckTest {

  /** Child JVM entry point: the entry points a user reaches first, each failing with the same message. */
  public static final class WithoutBackend {
    public static void main(String[] args) throws IOException {
      List<String> messages = new ArrayList<>();
      try {
        BackendCheck.requireBackend();
      } catch (IllegalStateException e) {
        messages.add(e.getMessage());
      }
      try {
        HfModels.load(Path.of("no-such-model")); // the backend check comes before the missing config.json
      } catch (IllegalStateException e) {
        messages.add(e.getMessage());
      }
      System.out.print(String.join("\n----\n", messages));
    }
  }

  @Test
  void passesWhereTheBackendLoads() {
    assertDoesNotThrow(BackendCheck::requireBackend);
    assertDoesNotThrow(BackendCheck::requireBackend);
  }

  @Test
  void withNoBackendJarTheEntryPointsNameTheArtifactsForThisPlatform() throws Exception {
    String out = runWithout(jar -> jar.contains("nd4j-native") || jar.contains("openblas")
        || jar.contains("javacpp-1.5.7-"));
    String[] messages = out.split("\n----\n");
    assertEquals(2, messages.length, "both entry points should fail with the check's message; child printed:\n" + out);
    assertEquals(messages[0], messages[1], "the second use must explain as well as the first");
    String platform = Loader.getPlatform();
    assertTrue(messages[0].contains("no ND4J backend is on the classpath"), messages[0]);
    assertTrue(messages[0].contains("org.nd4j:nd4j-native:1.0.0-M2.1:" + platform), messages[0]);
    assertTrue(messages[0].contains("org.nd4j:nd4j-native-platform:1.0.0-M2.1"), messages[0]);
    assertTrue(messages[0].contains("dev.peft4j:peft-cuda:"), messages[0]);
    assertTrue(messages[0].contains("NoAvailableBackendException"), "ND4J's own words kept: " + messages[0]);
  }

  @Test
  void withTheBackendButNotItsNativesTheMessageSaysTheNativesAreMissing() throws Exception {
    String platform = Loader.getPlatform();
    String out = runWithout(jar -> jar.endsWith("-" + platform + ".jar"));
    String first = out.split("\n----\n")[0];
    assertTrue(first.contains("its native libraries for " + platform + " are not"), "child printed:\n" + out);
    assertTrue(first.contains("org.nd4j:nd4j-native:1.0.0-M2.1:" + platform), first);
  }

  @Test
  void withOnlyTheCudaBackendPresentTheMessageSaysItCannotRunHere() {
    // ND4J's words when nd4j-cuda-11.6 is the only backend and there is no NVIDIA driver (seen on this machine)
    Throwable nd4j = new RuntimeException(new Nd4jBackend.NoAvailableBackendException(
        "Please ensure that you have an nd4j backend on your classpath."));
    String m = BackendCheck.message(nd4j, true);
    assertTrue(m.startsWith("peft4j could not start ND4J: ND4J's CUDA backend (nd4j-cuda-11.6) is on the classpath "
        + "but cannot run here: it needs an NVIDIA driver (libcuda.so.1)"), m);
    assertTrue(m.contains("org.nd4j:nd4j-native:1.0.0-M2.1:" + Loader.getPlatform()), m);
    assertTrue(BackendCheck.message(nd4j, false).startsWith(
        "peft4j could not start ND4J: no ND4J backend is on the classpath"), BackendCheck.message(nd4j, false));
  }

  /** Runs {@link WithoutBackend} in a child JVM on this test classpath minus the jars {@code drop} selects. */
  private static String runWithout(Predicate<String> drop) throws Exception {
    // surefire passes the real test classpath here; java.class.path may be its manifest-only booter jar
    String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    List<String> entries = Arrays.asList(classpath.split(File.pathSeparator));
    String kept = entries.stream().filter(e -> !drop.test(new File(e).getName())).collect(Collectors.joining(
        File.pathSeparator));
    assertTrue(entries.size() > kept.split(File.pathSeparator).length, "nothing dropped from " + classpath);
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Process p = new ProcessBuilder(java, "-cp", kept, "-Dorg.slf4j.simpleLogger.defaultLogLevel=off",
        WithoutBackend.class.getName()).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "child JVM did not finish");
    assertEquals(0, p.exitValue(), "child JVM failed; printed:\n" + out);
    return out;
  }
}
