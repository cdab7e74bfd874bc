package dev.peft4j.hybrid;

import dev.peft4j.AbstractAdapter;
import dev.peft4j.Adapter;
import dev.peft4j.graph.GraphRewriter;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/** What {@link Hybrid} and {@link MergeableHybrid} share: every life-cycle step is the parts' step. */
abstract class AbstractHybrid extends AbstractAdapter<HybridConfig> {

  final Parts parts;

  AbstractHybrid(String name, HybridConfig config, List<Adapter> parts) {
    super(name, config);
    this.parts = new Parts(name, parts);
  }

  /** The parts, in the order they are applied; part i is named {@code <adapter>/part<i>}. */
  public List<Adapter> parts() {
    return parts.all();
  }

  @Override
  protected void build(SameDiff sameDiff, GraphRewriter g) {
    parts.build(sameDiff, config().modulesToSave(), training());
  }

  @Override
  protected void attach() {
    parts.attach();
  }

  @Override
  protected void detach() {
    parts.detach();
  }

  @Override
  protected void remove() {
    parts.remove();
  }

  @Override
  protected List<String> parameters() {
    return parts.parameters();
  }

  @Override
  protected Map<String, INDArray> ownStateDict() {
    return parts.stateDict();
  }

  @Override
  protected void loadOwnStateDict(Map<String, INDArray> tensors) {
    parts.loadStateDict(tensors);
  }

  @Override
  protected void trainingChanged() {
    parts.setTraining(training());
  }
}
