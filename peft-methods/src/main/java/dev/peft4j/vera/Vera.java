package dev.peft4j.vera;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.AbstractMergeableAdapter;
import dev.peft4j.TrainableParameterSet;
import dev.peft4j.graph.Branches;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.GraphRewriter.Created;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.rng.TorchGenerator;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.NameScope;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.random.custom.RandomBernoulli;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * VeRA: one pair of frozen random projections shared by every targeted layer, and two trainable vectors per layer.
 * See the package documentation for the math.
 *
 * <p>The projections are constants {@code peft/<adapter>/vera/buffer/vera_A} ({@code [max_in, r]}, Aᵀ) and
 * {@code vera_B} ({@code [r, max_out]}, Bᵀ); layer {@code m} reads slices of them and owns the variables
 * {@code peft/<adapter>/vera/<m>/vera_lambda_d} ({@code [r]}) and {@code vera_lambda_b} ({@code [out]}). The branch
 * is spliced in after the module as LoRA's is.
 */
public final class Vera extends AbstractMergeableAdapter<VeraConfig> {

  /** One adapted layer. */
  private record Layer(LinearModule module, String d, String b, String droppedInput, String firstMatmulOp,
      String sum) {}

  private final Branches<Layer> layers = branches();
  private String sharedA;
  private String sharedB;
  private Created shared;

  Vera(String name, VeraConfig config) {
    super(name, config);
  }

  /** The most values one projection may hold: the largest Java array, 2³¹ − 9. */
  private static final long MAX_INIT_VALUES = Integer.MAX_VALUE - 8;

  @Override
  protected void build(SameDiff sameDiff, GraphRewriter g) {
    List<LinearModule> modules = config().targets().selectLinear(g, "VeRA");
    for (LinearModule m : modules) {
      checkState(!m.output().startsWith("peft/"), "module '%s' carries an enabled adapter ('%s'); disable it first "
          + "(PeftModel.addAdapter does)", m.name(), m.output());
    }
    long maxIn = modules.stream().mapToLong(LinearModule::inFeatures).max().orElseThrow();
    long maxOut = modules.stream().mapToLong(LinearModule::outFeatures).max().orElseThrow();
    DataType type = sameDiff.getVariable(modules.get(0).weight()).dataType();
    long widest = Math.max(maxIn, maxOut); // each projection is drawn into one Java array: refuse by name, not overflow
    checkArgument((long) config().r() * widest <= MAX_INIT_VALUES, "VeRA r = %s needs r·%s = %s values in a shared "
        + "projection; at most %s are supported", config().r(), widest, (long) config().r() * widest,
        MAX_INIT_VALUES);
    INDArray[] ab = projections(config().projectionSeed(), config().r(), maxIn, maxOut);
    String scope = scope("vera") + TrainableParameterSet.BUFFER_SCOPE; // buffers, as in torch: not parameters
    shared = g.capture(() -> {
      sharedA = sameDiff.constant(scope + "vera_A", ab[0].transpose().castTo(type).dup('c')).name(); // [max_in, r]
      sharedB = sameDiff.constant(scope + "vera_B", ab[1].transpose().castTo(type).dup('c')).name(); // [r, max_out]
    });
    for (LinearModule m : modules) {
      insert(sameDiff, g, m, maxIn, maxOut);
    }
  }

  /**
   * Hugging Face's projections for {@code seed}: A {@code [r, max_in]}, then B {@code [max_out, r]}, each
   * {@code uniform(−√6/√fan_in, √6/√fan_in)} from one torch generator (kaiming-uniform, gain √2), in float32.
   */
  static INDArray[] projections(long seed, int r, long maxIn, long maxOut) {
    TorchGenerator generator = new TorchGenerator(seed);
    INDArray a = Nd4j.create(generator.uniform(Math.toIntExact(r * maxIn), -bound(maxIn), bound(maxIn)),
        new long[] {r, maxIn}, 'c');
    INDArray b = Nd4j.create(generator.uniform(Math.toIntExact(maxOut * r), -bound(r), bound(r)),
        new long[] {maxOut, r}, 'c');
    return new INDArray[] {a, b};
  }

  /** HF's {@code _kaiming_init} bound, in its order of operations: √3 · (√2 / √fan). */
  private static double bound(long fan) {
    return Math.sqrt(3.0) * (Math.sqrt(2) / Math.sqrt(fan));
  }

