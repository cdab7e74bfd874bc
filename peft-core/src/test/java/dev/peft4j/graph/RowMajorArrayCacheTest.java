package dev.peft4j.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import org.nd4j.linalg.api.shape.LongShapeDescriptor;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;

class RowMajorArrayCacheTest {

  /** Four chained {@code xw_plus_b} of one shape: from the second run on, their outputs come from the cache. */
  private static SameDiff chain() {
    Nd4j.getRandom().setSeed(3);
    SameDiff sd = SameDiff.create();
    SDVariable h = sd.placeHolder("x", DataType.FLOAT, -1, 8);
    for (int i = 0; i < 4; i++) {
      h = sd.nn.linear(h, sd.constant(Nd4j.rand(DataType.FLOAT, 8, 8)), sd.constant(Nd4j.rand(DataType.FLOAT, 8)))
          .add(0.5);
    }
    h.rename("out");
    return sd;
  }

  /** The order flags of every op output over three runs. */
  private static List<Character> orders(SameDiff sd, Map<String, INDArray> x, List<INDArray> results) {
    List<Character> orders = new ArrayList<>();
    sd.setListeners(new BaseListener() {
      @Override
      public boolean isActive(Operation operation) {
        return true;
      }

      @Override
      public void opExecution(SameDiff s, At at, MultiDataSet batch, SameDiffOp op, OpContext ctx,
          INDArray[] outputs) {
        for (INDArray o : outputs) {
          orders.add(o.ordering());
        }
      }
    });
    for (int run = 0; run < 3; run++) {
      results.add(sd.output(x, "out").get("out").dup());
    }
    return orders;
  }

  @Test
  void theSessionsSetOfReleasedIdsIsEmptiedBeforeEachRun() throws IllegalAccessException {
    Map<String, INDArray> x = Map.of("x", Nd4j.rand(DataType.FLOAT, 5, 8));
    SameDiff plain = chain();
    RowMajorArrayCache.install(plain); // once: creates the session, then ND4J runs alone
    List<Integer> grows = new ArrayList<>();
    SameDiff sd = chain();
    List<Integer> sizes = new ArrayList<>();
    for (int run = 0; run < 4; run++) {
      plain.output(x, "out");
      grows.add(RowMajorArrayCache.releasedIds(plain));
      RowMajorArrayCache.install(sd);
      sd.output(x, "out");
      sizes.add(RowMajorArrayCache.releasedIds(sd));
    }
    assertTrue(grows.get(3) > grows.get(2) && grows.get(2) > grows.get(1), "ND4J alone: the set grows " + grows);
    assertTrue(sizes.get(0) > 0, "the run released arrays: " + sizes);
    assertEquals(List.of(sizes.get(1), sizes.get(1)), sizes.subList(2, 4), "steady, run after run: " + sizes);
    assertTrue(sizes.stream().allMatch(n -> n <= sizes.get(0)), "never above the first run's: " + sizes);
  }

  @Test
  void everyReusedArrayIsRowMajorAndTheValuesAreUnchanged() {
    assertTrue(RowMajorArrayCache.sessionsReachable());
    Map<String, INDArray> x = Map.of("x", Nd4j.rand(DataType.FLOAT, 5, 8));
    List<INDArray> plain = new ArrayList<>();
    List<Character> nd4jOrders = orders(chain(), x, plain);
    assertTrue(nd4jOrders.contains('f'), "ND4J M2.1's own cache hands out 'f'-flagged arrays: " + nd4jOrders);

    SameDiff sd = chain();
    RowMajorArrayCache.install(sd);
    List<INDArray> ours = new ArrayList<>();
    List<Character> ourOrders = orders(sd, x, ours);
    assertEquals(List.of('c'), ourOrders.stream().distinct().toList(), "orders: " + ourOrders);
    for (int run = 0; run < 3; run++) {
      assertEquals(plain.get(run), ours.get(run), "run " + run);
    }
  }

