package dev.peft4j.graph;

import java.lang.reflect.Field;
import java.util.Map;
import java.util.Set;
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

  private static final Field SESSIONS = field(SameDiff.class, "sessions");
  private static final Field FREED_ARRAYS = field(InferenceSession.class, "freedArrays");

  /** An empty cache; {@link #install(SameDiff, RowMajorArrayCache)} lets several graphs' sessions share one. */
  public RowMajorArrayCache() {}

  @Override
  public INDArray allocate(boolean detached, LongShapeDescriptor descriptor) {
    if (!descriptor.isEmpty() && descriptor.getOrder() != 'c') {
      descriptor = LongShapeDescriptor.fromShape(descriptor.getShape(), descriptor.dataType());
    }
    return super.allocate(detached, descriptor);
  }

  /**
   * Makes the calling thread's session of {@code sd} (created here if it has none yet) allocate through a
   * {@code RowMajorArrayCache}, and empties the session's set of released array ids ({@code freedArrays}), which ND4J
   * M2.1 never clears: it would grow by one entry per released array per run (about 2,000 a MiniLM training step);
   * the ids are reassigned when an array is reused, so none of them matters to a later run. Idempotent and cheap;
   * call it before each execution, since SameDiff drops its sessions when the graph changes. Does nothing where this
   * ND4J's sessions cannot be reached.
   *
   * @return whether the session was reached and prepared
   */
  public static boolean install(SameDiff sd) {
    return install(sd, null);
  }

  /**
   * As {@link #install(SameDiff)}, with {@code cache} (when not null) as the session's memory manager, so that graphs
   * run one after the other on this thread reuse each other's released buffers.
   */
  @SuppressWarnings("unchecked")
  public static boolean install(SameDiff sd, RowMajorArrayCache cache) {
    if (SESSIONS == null) {
      return false;
    }
    try {
      Map<Long, InferenceSession> sessions = (Map<Long, InferenceSession>) SESSIONS.get(sd);
      InferenceSession session = sessions.computeIfAbsent(Thread.currentThread().getId(),
          id -> SameDiff.getInferenceFactory().create(sd));
      if (cache != null ? session.getMmgr() != cache : !(session.getMmgr() instanceof RowMajorArrayCache)) {
        session.setMmgr(cache != null ? cache : new RowMajorArrayCache());
      }
      if (FREED_ARRAYS != null) {
        ((Set<Long>) FREED_ARRAYS.get(session)).clear();
      }
      return true;
    } catch (IllegalAccessException | ClassCastException e) {
      return false; // an ND4J whose sessions look different: keep its own memory manager
    }
  }

  /** For tests: whether SameDiff's per-thread sessions and their released-id sets were found. */
  static boolean sessionsReachable() {
    return SESSIONS != null && FREED_ARRAYS != null;
  }

  /** For tests: the size of the calling thread's session's set of released array ids. */
  @SuppressWarnings("unchecked")
  static int releasedIds(SameDiff sd) throws IllegalAccessException {
    InferenceSession session = ((Map<Long, InferenceSession>) SESSIONS.get(sd)).get(Thread.currentThread().getId());
    return ((Set<Long>) FREED_ARRAYS.get(session)).size();
  }

  private static Field field(Class<?> owner, String name) {
    try {
      Field f = owner.getDeclaredField(name);
      f.setAccessible(true);
      return f;
    } catch (ReflectiveOperationException | RuntimeException e) {
      return null;
    }
  }
}
