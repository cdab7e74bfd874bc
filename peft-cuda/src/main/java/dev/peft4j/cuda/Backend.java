package dev.peft4j.cuda;

import dev.peft4j.BackendCheck;
import java.util.Locale;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.factory.Nd4jBackend;

/**
 * The ND4J backend this JVM computes on, and a check that it is the one the application needs.
 *
 * <pre>{@code
 * Backend.require(Backend.CUDA);            // fails naming what is missing, before any training starts
 * System.out.println(CudaDevice.all());     // [cuda:0 NVIDIA A10G (compute 8.6, 22.0 GiB, 21.6 GiB free)]
 * }</pre>
 *
 * <p>ND4J chooses the backend itself when it first starts: among the backends on the classpath that can run, the one
 * of highest priority (CUDA before CPU). {@code dev.peft4j:peft-cuda} brings {@code org.nd4j:nd4j-cuda-11.6} and
 * its {@code linux-x86_64} natives; the CUDA 11.6 runtime itself comes from the system or from
 * {@code org.bytedeco:cuda:11.6-8.3-1.5.7:linux-x86_64-redist}.
 */
public enum Backend {
  /** ND4J's {@code CpuBackend} ({@code nd4j-native}): OpenBLAS and libnd4j's CPU kernels. */
  CPU,
  /** ND4J's {@code JCublasBackend} ({@code nd4j-cuda-11.6}): cuBLAS, cuDNN where enabled, libnd4j's CUDA kernels. */
  CUDA;

  /** The class ND4J's CUDA backend registers; looked up by name, so that this module needs no CUDA jar to build. */
  static final String CUDA_BACKEND_CLASS = "org.nd4j.linalg.jcublas.JCublasBackend";
  static final String CUDA_ARTIFACTS =
      "org.nd4j:nd4j-cuda-11.6:1.0.0-M2.1 and org.nd4j:nd4j-cuda-11.6:1.0.0-M2.1:linux-x86_64";
  static final String CUDA_RUNTIME = "a CUDA 11.6 runtime (installed on the system, or the Maven artifact "
      + "org.bytedeco:cuda:11.6-8.3-1.5.7:linux-x86_64-redist)";

  /**
   * The backend in use, starting ND4J if it has not started yet.
   *
   * @throws IllegalStateException if no ND4J backend is on the classpath ({@link BackendCheck})
   */
  public static Backend current() {
    BackendCheck.requireBackend();
    return Nd4j.getEnvironment().isCPU() ? CPU : CUDA;
  }

  /**
   * Fails unless ND4J runs on {@code wanted}.
   *
   * @throws IllegalStateException naming what is missing: the CUDA backend's jars, or (when they are present) a
   *     CUDA device, driver or runtime; or, for {@code CPU}, that ND4J chose CUDA
   */
  public static void require(Backend wanted) {
    if (wanted == null) {
      throw new IllegalArgumentException("wanted backend must not be null");
    }
    Backend actual = current();
    if (actual == wanted) {
      return;
    }
    String loaded = Nd4j.getBackend().getClass().getSimpleName();
    if (wanted == CPU) {
      throw new IllegalStateException(String.format("CPU backend required, but ND4J chose %s: remove "
          + "nd4j-cuda-11.6 (or peft-cuda) from the classpath, or set the environment variable "
          + "BACKEND_PRIORITY_CPU above BACKEND_PRIORITY_GPU", loaded));
    }
    throw new IllegalStateException(String.format(Locale.ROOT, "CUDA backend required, but ND4J runs on %s: %s",
        loaded, whyNotCuda()));
  }

  /** What keeps ND4J off the GPU, as far as can be told from this JVM. */
  static String whyNotCuda() {
    Class<?> type;
    try {
      type = Class.forName(CUDA_BACKEND_CLASS, false, Backend.class.getClassLoader());
    } catch (ClassNotFoundException e) {
      return "ND4J's CUDA backend is not on the classpath (" + CUDA_BACKEND_CLASS + " not found). Add "
          + "dev.peft4j:peft-cuda, which brings " + CUDA_ARTIFACTS + " (or add those two yourself), and "
          + CUDA_RUNTIME + ".";
    }
    try {
      Nd4jBackend cuda = (Nd4jBackend) type.getDeclaredConstructor().newInstance();
      boolean available = cuda.isAvailable();
      boolean runs = available && cuda.canRun();
      return String.format("ND4J's CUDA backend is on the classpath but %s. It needs the natives "
              + "(org.nd4j:nd4j-cuda-11.6:1.0.0-M2.1:linux-x86_64), %s, an NVIDIA driver for CUDA 11.6 and a device.",
          !available ? "its native libraries did not load" : !runs ? "reports it cannot run here"
              : "ND4J did not choose it (check BACKEND_PRIORITY_GPU / BACKEND_PRIORITY_CPU)", CUDA_RUNTIME);
    } catch (ReflectiveOperationException | LinkageError | RuntimeException e) {
      return String.format("ND4J's CUDA backend is on the classpath but could not start (%s: %s). It needs the "
          + "natives (org.nd4j:nd4j-cuda-11.6:1.0.0-M2.1:linux-x86_64), %s, an NVIDIA driver and a device.",
          e.getClass().getSimpleName(), e.getMessage(), CUDA_RUNTIME);
    }
  }

  /** How ND4J computes right now, for logs: backend, OpenMP threads, and the CUDA devices if any. */
  public static String describe() {
    Backend b = current();
    String name = Nd4j.getBackend().getClass().getSimpleName();
    return b == CPU
        ? String.format(Locale.ROOT, "CPU (%s, %d threads)", name, Nd4j.getEnvironment().maxMasterThreads())
        : String.format(Locale.ROOT, "CUDA (%s, %s)", name, CudaDevice.all());
  }
}
