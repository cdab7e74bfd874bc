package dev.peft4j.graph;

import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Runs the batched matmuls of attention ({@code matmul} and {@code matmul_bp} with a rank-4 input, e.g.
 * {@code [b, nh, s, d]·[b, nh, d, s]}) with OpenBLAS on one thread, and every other op as configured.
 *
 * <p>Why: the time of ND4J 1.0.0-M2.1's batched matmul depends on OpenBLAS's thread count, not on ND4J's: it
 * appears to run one OpenBLAS {@code sgemm} per matrix (b·nh = 96 of {@code 128×32×128} in MiniLM at 8 × 128), each
 * above OpenBLAS's threading threshold, so that with two BLAS threads every one of them hands half its work to
 * OpenBLAS's worker thread and waits for it; with ND4J's own threads busy on the same cores, or on a loaded machine,
 * that hand-off dominates. Measured in one process on the LoRA q,v step ({@code AttentionProbe}, under load 9–19 on
 * 2 cores; peft-bench/HISTORY.md round 5): in the graph {@code Q·Kᵀ} 3.9–62 ms a call with two BLAS threads against
 * 2.6–3.1 ms with one, {@code P·V} 4.8–24 against 3.2–10.5 ms; the step 4,744 ms against 1,640 ms with this listener
 * (process CPU 3,160 against 1,620 ms, load 9). The 2-D projections keep both BLAS threads.
 *
 * <p>OpenBLAS's thread count is process-wide: concurrent graph runs share one count of runs inside a batched matmul,
 * and the first to enter saves the setting that the last to leave restores. Inside {@code DataParallel}, which already
 * sets one BLAS thread for the whole step, this changes nothing.
 */
public final class BatchedMatmulBlasThreads extends BaseListener {

  private static final BatchedMatmulBlasThreads INSTANCE = new BatchedMatmulBlasThreads();
  private static final Object LOCK = new Object();
  private static int inside;    // graph threads inside a batched matmul; guarded by LOCK
  private static int restoreTo; // the BLAS thread count before the first of them entered; guarded by LOCK
  private static final ThreadLocal<Boolean> LOWERED = ThreadLocal.withInitial(() -> false);

  private BatchedMatmulBlasThreads() {}

  /** Adds the listener to {@code sd} unless it is there already (one caller at a time: no duplicate). */
  public static synchronized void install(SameDiff sd) {
    if (!sd.getListeners().contains(INSTANCE)) {
      sd.addListeners(INSTANCE);
    }
  }

  @Override
  public boolean isActive(Operation operation) {
    return true;
  }

  @Override
  public void preOpExecution(SameDiff sd, At at, SameDiffOp op, OpContext opContext) {
    if (!op.getOp().opName().startsWith("matmul") || !hasRank4Input(opContext)) {
      return;
    }
    synchronized (LOCK) {
      if (inside++ == 0) {
        restoreTo = Nd4j.factory().blas().getMaxThreads();
        if (restoreTo != 1) {
          Nd4j.factory().blas().setMaxThreads(1);
        }
      }
    }
    LOWERED.set(true);
  }

  @Override
  public void opExecution(SameDiff sd, At at, MultiDataSet batch, SameDiffOp op, OpContext opContext,
      INDArray[] outputs) {
    if (!LOWERED.get()) {
      return;
    }
    LOWERED.set(false);
    synchronized (LOCK) {
      if (--inside == 0 && restoreTo != 1) {
        Nd4j.factory().blas().setMaxThreads(restoreTo);
      }
    }
  }

  private static boolean hasRank4Input(OpContext opContext) {
    for (INDArray in : opContext.getInputArrays()) {
      if (in.rank() == 4) {
        return true;
      }
    }
    return false;
  }
}
