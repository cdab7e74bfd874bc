package dev.peft4j.cuda;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/** What can be checked without a GPU: the CPU build reports CPU and refuses CUDA, naming what is missing. */
class BackendTest {

  @Test
  void theCpuBuildRunsOnTheCpuBackend() {
    assertEquals(Backend.CPU, Backend.current(), "this module's tests depend on nd4j-native only");
    assertDoesNotThrow(() -> Backend.require(Backend.CPU));
    assertTrue(Backend.describe().startsWith("CPU (CpuBackend, "), Backend.describe());
    assertEquals(List.of(), CudaDevice.all(), "no CUDA device on the CPU backend");
  }

  @Test
  void requiringCudaOnTheCpuBuildNamesTheMissingArtifactsAndTheRuntime() {
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> Backend.require(Backend.CUDA));
    String m = e.getMessage();
    assertTrue(m.startsWith("CUDA backend required, but ND4J runs on CpuBackend: "), m);
    assertTrue(m.contains(Backend.CUDA_BACKEND_CLASS + " not found"), m);
    assertTrue(m.contains("org.nd4j:nd4j-cuda-11.6:1.0.0-M2.1 and org.nd4j:nd4j-cuda-11.6:1.0.0-M2.1:linux-x86_64"), m);
    assertTrue(m.contains("org.bytedeco:cuda:11.6-8.3-1.5.7:linux-x86_64-redist"), m);
    assertThrows(IllegalArgumentException.class, () -> Backend.require(null));
  }

  @Test
  void cudaSettingsRefuseToApplyOnTheCpuAndChangeNothing() {
    DataType before = Nd4j.defaultFloatingPointType();
    boolean helpers = Nd4j.getEnvironment().helpersAllowed();
    CudaSettings s = new CudaSettings.Builder().dataType(DataType.HALF).cudnn(!helpers).maxDeviceMemory(1L << 30)
        .build();
    IllegalStateException e = assertThrows(IllegalStateException.class, s::apply);
    assertTrue(e.getMessage().startsWith("CUDA backend required"), e.getMessage());
    assertEquals(before, Nd4j.defaultFloatingPointType(), "data type unchanged");
    assertEquals(helpers, Nd4j.getEnvironment().helpersAllowed(), "helpers unchanged");
  }

  @Test
  void cudaSettingsDefaultsValidationAndSetOnce() {
    assertEquals(new CudaSettings(DataType.FLOAT, 0, true), new CudaSettings.Builder().build());
    assertEquals(new CudaSettings(DataType.BFLOAT16, 5L << 30, false),
        new CudaSettings.Builder().dataType(DataType.BFLOAT16).maxDeviceMemory(5L << 30).cudnn(false).build());
    IllegalArgumentException type = assertThrows(IllegalArgumentException.class,
        () -> new CudaSettings.Builder().dataType(DataType.INT32).build());
    assertTrue(type.getMessage().endsWith("got " + DataType.INT32), type.getMessage());
    IllegalArgumentException memory = assertThrows(IllegalArgumentException.class,
        () -> new CudaSettings.Builder().maxDeviceMemory(0));
    assertEquals("max device memory must be > 0 bytes, got 0", memory.getMessage());
    IllegalStateException twice = assertThrows(IllegalStateException.class,
        () -> new CudaSettings.Builder().cudnn(false).cudnn(true));
    assertEquals("cudnn was already set to false", twice.getMessage());
  }

  @Test
  void devicesAreReadFromTheCudaExecutionersEnvironmentInformation() {
    // the shape CudaExecutioner.getEnvironmentInformation() gives (nd4j-cuda-11.6 1.0.0-M2.1, read with javap)
    Map<String, Object> a10g = new HashMap<>();
    a10g.put("cuda.deviceName", "NVIDIA A10G");
    a10g.put("cuda.totalMemory", 23_836_098_560L);
    a10g.put("cuda.freeMemory", 23_000_000_000L);
    a10g.put("cuda.deviceMajor", 8L);
    a10g.put("cuda.deviceMinor", 6L);
    Map<String, Object> t4 = new HashMap<>(a10g);
    t4.put("cuda.deviceName", "Tesla T4");
    t4.put("cuda.deviceMajor", 7L);
    t4.put("cuda.deviceMinor", 5L);
    Properties env = new Properties();
    env.put("cuda.availableDevices", 2);
    env.put("cuda.devicesInformation", List.of(a10g, t4));
    List<CudaDevice> devices = CudaDevice.parse(env);
    assertEquals(List.of(new CudaDevice(0, "NVIDIA A10G", 23_836_098_560L, 23_000_000_000L, 8, 6),
        new CudaDevice(1, "Tesla T4", 23_836_098_560L, 23_000_000_000L, 7, 5)), devices);
    assertEquals("8.6", devices.get(0).computeCapability());
    assertEquals(836_098_560L, devices.get(0).usedMemory());
    assertEquals("cuda:1 Tesla T4 (compute 7.5, 22.2 GiB, 21.4 GiB free)", devices.get(1).toString());
    assertEquals(List.of(), CudaDevice.parse(new Properties()), "the CPU executioner has no device list");

    t4.remove("cuda.totalMemory");
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> CudaDevice.parse(env));
    assertTrue(e.getMessage().startsWith("ND4J's device information has cuda.totalMemory = null, expected a number"),
        e.getMessage());
  }
}
