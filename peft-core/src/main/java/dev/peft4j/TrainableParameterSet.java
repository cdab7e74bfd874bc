package dev.peft4j;

import com.google.common.collect.ImmutableMap;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Exactly the variables that train, with their element counts read off their arrays, and the size of the whole
 * graph they belong to. Built from the variables a rewrite created, never by matching names.
 *
 * <p>{@link #toString()} prints the line Hugging Face PEFT's {@code print_trainable_parameters()} prints:
 * {@code trainable params: 147,456 || all params: 22,860,672 || trainable%: 0.6450}.
 */
public final class TrainableParameterSet {

  private final ImmutableMap<String, long[]> shapes; // name -> shape, in creation order
  private final long trainable;
  private final long all;

  private TrainableParameterSet(ImmutableMap<String, long[]> shapes, long all) {
    this.shapes = shapes;
    this.trainable = shapes.values().stream().mapToLong(TrainableParameterSet::elements).sum();
    this.all = all;
  }

  /**
   * The set of the named variables of {@code sameDiff}, sized from their arrays.
   *
   * @throws IllegalArgumentException if a name is not an array-backed variable of the graph
   */
  public static TrainableParameterSet of(SameDiff sameDiff, Collection<String> names) {
    ImmutableMap.Builder<String, long[]> shapes = ImmutableMap.builder();
    for (String name : names) {
      INDArray array = sameDiff.hasVariable(name) ? sameDiff.getArrForVarName(name) : null;
      if (array == null) {
        throw new IllegalArgumentException(String.format("'%s' is not an array-backed variable of the graph", name));
      }
      shapes.put(name, array.shape());
    }
    return new TrainableParameterSet(shapes.buildOrThrow(), parameterCount(sameDiff));
  }

  /** The name scope of an adapter's frozen buffers, inside its method's scope; they are not counted as parameters. */
  public static final String BUFFER_SCOPE = "buffer/";

  /**
   * All parameters of the graph, as Hugging Face counts every {@code nn.Parameter} of the model: the elements of
   * every {@code VARIABLE}, and of every {@code CONSTANT} that looks like a frozen parameter — at least rank 1 and
   * named like a module parameter ({@code module.param} or {@code peft/...}). Scalars and unnamed constants that
   * ops create (a loss's smoothing factor, say) are not parameters, nor are an adapter's buffers (constants under
   * {@code peft/<adapter>/<method>/}{@value #BUFFER_SCOPE}, such as VeRA's shared projections, which torch keeps as
   * buffers too).
   */
  public static long parameterCount(SameDiff sameDiff) {
    long total = 0;
    for (SDVariable v : sameDiff.variables()) {
      INDArray array = v.getArr();
      if (array == null) {
        continue;
      }
      boolean parameterLike = array.rank() >= 1 && (v.name().contains(".") || v.name().startsWith("peft/"))
          && !(v.name().startsWith("peft/") && v.name().contains("/" + BUFFER_SCOPE));
      if (v.getVariableType() == VariableType.VARIABLE
          || (v.getVariableType() == VariableType.CONSTANT && parameterLike)) {
        total += array.length();
      }
    }
    return total;
  }

  /** Names of the trainable variables, in the order the rewrite created them. */
  public List<String> names() {
    return shapes.keySet().asList();
  }

  /** Shape of each trainable variable. */
  public Map<String, long[]> shapes() {
    return shapes.entrySet().stream()
        .collect(ImmutableMap.toImmutableMap(Map.Entry::getKey, e -> e.getValue().clone()));
  }

  /** Number of trainable scalars. */
  public long count() {
    return trainable;
  }

  /** Number of scalars in the whole graph, trainable or not. */
  public long allParameters() {
    return all;
  }

  /** {@code 100 · count / allParameters}. */
  public double percent() {
    return all == 0 ? 0 : 100.0 * trainable / all;
  }

  public boolean isEmpty() {
    return shapes.isEmpty();
  }

  /** The union of this set and {@code other} (which must describe the same graph). */
  public TrainableParameterSet union(TrainableParameterSet other) {
    ImmutableMap.Builder<String, long[]> merged = ImmutableMap.builder();
    merged.putAll(shapes);
    other.shapes.forEach((k, v) -> {
      if (!shapes.containsKey(k)) {
        merged.put(k, v);
      }
    });
    return new TrainableParameterSet(merged.buildOrThrow(), Math.max(all, other.all));
  }

  /** An empty set over a graph of {@code allParameters} scalars. */
  public static TrainableParameterSet empty(long allParameters) {
    return new TrainableParameterSet(ImmutableMap.of(), allParameters);
  }

  @Override
  public String toString() {
    return String.format(Locale.ROOT, "trainable params: %,d || all params: %,d || trainable%%: %.4f",
        trainable, all, percent());
  }

  private static long elements(long[] shape) {
    return Arrays.stream(shape).reduce(1, (a, b) -> a * b);
  }
}
