package dev.peft4j.graph;

import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.InferenceSession;
import org.nd4j.autodiff.samediff.internal.memory.ArrayCacheMemoryMgr;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.BaseNDArray;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.LongShapeDescriptor;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.shade.guava.collect.Table;

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
 *
 * <p>It also takes back what a run leaves behind ({@link #reclaim}): ND4J M2.1's session returns an array to the cache
 * when its last reader has run, but some arrays it never returns (measured: the buffers under {@code reshape} and
 * {@code permute} views, and the output): they stay in the session until the next run drops them, and the next run
 * allocates them afresh. On all-MiniLM-L6-v2 at batch 8 × 128 that was 19 MiB of new off-heap buffers per forward
 * (fourteen arrays), freed only when the garbage collector finalised their owners: the one-worker forward's resident
 * size grew by ~20 MiB a run, to 1.9 GB over a JMH run.
 *
 * <p>And it keeps array ids unique. M2.1 gives a reused array a new id with {@code incrementAndGet} on the counter
 * from which a new array takes its id with {@code getAndIncrement}, so the next array created anywhere gets the reused
 * array's id. The session keeps the ids of the arrays it released during a run and never releases an id twice, so the
 * second of the two arrays stays out of the cache until the run ends, and the cache refuses an id it already holds.
 * In a run that mixes reused and new arrays (the first training step: the cache fills while the step runs) that left
 * 295 MiB of a MiniLM LoRA step's 664 MiB unreleased until the step ended, and the cache kept all of it for the steps
 * after, whose peak needs 466: peak RSS 1,200 MiB instead of 988 (batch 8 × 128, one worker). This cache gives every
 * array it hands out an id of its own, from a negative sequence that ND4J's never reaches.
 *
 * <p>And it frees what recent runs did not ask for. SameDiff's cache keeps released arrays by exact shape, up to a
 * quarter of {@code -Xmx}, and batches padded to their longest text come in many shapes: every sequence length that
 * turns up kept a whole step's worth of arrays (a five-epoch comparison trial of linear probing grew to 1,789 MiB).
 * After each run ({@link #reclaim}) the cached arrays of every shape that none of the last three runs asked for are
 * freed.
 */
public final class RowMajorArrayCache extends ArrayCacheMemoryMgr {

  private static final Field SESSIONS = PrivateFields.field(SameDiff.class, "sessions");
  private static final Field FREED_ARRAYS = PrivateFields.field(InferenceSession.class, "freedArrays");

  private static final Field ARRAY_ID = PrivateFields.field(BaseNDArray.class, "arrayId");
  /** The ids this cache gives: negative, below ND4J's, which count up from 0 (see the class comment). */
  private static final AtomicLong OWN_IDS = new AtomicLong();
  private static final BaseNDArray SPACER = (BaseNDArray) Nd4j.scalar(0f);

  /** Runs a shape may go unused before its cached arrays are freed (see the class comment). */
  private static final int KEEP_RUNS = 3;
  /** The run (counted by {@link #reclaim}) in which each type and shape was last asked for: "FLOAT[8, 128, 384]". */
  private final Map<String, Long> lastHandedOut = new HashMap<>();
  private long runs;

  /** The arrays handed out since the run began and not released since, by buffer address (see {@link #reclaim}). */
  private final Map<Long, INDArray> handedOut = new HashMap<>();

  /** An empty cache; {@link #install(SameDiff, RowMajorArrayCache)} lets several graphs' sessions share one. */
  public RowMajorArrayCache() {}

  @Override
  public INDArray allocate(boolean detached, DataType dataType, long... shape) {
    lastHandedOut.put(dataType + Arrays.toString(shape), runs);
    return withOwnId(super.allocate(detached, dataType, shape));
  }

  @Override
  public INDArray allocate(boolean detached, LongShapeDescriptor descriptor) {
    if (!descriptor.isEmpty() && descriptor.getOrder() != 'c') {
      descriptor = LongShapeDescriptor.fromShape(descriptor.getShape(), descriptor.dataType());
    }
    lastHandedOut.put(descriptor.dataType() + Arrays.toString(descriptor.getShape()), runs);
    INDArray a = withOwnId(super.allocate(detached, descriptor));
    if (!a.isEmpty()) {
      handedOut.put(a.data().address(), a);
    }
    return a;
  }

  @Override
  public void release(INDArray array) {
    if (!array.isEmpty()) {
      handedOut.remove(array.data().address());
    }
    super.release(array);
  }

  /**
   * {@code a}, with an id from this cache's own sequence; where ND4J's field cannot be reached, with the id ND4J gave
   * and its counter moved past it (unique unless another thread makes an array in between).
   */
  private static INDArray withOwnId(INDArray a) {
    if (a instanceof BaseNDArray array) {
      try {
        if (ARRAY_ID != null) {
          ARRAY_ID.setLong(array, OWN_IDS.decrementAndGet());
          return a;
        }
      } catch (IllegalAccessException | RuntimeException e) {
        // fall through
      }
      SPACER.assignNewId(); // a reused array's id is the counter's value: move the counter past it
    }
    return a;
  }

  /**
   * After a run of a graph whose session allocates through this cache ({@link #install}): returns to the cache every
   * array handed out since the run began and not released since, except those whose buffer overlaps one of
   * {@code kept} (the run's results, which now belong to the caller and are never touched again). Nothing reads the
   * others after the run: the session drops them when the next run starts.
   *
   * @return the bytes returned to the cache
   */
  long reclaimExcept(Collection<INDArray> kept) {
    List<long[]> keptRanges = new ArrayList<>();
    for (INDArray k : kept) {
      if (k != null && !k.isEmpty()) {
        long start = k.data().address();
        keptRanges.add(new long[] {start, start + k.data().length() * k.data().getElementSize()});
      }
    }
    long bytes = 0;
    List<INDArray> dead = new ArrayList<>();
    for (INDArray a : handedOut.values()) {
      if (a.wasClosed()) {
        continue;
      }
      long start = a.data().address();
      long end = start + a.data().length() * a.data().getElementSize();
      // M2.1's cache refuses ("released multiple times") an array whose id it still lists as cached, which happens
      // here for a few arrays a run: those are left to the garbage collector, as before
      if (a.closeable() && !getLruCache().contains(a.getId())
          && keptRanges.stream().noneMatch(r -> r[0] < end && start < r[1])) {
        dead.add(a);
        bytes += end - start;
      }
    }
    handedOut.clear(); // the kept arrays are the caller's now
    dead.forEach(super::release);
    runs++;
    evictShapesUnusedSince(runs - KEEP_RUNS);
    return bytes;
  }

  /** Frees the cached arrays of every type and shape this cache last handed out before run {@code run}. */
  private void evictShapesUnusedSince(long run) {
    for (Table.Cell<DataType, String, List<INDArray>> pool : getArrays().cellSet()) {
      Long last = lastHandedOut.get(pool.getRowKey() + pool.getColumnKey());
      if (pool.getValue().isEmpty() || last != null && last >= run) {
        continue;
      }
      for (INDArray a : pool.getValue()) {
        getLruCache().remove(a.getId());
        getLruCacheValues().remove(a.getId());
        setCurrentCacheSize(getCurrentCacheSize() - a.data().length() * a.dataType().width());
        if (a.closeable()) {
          a.close();
        }
      }
      pool.getValue().clear();
    }
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
      if (session.getMmgr() instanceof RowMajorArrayCache c) {
        c.handedOut.clear(); // a new run begins: what earlier runs handed out is their callers' (see reclaim)
      }
      return true;
    } catch (IllegalAccessException | ClassCastException e) {
      return false; // an ND4J whose sessions look different: keep its own memory manager
    }
  }

  /**
   * Call right after a run of {@code sd} on this thread that {@link #install} prepared: returns to the session's cache
   * the arrays the run left in the session, all but those sharing memory with {@code results} (what the run returned
   * to the caller), so that the next run reuses them instead of allocating afresh. The results stay valid. Does nothing
   * where the session does not allocate through a {@code RowMajorArrayCache}.
   *
   * @return the bytes returned to the cache
   */
  @SuppressWarnings("unchecked")
  public static long reclaim(SameDiff sd, Collection<INDArray> results) {
    if (SESSIONS == null) {
      return 0;
    }
    try {
      InferenceSession session = ((Map<Long, InferenceSession>) SESSIONS.get(sd)).get(Thread.currentThread().getId());
      return session != null && session.getMmgr() instanceof RowMajorArrayCache c ? c.reclaimExcept(results) : 0;
    } catch (IllegalAccessException | ClassCastException e) {
      return 0;
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
}
