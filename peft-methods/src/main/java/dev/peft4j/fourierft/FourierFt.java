package dev.peft4j.fourierft;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.AbstractMergeableAdapter;
import dev.peft4j.TrainableParameterSet;
import dev.peft4j.graph.Branches;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.GraphRewriter.Built;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.rng.TorchGenerator;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.nd4j.autodiff.samediff.NameScope;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * FourierFT: {@code n} learned spectral coefficients per targeted layer at fixed random frequencies; the update is
 * the real part of their inverse 2-D DFT. See the package documentation for the math.
 *
 * <p>Layer {@code m} owns the variable {@code peft/<adapter>/fourierft/<m>/fourierft_spectrum} ({@code [n]}) and reads
 * two constant bases that every target of the same shape shares (the same seed picks the same frequencies there):
 * {@code peft/<adapter>/fourierft/buffer/<out>x<in>/basis_in} ({@code [in, 2n]}) and {@code basis_out}
 * ({@code [2n, out]}). The branch is spliced in after the module as LoRA's is.
 */
public final class FourierFt extends AbstractMergeableAdapter<FourierFtConfig> {

  /** One adapted layer. */
  private record Layer(LinearModule module, String spectrum, String basisIn, String basisOut, String sum) {}

  /** The constant bases of one (out, in) shape. */
  private record Basis(String in, String out) {}

  private final Branches<Layer> layers = branches();
  private final Map<String, Built<Basis>> bases = new LinkedHashMap<>();

  FourierFt(String name, FourierFtConfig config) {
    super(name, config);
  }

  @Override
  protected void build(SameDiff sameDiff, GraphRewriter g) {
    List<LinearModule> modules = config().targets().selectLinear(g, "FourierFT");
    int n = config().nFrequency();
    for (LinearModule m : modules) {
      checkState(!m.output().startsWith("peft/"), "module '%s' carries an enabled adapter ('%s'); disable it first "
          + "(PeftModel.addAdapter does)", m.name(), m.output());
      long cells = m.inFeatures() * m.outFeatures();
      checkArgument(n <= cells, "FourierFT n_frequency %s exceeds in·out = %s·%s = %s of module '%s'", n,
          m.inFeatures(), m.outFeatures(), cells, m.name());
      checkArgument(cells < TorchGenerator.RANDPERM_LIMIT, "module '%s' has in·out = %s ≥ %s, where torch's randperm "
          + "(which picks the frequencies) shuffles differently; peft4j does not reproduce it", m.name(), cells,
          TorchGenerator.RANDPERM_LIMIT);
    }
    Random random = new Random(config().seed());
    for (LinearModule m : modules) {
      insert(sameDiff, g, m, random);
    }
  }

  /**
   * The frequencies Hugging Face PEFT picks for an {@code [out, in]} weight: the first n of
   * {@code torch.randperm(out·in, generator=torch.Generator().manual_seed(seed))}, as rows {@code [2, n]}: row
   * frequencies (index / in), column frequencies (index mod in).
   */
  static long[][] indices(long out, long in, int n, long seed) {
    long[] flat = new TorchGenerator(seed).randpermPrefix(out * in, n);
    long[][] rowsCols = new long[2][n];
    for (int k = 0; k < n; k++) {
      rowsCols[0][k] = flat[k] / in;
      rowsCols[1][k] = flat[k] % in;
    }
    return rowsCols;
  }