  /** {@code out = tanh(reshape(x·W))}: the reshape's output is a view of the product, as on MiniLM's path. */
  private static SameDiff withView() {
    Nd4j.getRandom().setSeed(5);
    SameDiff sd = SameDiff.create();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, 32, 64);
    SDVariable y = x.mmul(sd.constant(Nd4j.rand(DataType.FLOAT, 64, 64).subi(0.5).muli(0.2))); // tanh not saturated
    sd.math.tanh(y.reshape(32, 2, 32)).rename("out");
    return sd;
  }

  /**
   * An array the session was handed during a run and never released (as M2.1's session did with the buffers under
   * views before the ids were kept unique, and still does with a few arrays of a MiniLM step) goes back to the cache
   * after the run; the run's results stay valid through later runs.
   */
  @Test
  void reclaimReturnsWhatTheRunLeftBehindAndKeepsTheResults() {
    INDArray x1 = Nd4j.rand(DataType.FLOAT, 32, 64);
    INDArray x2 = Nd4j.rand(DataType.FLOAT, 32, 64);
    SameDiff plain = withView();
    INDArray expected1 = plain.output(Map.of("x", x1), "out").get("out").dup();
    INDArray expected2 = plain.output(Map.of("x", x2), "out").get("out").dup();

    SameDiff sd = withView();
    RowMajorArrayCache cache = new RowMajorArrayCache();
    LongShapeDescriptor leftShape = LongShapeDescriptor.fromShape(new long[] {100, 10}, DataType.FLOAT);
    List<Long> reclaimed = new ArrayList<>();
    List<INDArray> results = new ArrayList<>();
    for (INDArray x : List.of(x1, x2, x1)) {
      RowMajorArrayCache.install(sd, cache);
      cache.allocate(false, leftShape); // handed out during the run, never released
      Map<String, INDArray> out = sd.output(Map.of("x", x), "out");
      reclaimed.add(RowMajorArrayCache.reclaim(sd, List.of(out.get("out"))));
      results.add(out.get("out"));
    }
    assertTrue(reclaimed.stream().allMatch(b -> b >= 100 * 10 * 4), "bytes reclaimed: " + reclaimed);
    assertTrue(reclaimed.stream().allMatch(b -> b < 100 * 10 * 4 + 32 * 64 * 4), "never a result: " + reclaimed);
    assertEquals(expected1, results.get(0), "the first run's result, after two more runs");
    assertEquals(expected2, results.get(1), "the second run's result, after one more run");
    assertEquals(expected1, results.get(2));
    assertNotEquals(expected1, expected2);
  }

  @Test
  void anArrayMadeAfterAReuseGetsAnIdOfItsOwn() {
    RowMajorArrayCache cache = new RowMajorArrayCache();
    LongShapeDescriptor shape = LongShapeDescriptor.fromShape(new long[] {3, 4}, DataType.FLOAT);
    INDArray first = cache.allocate(false, shape);
    cache.release(first);
    INDArray reused = cache.allocate(false, shape);
    assertSame(first, reused, "a hit");
    INDArray made = Nd4j.createUninitializedDetached(DataType.FLOAT, 7);
    assertNotEquals(reused.getId(), made.getId(), "ND4J M2.1 alone gives both the same id");
    INDArray reusedAgain = reuse(cache, cache.allocate(false, DataType.FLOAT, 2, 2));
    assertNotEquals(reusedAgain.getId(), Nd4j.createUninitializedDetached(DataType.FLOAT, 7).getId());
  }

  private static INDArray reuse(RowMajorArrayCache cache, INDArray a) {
    cache.release(a);
    return cache.allocate(false, DataType.FLOAT, 2, 2);
  }

  /**
   * A gradient run whose first pass fills the cache while it runs (reused arrays and new ones mixed): every array the
   * session is done with goes back to the cache during the run, the first run as the later ones, so the first run
   * leaves no more behind than the second (with M2.1's clashing ids it left most of the layers' arrays).
   */
  @Test
  void theFirstRunReleasesAsMuchAsTheLaterOnes() {
    Nd4j.getRandom().setSeed(11);
    SameDiff sd = SameDiff.create();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, 64, 32);
    SDVariable h = x;
    for (int i = 0; i < 6; i++) {
      SDVariable w = sd.var("w" + i, Nd4j.rand(DataType.FLOAT, 32, 32).subi(0.5).muli(0.3));
      h = sd.math.tanh(h.mmul(w)).mul(0.9).add(h);
    }
    h.mul(h).mean().rename("loss");
    sd.setLossVariables("loss");
    sd.createGradFunction();
    SameDiff grad = sd.getFunction("grad");
    Map<String, INDArray> feed = Map.of("x", Nd4j.rand(DataType.FLOAT, 64, 32));
    List<Long> leftBehind = new ArrayList<>();
    for (int run = 0; run < 3; run++) {
      RowMajorArrayCache.install(grad);
      Map<String, INDArray> out = grad.output(feed, "w0-grad");
      leftBehind.add(RowMajorArrayCache.reclaim(grad, out.values()));
    }
    assertEquals(leftBehind.get(1), leftBehind.get(2), "steady from the second run: " + leftBehind);
    assertTrue(leftBehind.get(0) <= leftBehind.get(1), "bytes left behind per run: " + leftBehind);
  }

  /** Batches of another shape for more than three runs: the first shape's cached arrays are freed, not kept for good. */
  @Test
  void arraysOfAShapeNoRecentRunAskedForAreFreed() {
    SameDiff sd = chain();
    RowMajorArrayCache cache = new RowMajorArrayCache();
    List<Integer> smallPool = new ArrayList<>();
    for (int rows : new int[] {5, 5, 9, 9, 9, 9, 5}) {
      RowMajorArrayCache.install(sd, cache);
      Map<String, INDArray> out = sd.output(Map.of("x", Nd4j.rand(DataType.FLOAT, rows, 8)), "out");
      RowMajorArrayCache.reclaim(sd, out.values());
      List<INDArray> pool = cache.getArrays().get(DataType.FLOAT, "[5, 8]");
      smallPool.add(pool == null ? 0 : pool.size());
    }
    assertTrue(smallPool.get(0) > 0 && smallPool.get(3) > 0, "kept while recent runs asked for it: " + smallPool);
    assertEquals(0, smallPool.get(5), "freed after three runs without it: " + smallPool);
    assertTrue(smallPool.get(6) > 0, "and cached again once asked for: " + smallPool);
    long bytes = cache.getArrays().values().stream().flatMap(List::stream).mapToLong(a -> a.length() * 4).sum();
    assertEquals(bytes, cache.getCurrentCacheSize(), "the cache's count follows what it holds");
  }
}
