package com.example.quickstart;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The published artifacts, used by coordinates only, run the quick start end to end. */
class QuickStartTest {

  @Test
  void trainSaveLoadAndMergeAgree() throws Exception {
    QuickStart.Result r = QuickStart.run();
    Path dir = r.dir();
    assertEquals(5, r.history().steps().size());
    double first = r.history().steps().get(0).loss();
    double last = r.history().steps().get(4).loss();
    assertTrue(Double.isFinite(first) && last < first, "training lowers the loss: " + first + " -> " + last);
    assertTrue(r.trainableParameters() > 0);
    assertTrue(Files.isRegularFile(dir.resolve("adapter_config.json")));
    assertTrue(Files.isRegularFile(dir.resolve("adapter_model.safetensors")));
    assertArrayEquals(new long[] {2, 2}, r.trained().shape());
    assertClose(r.trained(), r.loaded(), "saved and loaded adapter");
    assertClose(r.trained(), r.merged(), "merged into the weights");
  }

  private static void assertClose(INDArray expected, INDArray actual, String what) {
    double diff = actual.sub(expected).amaxNumber().doubleValue();
    System.out.printf("%s: max |difference| %.2e%n", what, diff);
    assertTrue(diff <= 1e-5, what + ": logits differ by " + diff + " (tolerance 1e-5)");
  }
}
