package dev.peft4j.lora;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.AbstractMergeableAdapter;
import dev.peft4j.graph.Branches;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.model.Conv1dModules;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.nd4j.autodiff.samediff.NameScope;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.controlflow.compat.StopGradient;

/**
 * Weight-decomposed low-rank adaptation: each targeted linear layer's weight becomes a trained magnitude times the
 * unit-norm direction of {@code W + s·A·B}, computed from activations as Hugging Face PEFT does.
 * <pre>
 *   x: [n, in]   W: [in, out]   A: [in, r]   B: [r, out]   m: [out]   g = m / ‖W + s·A·B‖  (norm of each column)
 *   y' = y + (g − 1) ⊙ (x·W) + g ⊙ s·(dropout(x)·A)·B           y = x·W + b, the module's output
 *   merge: W ← g ⊙ (W + s·A·B)  (each column scaled)    unmerge: W ← the weight kept at merge
 * </pre>
 * The norm is a constant to the gradient ({@code stop_gradient}), as the paper (§4.3) and Hugging Face prescribe.
 * The branch of module {@code mod} lives under {@code peft/<adapter>/dora/<mod>/}: {@code lora_A}, {@code lora_B},
 * {@code lora_magnitude_vector} and the ops of the norm, the rescaling and the sum. Every reader of the module's
 * output reads the sum instead; disabling points them back (the branch stays, unread).
 *
 * @see LoraConfig#useDora()
 * @see <a href="https://arxiv.org/abs/2402.09353">Liu et al. 2024, DoRA: Weight-Decomposed Low-Rank Adaptation</a>
 */
public final class Dora extends AbstractMergeableAdapter<LoraConfig> {

  /**
   * One adapted linear layer; {@code baseProductOp} multiplies {@code (g − 1)} by x·W, read from {@code baseProduct}
   * (the module's output less its bias) or, while training with dropout, from {@code droppedBaseProduct}.
   */
  private record Layer(LinearModule module, LowRank branch, String magnitude, String baseProductOp,
      String baseProduct, String droppedBaseProduct, String sum) {}

  /** A weight as it was before merging, the value merging wrote, and the factor g it used. */
  private record Kept(INDArray original, INDArray merged, INDArray scale) {}

  private final Branches<Layer> layers = branches();
  /** By weight name, while merged: what {@link #unmerge()} needs to restore the weights exactly. */
  private final Map<String, Kept> unmerged = new HashMap<>();

  Dora(String name, LoraConfig config) {
    super(name, config);
  }

  @Override
  protected void build(SameDiff sameDiff, GraphRewriter g) {
    List<LinearModule> modules = config().targets().selectLinear(g, "DoRA");
    LowRank.checkTargets(modules, config().modulesToSave(), "DoRA");
    boolean fanInFanOut = Conv1dModules.fanInFanOut(sameDiff, modules, config().fanInFanOut(), "DoRA");
    for (LinearModule m : modules) { // a rank above min(in, out) only adds parameters: B·A cannot exceed that rank
      checkArgument(config().r() <= Math.min(m.inFeatures(), m.outFeatures()),
          "DoRA rank r=%s exceeds min(in, out) = %s of module '%s' (weight [in, out] = [%s, %s])", config().r(),
          Math.min(m.inFeatures(), m.outFeatures()), m.name(), m.inFeatures(), m.outFeatures());
    }
    updateConfig(config().withFanInFanOut(fanInFanOut));
    Random random = new Random(config().seed());
    for (LinearModule m : modules) {
      insert(sameDiff, g, m, random);
    }
  }

