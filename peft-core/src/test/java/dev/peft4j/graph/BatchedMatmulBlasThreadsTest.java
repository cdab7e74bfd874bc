package dev.peft4j.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.factory.Nd4j;

class BatchedMatmulBlasThreadsTest {

  /** {@code [2,3,4,5]·[2,3,5,4]} (batched), reshaped to {@code [24, 4]}, then {@code ·[4, 4]} (2-D). */
  private static SameDiff graph() {
    Nd4j.getRandom().setSeed(5);
    SameDiff sd = SameDiff.create();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, 2, 3, 4, 5);
    SDVariable batched = sd.mmul(x, sd.constant(Nd4j.rand(DataType.FLOAT, 2, 3, 5, 4)));
    sd.mmul(sd.reshape(batched, 24, 4), sd.constant(Nd4j.rand(DataType.FLOAT, 4, 4))).rename("out");
    return sd;
  }

  @Test
  void batchedMatmulsRunOnOneBlasThreadOthersOnTheSettingWhichIsRestored() {
    int original = Nd4j.factory().blas().getMaxThreads();
    Nd4j.factory().blas().setMaxThreads(2);
    try {
      int configured = Nd4j.factory().blas().getMaxThreads();
      Map<String, INDArray> x = Map.of("x", Nd4j.rand(DataType.FLOAT, 2, 3, 4, 5));
      INDArray without = graph().output(x, "out").get("out");

      SameDiff sd = graph();
      BatchedMatmulBlasThreads.install(sd);
      BatchedMatmulBlasThreads.install(sd);
      List<String> seen = new ArrayList<>();
      sd.addListeners(new BaseListener() {
        @Override
        public boolean isActive(Operation operation) {
          return true;
        }

        @Override
        public void preOpExecution(SameDiff s, At at, SameDiffOp op, OpContext ctx) {
          if (op.getOp().opName().equals("matmul")) {
            seen.add("rank " + ctx.getInputArray(0).rank() + ": " + Nd4j.factory().blas().getMaxThreads());
          }
        }
      });
      INDArray with = sd.output(x, "out").get("out");

      assertEquals(2, sd.getListeners().size(), "installed twice, present once (beside the recorder)");
      assertEquals(List.of("rank 4: 1", "rank 2: " + configured), seen);
      assertEquals(configured, Nd4j.factory().blas().getMaxThreads(), "restored after the batched matmul");
      assertEquals(without, with, "the same values");
    } finally {
      Nd4j.factory().blas().setMaxThreads(original);
    }
  }
}
