package dev.peft4j.cuda;

import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Environment;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The ND4J settings that matter for training on a GPU, applied together once ND4J runs on CUDA.
 *
 * <pre>{@code
 * new CudaSettings.Builder().maxDeviceMemory(20L << 30).build().apply();   // before building the graph
 * }</pre>
 *
 * <ul>
 *   <li>{@code dataType}: ND4J's default floating-point type for new arrays and graph variables
 *       ({@code Nd4j.setDefaultDataTypes}); default {@code FLOAT}, in which every peft4j test runs. {@code HALF} and
 *       {@code BFLOAT16} halve activation memory; peft4j's tolerances are not checked for them.
 *   <li>{@code maxDeviceMemory}: a limit on the memory ND4J allocates on each device
 *       ({@code Environment.setDeviceLimit} per device and {@code setMaxDeviceMemory}), so that another process or a
 *       second model keeps its share; default: none (ND4J's own default).
 *   <li>{@code cudnn}: whether libnd4j may route ops through its platform helpers (cuDNN on the
 *       {@code linux-x86_64-cudnn} build of nd4j-cuda-11.6; {@code Environment.allowHelpers}); default on.
 * </ul>
 * ND4J 1.0.0-M2.1 exposes no switch for cuBLAS's TF32 math mode. cuBLAS and cuDNN read the environment variable
 * {@code NVIDIA_TF32_OVERRIDE=0}, which forbids TF32 whatever the library asks for; set it in the environment of the
 * JVM for full FP32 matmuls on Ampere and later GPUs. None of these settings was exercised on a GPU here (the
 * machine has none); {@code gpu-check.sh} and the tests tagged {@code gpu} check them where a device exists.
 *
 * @param dataType        default floating-point type
 * @param maxDeviceMemory per-device limit in bytes, 0 for none
 * @param cudnn           whether libnd4j may use cuDNN
 */
public record CudaSettings(DataType dataType, long maxDeviceMemory, boolean cudnn) {

  private static final List<DataType> FLOATING = List.of(DataType.FLOAT, DataType.HALF, DataType.BFLOAT16,
      DataType.DOUBLE);

  public CudaSettings {
    if (dataType == null || !FLOATING.contains(dataType)) {
      throw new IllegalArgumentException("data type must be one of " + FLOATING + ", got " + dataType);
    }
    if (maxDeviceMemory < 0) {
      throw new IllegalArgumentException("max device memory must be >= 0 bytes (0: no limit), got "
          + maxDeviceMemory);
    }
  }

  /**
   * Applies the settings to this JVM's ND4J; call it before building graphs, whose variables take the default type
   * when they are created.
   *
   * @throws IllegalStateException naming what is missing, if ND4J does not run on CUDA ({@link Backend#require});
   *     nothing is changed then
   */
  public void apply() {
    Backend.require(Backend.CUDA);
    Nd4j.setDefaultDataTypes(dataType, dataType);
    Environment env = Nd4j.getEnvironment();
    env.allowHelpers(cudnn);
    if (maxDeviceMemory > 0) {
      env.setMaxDeviceMemory(maxDeviceMemory);
      int devices = Nd4j.getAffinityManager().getNumberOfDevices();
      for (int d = 0; d < devices; d++) {
        env.setDeviceLimit(d, maxDeviceMemory);
      }
    }
  }

  /** Options of {@link CudaSettings}; each can be set once. */
  public static final class Builder {
    private DataType dataType;
    private long maxDeviceMemory = -1;
    private Boolean cudnn;

    /** Default floating-point type; default {@code FLOAT}. */
    public Builder dataType(DataType type) {
      if (dataType != null) {
        throw new IllegalStateException("data type was already set to " + dataType);
      }
      if (type == null) {
        throw new IllegalArgumentException("data type must not be null");
      }
      this.dataType = type;
      return this;
    }

    /** Per-device limit on ND4J's allocations, in bytes; default none. */
    public Builder maxDeviceMemory(long bytes) {
      if (maxDeviceMemory != -1) {
        throw new IllegalStateException("max device memory was already set to " + maxDeviceMemory);
      }
      if (bytes <= 0) {
        throw new IllegalArgumentException("max device memory must be > 0 bytes, got " + bytes);
      }
      this.maxDeviceMemory = bytes;
      return this;
    }

    /** Whether libnd4j may use cuDNN; default on. */
    public Builder cudnn(boolean on) {
      if (cudnn != null) {
        throw new IllegalStateException("cudnn was already set to " + cudnn);
      }
      this.cudnn = on;
      return this;
    }

    public CudaSettings build() {
      return new CudaSettings(dataType == null ? DataType.FLOAT : dataType, Math.max(maxDeviceMemory, 0),
          cudnn == null || cudnn);
    }
  }
}