  private void insert(SameDiff sameDiff, GraphRewriter g, LinearModule m, Random random) {
    LoraConfig config = config();
    DataType dataType = sameDiff.getVariable(m.weight()).dataType();
    INDArray m0 = sameDiff.getArrForVarName(m.weight()).norm2(0).castTo(dataType);      // [out]: ‖W‖ per column
    layers.splice(g, m.output(), () -> {
      String scope = scope("dora") + m.name();
      try (NameScope ignored = sameDiff.withNameScope(scope)) { // names the ops; variables are named in full
        LowRank low = LowRank.build(sameDiff, scope, m, config.r(), config.scaling(), config.dropout(), random,
            training());
        SDVariable w = sameDiff.getVariable(m.weight());                                  // [in, out]
        SDVariable a = sameDiff.getVariable(low.a());                                     // [in, r]
        SDVariable b = sameDiff.getVariable(low.b());                                     // [r, out]
        SDVariable magnitude = sameDiff.var(scope + "/lora_magnitude_vector", m0);        // [out]
        // the norm is detached from the gradient graph, as the DoRA paper (§4.3) and Hugging Face PEFT do
        SDVariable norm = sameDiff.norm2(w.add(a.mmul(b).mul(config.scaling())), 0);     // [out]
        SDVariable scale = magnitude.div(new StopGradient(sameDiff, norm).outputVariable()); // [out]: g
        SDVariable output = sameDiff.getVariable(m.output());                             // [n, out]: x·W + b
        SDVariable base = m.hasBias() ? output.sub(sameDiff.getVariable(m.bias())) : output; // [n, out]: x·W
        SDVariable droppedBase = null;
        if (low.droppedInput() != null) { // while training, Hugging Face recomputes x·W from the dropped input
          // a variable of the branch's own: the module's output changes names when the branch is spliced in
          base = m.hasBias() ? base : sameDiff.identity(output);                              // [n, out]
          // one xw_plus_b, whose gradient never computes the frozen W's; its zero bias is computed, not a parameter
          SDVariable zero = sameDiff.zerosLike(magnitude);                                   // [out]
          droppedBase = sameDiff.nn.linear(sameDiff.getVariable(low.droppedInput()), w, zero); // [n, out]
        }
        SDVariable product = scale.sub(1.0).mul(training() && droppedBase != null ? droppedBase : base); // [n, out]
        SDVariable delta = product.add(scale.mul(sameDiff.getVariable(low.update())));      // [n, out]
        // named for what it will hold once spliced in: the module's original output
        SDVariable sum = output.add(scope + "/base_output", delta);                          // [n, out]
        return new Layer(m, low, magnitude.name(), sameDiff.getVariableOutputOp(product.name()).getOwnName(),
            base.name(), droppedBase == null ? null : droppedBase.name(), sum.name());
      }
    }, Layer::sum);
  }

  @Override
  protected void remove() {
    super.remove();
    unmerged.clear();
  }

  @Override
  protected List<String> parameters() {
    List<String> names = new ArrayList<>();
    for (Layer l : layers.parts()) {
      names.add(l.branch().a());
      names.add(l.branch().b());
      names.add(l.magnitude());
    }
    return names;
  }

  /**
   * {@code <module>.lora_A.weight [r, in]}, {@code <module>.lora_B.weight [out, r]} and
   * {@code <module>.lora_magnitude_vector [out]}, Hugging Face PEFT's keys.
   */
  @Override
  protected Map<String, INDArray> ownStateDict() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (Layer l : layers.parts()) {
      l.branch().putStateDict(sd(), l.module().name(), out);
      out.put(l.module().name() + ".lora_magnitude_vector", sd().getArrForVarName(l.magnitude()).dup());
    }
    return out;
  }

  @Override
  protected void loadOwnStateDict(Map<String, INDArray> tensors) {
    for (Layer l : layers.parts()) {
      l.branch().load(sd(), l.module().name(), tensors);
      INDArray m = sd().getArrForVarName(l.magnitude());
      m.assign(tensors.get(l.module().name() + ".lora_magnitude_vector").reshape(m.length()).castTo(m.dataType()));
    }
  }

  @Override
  protected void trainingChanged() {
    for (Layer l : layers.parts()) {
      l.branch().setTraining(graph(), training());
      if (l.droppedBaseProduct() != null) {
        graph().setInput(l.baseProductOp(), 1, training() ? l.droppedBaseProduct() : l.baseProduct());
      }
    }
  }

  /**
   * {@code g ⊙ (W + s·A·B)} per layer, with g from the weight as it is now (unmerged); keeps that weight, the merged
   * value and g so that {@link #unmerge()} can restore the weight exactly.
   */
  @Override
  protected List<MergedWeight> mergedWeights() {
    List<MergedWeight> merged = new ArrayList<>();
    unmerged.clear();
    for (Layer l : layers.parts()) {
      INDArray w = sd().getArrForVarName(l.module().weight());                          // [in, out]
      INDArray direction = w.add(l.branch().delta(sd()));                               // [in, out]: W + s·A·B
      INDArray scale = sd().getArrForVarName(l.magnitude()).div(direction.norm2(0));   // [out]: g
      INDArray value = direction.muliRowVector(scale);                                  // [in, out]
      merged.add(new MergedWeight(l.module().weight(), value));
      unmerged.put(l.module().weight(), new Kept(w.dup(), value.dup(), scale));
    }
    return merged;
  }

  /**
   * Puts back the weight kept at merge when the weight still holds what merge wrote; otherwise (another adapter
   * merged into the same weight since) takes this update out as Hugging Face does, {@code W/g − s·A·B}.
   */
  @Override
  protected void unmergeWeights() {
    for (Layer l : layers.parts()) {
      Kept kept = unmerged.get(l.module().weight());
      INDArray w = sd().getArrForVarName(l.module().weight());
      if (w.sub(kept.merged()).amaxNumber().doubleValue() == 0) { // exactly; INDArray.equals allows 1e-5
        w.assign(kept.original());
      } else {
        w.diviRowVector(kept.scale()).subi(l.branch().delta(sd()));
      }
    }
    unmerged.clear();
  }

  /** The names of the modules this adapter adapted, in graph order. */
  public List<String> adaptedModules() {
    return layers.parts().stream().map(l -> l.module().name()).toList();
  }
}
