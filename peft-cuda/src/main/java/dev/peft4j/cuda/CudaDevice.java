package dev.peft4j.cuda;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import org.nd4j.linalg.api.environment.Nd4jEnvironment;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A CUDA device as ND4J's CUDA backend reports it.
 *
 * @param index        ND4J's device number (0-based, as {@code CUDA_VISIBLE_DEVICES} orders them)
 * @param name         the device name, e.g. {@code NVIDIA A10G}
 * @param totalMemory  device memory in bytes
 * @param freeMemory   free device memory in bytes when {@link #all()} was called
 * @param major        compute capability, major (8 for Ampere)
 * @param minor        compute capability, minor
 */
public record CudaDevice(int index, String name, long totalMemory, long freeMemory, int major, int minor) {

  /** The compute capability as NVIDIA writes it, e.g. {@code 8.6}. */
  public String computeCapability() {
    return major + "." + minor;
  }

  /** Device memory in use when {@link #all()} was called, by every process on the device. */
  public long usedMemory() {
    return totalMemory - freeMemory;
  }

  /**
   * The CUDA devices ND4J sees, with their free memory now; empty on the CPU backend.
   *
   * @throws IllegalStateException if no ND4J backend is on the classpath
   */
  public static List<CudaDevice> all() {
    if (Backend.current() == Backend.CPU) {
      return List.of();
    }
    return parse(Nd4j.getExecutioner().getEnvironmentInformation());
  }

  /** The devices in the environment information of ND4J's CUDA executioner: a list of maps with Long values. */
  static List<CudaDevice> parse(Properties environment) {
    Object list = environment.get(Nd4jEnvironment.CUDA_DEVICE_INFORMATION_KEY);
    if (list == null) {
      return List.of();
    }
    if (!(list instanceof List<?> devices)) {
      throw new IllegalStateException(String.format("ND4J's %s is a %s, expected a list of maps",
          Nd4jEnvironment.CUDA_DEVICE_INFORMATION_KEY, list.getClass().getName()));
    }
    List<CudaDevice> result = new ArrayList<>();
    for (int i = 0; i < devices.size(); i++) {
      Map<?, ?> d = (Map<?, ?>) devices.get(i);
      result.add(new CudaDevice(i, String.valueOf(d.get(Nd4jEnvironment.CUDA_DEVICE_NAME_KEY)),
          number(d, Nd4jEnvironment.CUDA_TOTAL_MEMORY_KEY), number(d, Nd4jEnvironment.CUDA_FREE_MEMORY_KEY),
          (int) number(d, Nd4jEnvironment.CUDA_DEVICE_MAJOR_VERSION_KEY),
          (int) number(d, Nd4jEnvironment.CUDA_DEVICE_MINOR_VERSION_KEY)));
    }
    return List.copyOf(result);
  }

  private static long number(Map<?, ?> device, String key) {
    Object v = device.get(key);
    if (!(v instanceof Number n)) {
      throw new IllegalStateException(String.format("ND4J's device information has %s = %s, expected a number; "
          + "device: %s", key, v, device));
    }
    return n.longValue();
  }

  @Override
  public String toString() {
    return String.format(Locale.ROOT, "cuda:%d %s (compute %s, %.1f GiB, %.1f GiB free)", index, name,
        computeCapability(), totalMemory / (double) (1L << 30), freeMemory / (double) (1L << 30));
  }
}