  private void insert(SameDiff sameDiff, GraphRewriter g, LinearModule m, long maxIn, long maxOut) {
    DataType type = sameDiff.getVariable(m.weight()).dataType();
    int r = config().r();
    long in = m.inFeatures();
    long out = m.outFeatures();
    String scope = scope("vera") + m.name();
    layers.splice(g, m.output(), () -> {
      try (NameScope ignored = sameDiff.withNameScope(scope)) {
        SDVariable x = sameDiff.getVariable(m.input());                                          // [n, in]
        SDVariable dropped = null;
        if (config().dropout() > 0) {
          double keep = 1 - config().dropout();
          SDVariable mask = new RandomBernoulli(sameDiff, sameDiff.shape(x), keep).outputVariable(); // [n, in]
          dropped = x.mul(mask.castTo(type)).mul(1 / keep);                                 // inverted dropout
        }
        SDVariable a = sameDiff.getVariable(sharedA);                                             // [max_in, r]
        if (in < maxIn) {
          a = sameDiff.slice(a, new int[] {0, 0}, Math.toIntExact(in), r);                       // [in, r]
        }
        SDVariable bProj = sameDiff.getVariable(sharedB);                                         // [r, max_out]
        if (out < maxOut) {
          bProj = sameDiff.slice(bProj, new int[] {0, 0}, r, Math.toIntExact(out));               // [r, out]
        }
        SDVariable d = sameDiff.var(scope + "/vera_lambda_d",
            Nd4j.valueArrayOf(new long[] {r}, config().dInitial(), type));                       // [r]
        SDVariable b = sameDiff.var(scope + "/vera_lambda_b", Nd4j.zeros(type, out));           // [out]
        SDVariable xa = (training() && dropped != null ? dropped : x).mmul(a);                   // [n, r]
        SDVariable delta = xa.mul(d).mmul(bProj).mul(b);                                          // [n, out]
        String firstMatmulOp = sameDiff.getVariableOutputOp(xa.name()).getOwnName();
        return new Layer(m, d.name(), b.name(), dropped == null ? null : dropped.name(), firstMatmulOp,
            sameDiff.getVariable(m.output()).add(scope + "/base_output", delta).name());         // [n, out]
      }
    }, Layer::sum);
  }

  @Override
  protected void remove() {
    super.remove();
    if (shared != null) { // after the layers: their slices read the projections
      graph().remove(shared);
      shared = null;
    }
  }

  @Override
  protected void trainingChanged() {
    for (Layer l : layers.parts()) {
      if (l.droppedInput() != null) {
        graph().setInput(l.firstMatmulOp(), 0, training() ? l.droppedInput() : l.module().input());
      }
    }
  }

  @Override
  protected List<String> parameters() {
    List<String> names = new ArrayList<>();
    for (Layer l : layers.parts()) {
      names.add(l.d());
      names.add(l.b());
    }
    return names;
  }

  /**
   * {@code <module>.vera_lambda_b} {@code [out]}, {@code <module>.vera_lambda_d} {@code [r]} and, unless the config
   * says otherwise, the shared {@code base_model.vera_A} {@code [r, max_in]} and {@code base_model.vera_B}
   * {@code [max_out, r]} (Hugging Face's orientation and keys).
   */
  @Override
  protected Map<String, INDArray> ownStateDict() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (Layer l : layers.parts()) {
      out.put(l.module().name() + ".vera_lambda_b", sd().getArrForVarName(l.b()).dup());
      out.put(l.module().name() + ".vera_lambda_d", sd().getArrForVarName(l.d()).dup());
    }
    if (config().saveProjection()) {
      out.put(KEY_A, sd().getArrForVarName(sharedA).transpose().dup('c'));
      out.put(KEY_B, sd().getArrForVarName(sharedB).transpose().dup('c'));
    }
    return out;
  }

  static final String KEY_A = "base_model.vera_A";
  static final String KEY_B = "base_model.vera_B";

  @Override
  protected void loadOwnStateDict(Map<String, INDArray> tensors) {
    for (Layer l : layers.parts()) {
      INDArray b = sd().getArrForVarName(l.b());
      INDArray d = sd().getArrForVarName(l.d());
      b.assign(tensors.get(l.module().name() + ".vera_lambda_b").castTo(b.dataType()));
      d.assign(tensors.get(l.module().name() + ".vera_lambda_d").castTo(d.dataType()));
    }
    if (config().saveProjection()) {
      INDArray a = sd().getArrForVarName(sharedA);
      a.assign(tensors.get(KEY_A).transpose().castTo(a.dataType()));
      INDArray b = sd().getArrForVarName(sharedB);
      b.assign(tensors.get(KEY_B).transpose().castTo(b.dataType()));
    }
  }

  @Override
  protected List<MergedWeight> mergedWeights() {
    List<MergedWeight> merged = new ArrayList<>();
    for (Layer l : layers.parts()) {
      merged.add(new MergedWeight(l.module().weight(), sd().getArrForVarName(l.module().weight()).add(delta(l))));
    }
    return merged;
  }

  @Override
  protected void unmergeWeights() {
    for (Layer l : layers.parts()) {
      sd().getArrForVarName(l.module().weight()).subi(delta(l));
    }
  }

  /** {@code A_mᵀ·diag(d)·B_mᵀ·diag(b)}: the layer's update in W's [in, out] orientation. */
  private INDArray delta(Layer l) {
    INDArray a = sd().getArrForVarName(sharedA)
        .get(NDArrayIndex.interval(0, l.module().inFeatures()), NDArrayIndex.all());          // [in, r]
    INDArray b = sd().getArrForVarName(sharedB)
        .get(NDArrayIndex.all(), NDArrayIndex.interval(0, l.module().outFeatures()));         // [r, out]
    INDArray d = sd().getArrForVarName(l.d());
    INDArray lambdaB = sd().getArrForVarName(l.b());
    return a.mulRowVector(d.reshape(1, d.length())).mmul(b).muliRowVector(lambdaB.reshape(1, lambdaB.length()));
  }

  /** The names of the modules this adapter adapted, in graph order. */
  public List<String> adaptedModules() {
    return layers.parts().stream().map(l -> l.module().name()).toList();
  }
}
