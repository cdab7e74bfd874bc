package dev.peft4j.graph;

import static com.google.common.base.Preconditions.checkArgument;

import java.lang.reflect.Field;
import org.nd4j.autodiff.samediff.ArrayHolder;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.array.ThreadSafeArrayHolder;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Where a graph keeps its weight and constant arrays, so that each is kept once.
 *
 * <p>SameDiff 1.0.0-M2.1 keeps them in {@code ThreadSafeArrayHolder(lazyInit = true)}: each array goes into a
 * {@code DeviceLocalNDArray} in delayed mode, which stores the array and also a full duplicate ({@code delayedArray})
 * for the devices that have not read it yet. With one device nothing ever reads or frees that duplicate, so a graph
 * holds every weight twice (MiniLM: +86 MiB), and every copy of it ({@link GraphCopies}) once more. An eager holder
 * ({@code lazyInit = false}) stores the same array object for the one device, with the same locking, and no
 * duplicate.
 *
 * <p>The second trap is {@link SameDiff#setArrayForVariable}: given an array of the held one's shape, a
 * {@code ThreadSafeArrayHolder} copies the values into the array it holds instead of holding the given one.
 * {@link #hold} holds the given array itself.
 */
public final class ArrayHolders {

  private static final Field LAZY_INIT = PrivateFields.field(ThreadSafeArrayHolder.class, "lazyInit");

  private ArrayHolders() {}

  /**
   * Moves {@code sd}'s variable and constant arrays (the same objects) into eager holders, when ND4J has a single
   * device; with several (GPUs) an eager holder would copy every array to each device at once, so the lazy one stays.
   * Nothing changes for holders that are not lazy (a gradient function's {@code SingleThreadArrayHolder}s, a graph
   * already moved), so it may be called again. Outputs are unchanged: only where the arrays are kept moves.
   *
   * @return {@code sd}
   */
  public static SameDiff keepEachArrayOnce(SameDiff sd) {
    if (Nd4j.getAffinityManager().getNumberOfDevices() == 1 && hasLazyHolder(sd)) {
      sd.setArrayHolders(new ThreadSafeArrayHolder(false), new ThreadSafeArrayHolder(false), true);
    }
    return sd;
  }

  /**
   * Makes {@code sd} hold {@code array} itself for its variable or constant {@code name} (nothing happens if it
   * already does). Not atomic: the graph must not run on another thread meanwhile.
   *
   * @throws IllegalArgumentException if {@code name} is not a variable or constant of {@code sd}, or {@code array}'s
   *     data type is not the variable's (naming both)
   */
  public static void hold(SameDiff sd, String name, INDArray array) {
    SDVariable v = sd.getVariable(name);
    checkArgument(v != null, "the graph has no variable '%s'", name);
    VariableType type = v.getVariableType();
    checkArgument(type == VariableType.VARIABLE || type == VariableType.CONSTANT,
        "'%s' is a %s; only variables and constants hold arrays", name, type);
    checkArgument(v.dataType() == array.dataType(), "'%s' is %s, the array %s", name, v.dataType(),
        array.dataType());
    ArrayHolder holder = type == VariableType.VARIABLE ? sd.getVariablesArrays() : sd.getConstantArrays();
    if (holder.getArray(name) != array) {
      holder.removeArray(name); // so that setArray stores the array instead of copying into the one held
      holder.setArray(name, array);
    }
  }

  /** Whether {@code sd} keeps its variables or constants in a lazy holder, which duplicates each array. */
  static boolean hasLazyHolder(SameDiff sd) {
    return isLazy(sd.getVariablesArrays()) || isLazy(sd.getConstantArrays());
  }

  /** A {@code ThreadSafeArrayHolder} whose laziness cannot be read counts as lazy: replacing it costs nothing. */
  private static boolean isLazy(ArrayHolder holder) {
    if (!(holder instanceof ThreadSafeArrayHolder)) {
      return false;
    }
    try {
      return LAZY_INIT == null || LAZY_INIT.getBoolean(holder);
    } catch (IllegalAccessException e) {
      return true;
    }
  }
}
