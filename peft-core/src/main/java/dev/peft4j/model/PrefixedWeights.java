package dev.peft4j.model;

import java.util.Set;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A task model's view of a checkpoint: {@code prefix + name} (the task model's name, {@code bert.encoder…}) is looked
 * up as itself, else as {@code name}, so a bare {@code BertModel} checkpoint feeds a
 * {@code BertForSequenceClassification} graph.
 */
final class PrefixedWeights implements Weights {

  private final String prefix;
  private final Weights weights;

  PrefixedWeights(String prefix, Weights weights) {
    this.prefix = prefix;
    this.weights = weights;
  }

  @Override
  public boolean has(String name) {
    return weights.has(name) || weights.has(stripped(name));
  }

  @Override
  public Set<String> names() {
    return weights.names();
  }

  @Override
  public INDArray tensor(String name) {
    return weights.has(name) ? weights.tensor(name) : weights.tensor(stripped(name));
  }

  @Override
  public INDArray linearWeight(String module) {
    return weights.has(module + ".weight") ? weights.linearWeight(module) : weights.linearWeight(stripped(module));
  }

  private String stripped(String name) {
    return name.startsWith(prefix) ? name.substring(prefix.length()) : name;
  }
}
