package dev.peft4j;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;
import org.bytedeco.javacpp.Loader;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Makes sure an ND4J backend is on the classpath before peft4j's entry points touch ND4J, and otherwise fails with
 * a message naming the Maven artifacts to add.
 *
 * <p>peft4j depends on {@code nd4j-api} only, so that its users choose the backend as ND4J's own users do: the CPU
 * backend with their platform's natives, every platform's natives at once, or CUDA through {@code peft-cuda}. Without
 * one, ND4J's static initialiser fails with "Please ensure that you have an nd4j backend on your classpath" on first
 * use and with {@code NoClassDefFoundError: Could not initialize class org.nd4j.linalg.factory.Nd4j} on every use
 * after that, which names nothing to add. {@link PeftModel#wrap}, {@code HfModels.load},
 * {@code PretrainedModels.miniLm} and {@code Trainer.Builder} call {@link #requireBackend()} first.
 */
public final class BackendCheck {

  private static volatile boolean loaded; // once ND4J has loaded a backend it stays loaded for the JVM's life
  // ND4J explains only its first failure; later ones are "Could not initialize class", so the first explanation stays
  private static volatile String firstFailure;

  /** ND4J's CUDA backend, looked up by name: peft-core never needs the CUDA jars. */
  static final String CUDA_BACKEND_CLASS = "org.nd4j.linalg.jcublas.JCublasBackend";

  private BackendCheck() {}

  /**
   * Loads ND4J's backend if it is not loaded yet.
   *
   * @throws IllegalStateException if no backend could be loaded, naming the artifacts to add for this platform (and
   *     ND4J's own message as the cause); the same message on every later call
   */
  public static void requireBackend() {
    if (loaded) {
      return;
    }
    try {
      Nd4j.getBackend();
      loaded = true;
    } catch (LinkageError | RuntimeException e) { // ExceptionInInitializerError first, NoClassDefFoundError after
      if (firstFailure == null) {
        firstFailure = message(e, onClasspath(CUDA_BACKEND_CLASS));
      }
      throw new IllegalStateException(firstFailure, e);
    }
  }

  /**
   * The explanation for a failed backend load: which case it is, and the dependencies that fix it. With the CUDA
   * backend on the classpath and no other, ND4J reports "no backend" when the CUDA backend cannot run (measured here,
   * a machine without an NVIDIA driver: {@code libcuda.so.1: cannot open shared object file}), so that case is named.
   */
  static String message(Throwable failure, boolean cudaBackendPresent) {
    Properties versions = versions();
    String nd4j = versions.getProperty("nd4j.version");
    String platform = Loader.getPlatform(); // e.g. linux-x86_64, macosx-arm64, windows-x86_64
    boolean nativesMissing = causedBy(failure, UnsatisfiedLinkError.class);
    String what = cudaBackendPresent
        ? "ND4J's CUDA backend (nd4j-cuda-11.6) is on the classpath but cannot run here: it needs an NVIDIA driver "
            + "(libcuda.so.1), a CUDA 11.6 runtime and a device; without a GPU, add a CPU backend beside it"
        : nativesMissing
        ? "an ND4J backend is on the classpath but its native libraries for " + platform + " are not"
        : "no ND4J backend is on the classpath";
    return String.format("peft4j could not start ND4J: %1$s (ND4J: %2$s).%n"
            + "peft4j depends on org.nd4j:nd4j-api only; add one backend to your build:%n"
            + "  CPU, this platform:     org.nd4j:nd4j-native:%3$s and org.nd4j:nd4j-native:%3$s:%4$s (classifier)%n"
            + "  CPU, every platform:    org.nd4j:nd4j-native-platform:%3$s (natives of every OS at once)%n"
            + "  NVIDIA GPU, CUDA 11.6:  dev.peft4j:peft-cuda:%5$s (linux-x86_64)%n"
            + "See \"Use it in your project\" in peft4j's README.",
        what, rootMessage(failure), nd4j, platform, versions.getProperty("peft4j.version"));
  }

  private static boolean onClasspath(String className) {
    try {
      Class.forName(className, false, BackendCheck.class.getClassLoader());
      return true;
    } catch (ClassNotFoundException e) {
      return false;
    }
  }

  private static boolean causedBy(Throwable t, Class<? extends Throwable> type) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (type.isInstance(c)) {
        return true;
      }
    }
    return false;
  }

  private static String rootMessage(Throwable t) {
    Throwable root = t;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    return root.getClass().getSimpleName() + ": " + root.getMessage();
  }

  private static Properties versions() {
    Properties p = new Properties();
    try (InputStream in = BackendCheck.class.getResourceAsStream("versions.properties")) {
      if (in == null) {
        throw new IllegalStateException("dev/peft4j/versions.properties is missing from peft-core's jar");
      }
      p.load(in);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return p;
  }
}