  /** The bases of one shape, created once per adapter. */
  private Basis basis(SameDiff sameDiff, GraphRewriter g, LinearModule m, DataType type) {
    long in = m.inFeatures();
    long out = m.outFeatures();
    String key = out + "x" + in;
    Built<Basis> existing = bases.get(key);
    if (existing != null) {
      return existing.value();
    }
    int n = config().nFrequency();
    long[][] pq = indices(out, in, n, config().randomLocSeed());
    double factor = config().scaling() / ((double) out * in); // ifft2's "backward" 1/(out·in), times the scaling
    double[] basisIn = new double[Math.toIntExact(in * 2 * n)];   // [in, 2n]: cos | sin of the column frequencies
    for (int v = 0; v < in; v++) {
      for (int k = 0; k < n; k++) {
        double angle = 2 * Math.PI * ((pq[1][k] * v) % in) / in;
        basisIn[v * 2 * n + k] = Math.cos(angle);
        basisIn[v * 2 * n + n + k] = Math.sin(angle);
      }
    }
    double[] basisOut = new double[Math.toIntExact(2 * n * out)]; // [2n, out]: f·cos ; −f·sin of the row frequencies
    for (int k = 0; k < n; k++) {
      for (int u = 0; u < out; u++) {
        double angle = 2 * Math.PI * ((pq[0][k] * u) % out) / out;
        basisOut[k * (int) out + u] = factor * Math.cos(angle);
        basisOut[(n + k) * (int) out + u] = -factor * Math.sin(angle);
      }
    }
    String scope = scope("fourierft") + TrainableParameterSet.BUFFER_SCOPE + key; // buffers, as in torch
    Built<Basis> basis = g.build(() -> new Basis(
        sameDiff.constant(scope + "/basis_in",
            Nd4j.create(basisIn, new long[] {in, 2L * n}, DataType.DOUBLE).castTo(type)).name(),
        sameDiff.constant(scope + "/basis_out",
            Nd4j.create(basisOut, new long[] {2L * n, out}, DataType.DOUBLE).castTo(type)).name()));
    bases.put(key, basis);
    return basis.value();
  }

  private void insert(SameDiff sameDiff, GraphRewriter g, LinearModule m, Random random) {
    DataType type = sameDiff.getVariable(m.weight()).dataType();
    int n = config().nFrequency();
    double[] initial = new double[n];
    if (!config().zeroInit()) {
      for (int k = 0; k < n; k++) {
        initial[k] = random.nextGaussian();
      }
    }
    Basis basis = basis(sameDiff, g, m, type);
    String scope = scope("fourierft") + m.name();
    layers.splice(g, m.output(), () -> {
      try (NameScope ignored = sameDiff.withNameScope(scope)) {
        SDVariable x = sameDiff.getVariable(m.input());                                          // [batch, in]
        SDVariable c = sameDiff.var(scope + "/fourierft_spectrum",
            Nd4j.create(initial, new long[] {n}, DataType.DOUBLE).castTo(type));                // [n]
        SDVariable cc = sameDiff.concat(0, c, c);                                                 // [2n]
        SDVariable delta = x.mmul(sameDiff.getVariable(basis.in())).mul(cc)                       // [batch, 2n]
            .mmul(sameDiff.getVariable(basis.out()));                                             // [batch, out]
        return new Layer(m, c.name(), basis.in(), basis.out(),
            sameDiff.getVariable(m.output()).add(scope + "/base_output", delta).name());      // [batch, out]
      }
    }, Layer::sum);
  }

  @Override
  protected void remove() {
    super.remove();
    bases.values().forEach(b -> graph().remove(b.created())); // after the layers, which read them
    bases.clear();
  }

  @Override
  protected List<String> parameters() {
    return layers.parts().stream().map(Layer::spectrum).toList();
  }

  /** {@code <module>.fourierft_spectrum} {@code [n]}, as Hugging Face PEFT (the frequencies follow from the seed). */
  @Override
  protected Map<String, INDArray> ownStateDict() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (Layer l : layers.parts()) {
      out.put(l.module().name() + ".fourierft_spectrum", sd().getArrForVarName(l.spectrum()).dup());
    }
    return out;
  }

  @Override
  protected void loadOwnStateDict(Map<String, INDArray> tensors) {
    for (Layer l : layers.parts()) {
      INDArray c = sd().getArrForVarName(l.spectrum());
      c.assign(tensors.get(l.module().name() + ".fourierft_spectrum").castTo(c.dataType()));
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

  /** {@code basis_in · diag([c, c]) · basis_out}: ΔWᵀ, the layer's update in W's [in, out] orientation. */
  private INDArray delta(Layer l) {
    INDArray c = sd().getArrForVarName(l.spectrum());
    INDArray cc = Nd4j.concat(0, c, c).reshape(1, 2 * c.length());
    return sd().getArrForVarName(l.basisIn()).mulRowVector(cc).mmul(sd().getArrForVarName(l.basisOut()));
  }

  /** The names of the modules this adapter adapted, in graph order. */
  public List<String> adaptedModules() {
    return layers.parts().stream().map(l -> l.module().name()).toList();
  }
}
