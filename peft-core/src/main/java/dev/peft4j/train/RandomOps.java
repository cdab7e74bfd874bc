package dev.peft4j.train;

import java.util.List;
import java.util.function.LongSupplier;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Listener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.ops.OpContext;

/**
 * Reproducible random ops (the dropout masks): {@link #seed} draws each op's mask from a step seed and the op's name,
 * {@link #distinct} gives data-parallel replicas masks of their own.
 *
 * <p>The listeners receive a {@code SameDiffOp} through SameDiff's listener API; they read its name and op type only.
 */
public final class RandomOps {

  private RandomOps() {}

  /** The scope of {@link #seed}; closing it removes the seeding listener. */
  @FunctionalInterface
  public interface Seeding extends AutoCloseable {
    @Override
    void close();
  }

  /**
   * Makes ND4J's random ops (the dropout masks) reproducible and fresh per step while the returned scope is open.
   * In ND4J 1.0.0-M2.1 an inference session creates each op's native context once, with a random state that
   * {@code Nd4j.getRandom().setSeed} does not reach and that no execution advances: every call would draw the same,
   * unseeded mask. This listener sets each random op's state before it runs, from {@code seed.getAsLong()} (which the
   * caller changes per micro-batch) mixed with the op's name, so that two modules never share a mask.
   */
  public static Seeding seed(SameDiff sameDiff, LongSupplier seed) {
    List<Listener> before = sameDiff.getListeners() == null ? List.of() : List.copyOf(sameDiff.getListeners());
    sameDiff.addListeners(new RandomOpListener() {
      @Override
      void beforeRandomOp(SameDiffOp op, OpContext context) {
        long root = mix(seed.getAsLong() ^ mix(op.getName().hashCode()));
        context.setRngStates(root, mix(root));
      }
    });
    return () -> sameDiff.setListeners(before);
  }

  /**
   * A listener that mixes {@code salt} into the state each random op was given by the listeners before it (such as
   * {@link #seed}'s): copies of a graph that run the same ops on other data (data-parallel replicas) then draw their
   * own masks, still reproducibly. A salt of 0 changes nothing.
   */
  public static Listener distinct(long salt) {
    long mixed = salt == 0 ? 0 : mix(salt);
    return new RandomOpListener() {
      @Override
      void beforeRandomOp(SameDiffOp op, OpContext context) {
        Pair<Long, Long> states = context.getRngStates();
        context.setRngStates(states.getFirst() ^ mixed, states.getSecond() ^ Long.rotateLeft(mixed, 17));
      }
    };
  }

  /** A listener that acts just before each of ND4J's random ops runs (those have a native context then). */
  private abstract static class RandomOpListener extends BaseListener {
    @Override
    public boolean isActive(Operation operation) {
      return true;
    }

    @Override
    public void preOpExecution(SameDiff sd, At at, SameDiffOp op, OpContext context) {
      if (context != null && op.getOp().opName().startsWith("random")) {
        beforeRandomOp(op, context);
      }
    }

    abstract void beforeRandomOp(SameDiffOp op, OpContext context);
  }

  /** SplitMix64's finaliser: a well-spread 64-bit hash. */
  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }
}
