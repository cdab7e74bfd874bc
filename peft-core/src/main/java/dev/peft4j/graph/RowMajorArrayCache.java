package dev.peft4j.graph;

import java.lang.reflect.Field;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.InferenceSession;
import org.nd4j.autodiff.samediff.internal.memory.ArrayCacheMemoryMgr;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.LongShapeDescriptor;

/**
 * SameDiff's array cache ({@link ArrayCacheMemoryMgr}: an op's output reuses a released array of the same shape),
 * except that every array it hands out is row-major.
 *
 * <p>In ND4J 1.0.0-M2.1 the cache reuses an array for an op whose shape function asks for column-major order
 * ({@code xw_plus_b} does) by flipping the array's order flag without changing its strides: the array then claims
 * {@code 'f'} order over row-major strides, and every later op that reads it takes a slow element-by-element path.
 * On all-MiniLM-L6-v2 that made the 137 {@code reshape}s of a LoRA training step cost ~89 ms instead of ~15 ms.
 * Allocating without the cache ({@code Nd4j.createUninitializedDetached}) always gives row-major arrays; so does this
 * cache. Ops write their outputs through the output's strides, so the values are the same.
 */
public final class RowMajorArrayCache extends ArrayCacheMemoryMgr {

  private static final Field SESSIONS = sessionsField();

  private RowMajorArrayCache() {}

  @Override
  public INDArray allocate(boolean detached, LongShapeDescriptor descriptor) {
    if (!descriptor.isEmpty() && descriptor.getOrder() != 'c') {
      descriptor = LongShapeDescriptor.fromShape(descriptor.getShape(), descriptor.dataType());
    }
    return super.allocate(detached, descriptor);
  }

  /**
   * Makes the calling thread's session of {@code sd} (created here if it has none yet) allocate through a
   * {@code RowMajorArrayCache}. Idempotent and cheap; call it before each execution, since SameDiff drops its
   * sessions when the graph changes. Does nothing where this ND4J's sessions cannot be reached.
   *
   * @return the calling thread's session, or null where it cannot be reached
   */
  @SuppressWarnings("unchecked")
  public static InferenceSession install(SameDiff sd) {
    if (SESSIONS == null) {
      return null;
    }
    try {
      Map<Long, InferenceSession> sessions = (Map<Long, InferenceSession>) SESSIONS.get(sd);
      InferenceSession session = sessions.computeIfAbsent(Thread.currentThread().getId(),
          id -> SameDiff.getInferenceFactory().create(sd));
      if (!(session.getMmgr() instanceof RowMajorArrayCache)) {
        session.setMmgr(new RowMajorArrayCache());
      }
      return session;
    } catch (IllegalAccessException | ClassCastException e) {
      return null; // an ND4J whose sessions look different: keep its own memory manager
    }
  }

  /** For tests: whether SameDiff's per-thread sessions were found. */
  static boolean sessionsReachable() {
    return SESSIONS != null;
  }

  private static Field sessionsField() {
    try {
      Field f = SameDiff.class.getDeclaredField("sessions");
      f.setAccessible(true);
      return f;
    } catch (ReflectiveOperationException | RuntimeException e) {
      return null;
    }
  }
}
