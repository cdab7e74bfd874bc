package dev.peft4j.bench;

import java.io.File;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.URISyntaxException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One {@link CompareTrial} in a child JVM: {@code java.home}'s {@code java} with this JVM's memory and tuning options
 * ({@code -Xmx}, {@code -XX:}…), the system properties that configure ND4J, logging and peft4j (exec:java sets them
 * inside the running JVM, not as arguments), this code's class path and this process's environment
 * ({@code OMP_NUM_THREADS}, {@code OMP_WAIT_POLICY}); the child's output goes to a log file, its result to a JSON file.
 * Why a JVM per trial: in one process, peak memory grew with a method's place in the run order (freed native memory
 * is kept for reuse), and timings moved with whatever ran before.
 */
final class TrialProcess {

  private TrialProcess() {}

  /**
   * Writes {@code spec} to {@code specFile}, runs the trial in a child JVM logging to {@code logFile}, and reads its
   * result.
   *
   * @throws IllegalStateException with the end of the child's log, if it exits with an error
   */
  static CompareTrial.Result run(CompareTrial.Spec spec, Path specFile, Path logFile) throws IOException {
    String name = spec.adapterDir().getFileName().toString();
    Files.writeString(specFile, CompareTrial.GSON.toJson(spec.json()), StandardCharsets.UTF_8);
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(childJvmOptions());
    command.add("-cp");
    command.add(classPath());
    command.add(CompareTrial.class.getName());
    command.add(specFile.toString());
    // the environment (OMP_NUM_THREADS, OMP_WAIT_POLICY) is inherited by ProcessBuilder
    Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(logFile.toFile()).start();
    int exit;
    try {
      exit = process.waitFor();
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while " + name + " ran", e);
    }
    if (exit != 0) {
      List<String> lines = Files.readAllLines(logFile, StandardCharsets.UTF_8);
      throw new IllegalStateException(String.format("trial %s failed (exit %d); the end of %s:%n%s", name, exit,
          logFile, String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()))));
    }
    return CompareTrial.readResult(spec.resultFile());
  }

  /** This JVM's memory and tuning options and the system properties that configure ND4J, logging and peft4j. */
  static List<String> childJvmOptions() {
    List<String> out = new ArrayList<>();
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (a.startsWith("-Xmx") || a.startsWith("-Xms") || a.startsWith("-Xss") || a.startsWith("-XX:")
          || a.startsWith("--add-opens") || a.startsWith("--enable-native-access")) {
        out.add(a);
      }
    }
    // exec:java sets its systemProperties inside the running JVM, not as arguments
    System.getProperties().stringPropertyNames().stream().sorted()
        .filter(k -> k.startsWith("peft4j.") || k.startsWith("org.nd4j.") || k.startsWith("org.slf4j.")
            || k.startsWith("org.bytedeco.") || k.equals("java.awt.headless"))
        .forEach(k -> out.add("-D" + k + "=" + System.getProperty(k)));
    return out;
  }

  /**
   * The class path this code was loaded from: exec:java's class loader (whose parents hold Maven's own jars, left
   * out), or the JVM's class path (surefire's manifest jar, the plain {@code java -cp}).
   */
  static String classPath() {
    if (TrialProcess.class.getClassLoader() instanceof URLClassLoader urls) {
      List<String> entries = new ArrayList<>();
      for (URL url : urls.getURLs()) {
        try {
          entries.add(Path.of(url.toURI()).toString());
        } catch (URISyntaxException | IllegalArgumentException e) {
          throw new IllegalStateException("class path entry " + url + " is not a file", e);
        }
      }
      return String.join(File.pathSeparator, entries);
    }
    return System.getProperty("java.class.path");
  }
}
