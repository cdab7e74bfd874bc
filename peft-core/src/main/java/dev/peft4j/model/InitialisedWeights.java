package dev.peft4j.model;

import com.google.common.collect.ImmutableMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A checkpoint plus freshly initialised linear modules it lacks, as transformers initialises the head of a task model
 * loaded from a base checkpoint: W normal(0, 0.02) ({@code initializer_range}), b zero.
 */
final class InitialisedWeights implements Weights {

  private final Weights weights;
  private final Random random;
  private final ImmutableMap<String, INDArray> fresh; // PyTorch layout: weight [out, in], bias [out]

  InitialisedWeights(Weights weights, Random random) {
    this(weights, random, ImmutableMap.of());
  }

  private InitialisedWeights(Weights weights, Random random, ImmutableMap<String, INDArray> fresh) {
    this.weights = weights;
    this.random = random;
    this.fresh = fresh;
  }

  /** These weights, with linear module {@code module} ({@code in → out}) initialised when the checkpoint lacks it. */
  InitialisedWeights withDefault(String module, long in, long out) {
    if (weights.has(module + ".weight")) {
      return this;
    }
    Map<String, INDArray> more = new LinkedHashMap<>(fresh);
    more.put(module + ".weight", Heads.normal(random, 0.02, out, in));
    more.put(module + ".bias", Nd4j.zeros(DataType.FLOAT, out));
    return new InitialisedWeights(weights, random, ImmutableMap.copyOf(more));
  }

  @Override
  public boolean has(String name) {
    return fresh.containsKey(name) || weights.has(name);
  }

  @Override
  public Set<String> names() {
    return weights.names();
  }

  @Override
  public INDArray tensor(String name) {
    return fresh.containsKey(name) ? fresh.get(name) : weights.tensor(name);
  }

  @Override
  public INDArray linearWeight(String module) {
    INDArray w = fresh.get(module + ".weight");
    return w != null ? w.transpose().dup('c') : weights.linearWeight(module);
  }
}
