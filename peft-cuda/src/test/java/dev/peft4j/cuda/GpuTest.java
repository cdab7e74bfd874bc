package dev.peft4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Mlp;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Runs only where ND4J runs on a CUDA device (build with {@code -Pcuda-backend} on a GPU machine; select with
 * {@code -Dgroups=gpu}); everywhere else JUnit reports every test here as skipped, with the reason.
 */
@Tag("gpu")
@EnabledIf(value = "dev.peft4j.cuda.GpuTest#cudaDevicePresent",
    disabledReason = "no CUDA device: ND4J does not run on its CUDA backend here (build with -Pcuda-backend on a GPU "
        + "machine)")
class GpuTest {

  static boolean cudaDevicePresent() {
    try {
      return Backend.current() == Backend.CUDA && !CudaDevice.all().isEmpty();
    } catch (IllegalStateException | LinkageError e) {
      return false;
    }
  }

  @Test
  void everyDeviceReportsANameMemoryAndAComputeCapabilityCuda116Supports() {
    List<CudaDevice> devices = CudaDevice.all();
    System.out.println("CUDA devices: " + devices);
    for (CudaDevice d : devices) {
      assertFalse(d.name().isBlank(), d.toString());
      assertTrue(d.totalMemory() > (1L << 30) && d.freeMemory() <= d.totalMemory(), d.toString());
      assertTrue(d.major() >= 3 && d.major() <= 9, "CUDA 11.6 runs compute capability 3.5 to 8.7: " + d);
    }
    assertEquals(Nd4j.getAffinityManager().getNumberOfDevices(), devices.size());
  }

  @Test
  void settingsReachNd4jsEnvironment() {
    new CudaSettings.Builder().maxDeviceMemory(4L << 30).build().apply();
    for (int d = 0; d < CudaDevice.all().size(); d++) {
      assertEquals(4L << 30, Nd4j.getEnvironment().getDeviceLimit(d), "device " + d);
    }
    assertEquals(DataType.FLOAT, Nd4j.defaultFloatingPointType());
  }

  @Test
  void loraTrainsOnTheGpu() {
    SameDiff sd = Mlp.classifier(32, 128, 3, 4, DataType.FLOAT, 7);
    PeftModel model = Peft.lora(8).alpha(16).target("fc", "head").apply(sd);
    Random random = new Random(11);
    System.out.println("seed 11");
    INDArray x = Nd4j.zeros(DataType.FLOAT, 64, 32);
    INDArray y = Nd4j.zeros(DataType.FLOAT, 64, 4);
    for (int i = 0; i < 64; i++) {
      for (int j = 0; j < 32; j++) {
        x.putScalar(i, j, random.nextGaussian());
      }
      y.putScalar(i, random.nextInt(4), 1);
    }
    Batch batch = Batch.of(Map.of(Mlp.INPUT, x, Mlp.LABELS, y), Mlp.INPUT);
    TrainingHistory h = Trainer.builder(model).steps(30).learningRate(1e-2).progress(null).build()
        .fit(List.of(batch));
    double first = h.steps().get(0).loss();
    double last = h.steps().get(29).loss();
    assertTrue(Double.isFinite(last) && last < 0.7 * first, "loss " + first + " -> " + last);
  }
}
