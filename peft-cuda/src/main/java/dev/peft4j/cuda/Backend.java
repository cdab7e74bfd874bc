package dev.peft4j.cuda;

import java.util.Locale;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The ND4J backend this JVM computes on.
 *
 * @param kind    CPU or GPU
 * @param name    ND4J's backend class, e.g. {@code CpuBackend}
 * @param threads the OpenMP threads ND4J's native code uses
 */
public record Backend(Kind kind, String name, int threads) {

  /** Where the arithmetic runs. */
  public enum Kind { CPU, GPU }

  /** The backend in use, loading ND4J if it is not loaded yet. */
  public static Backend current() {
    String name = Nd4j.getBackend().getClass().getSimpleName();
    Kind kind = name.toLowerCase(Locale.ROOT).contains("cuda") ? Kind.GPU : Kind.CPU;
    return new Backend(kind, name, Nd4j.getEnvironment().maxMasterThreads());
  }

  @Override
  public String toString() {
    return kind + " (" + name + ", " + threads + " threads)";
  }
}
