package dev.peft4j.adalora;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.AbstractMergeableAdapter;
import dev.peft4j.graph.Branches;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.GraphRewriter.Branch;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.train.StepListener;
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
import org.nd4j.linalg.api.ops.random.custom.RandomBernoulli;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * AdaLoRA: an SVD-shaped update {@code P·Λ·Q} beside each targeted linear layer's frozen weight W, whose triplets
 * (a singular value with its two singular vectors) are pruned to a budget during training.
 * <pre>
 *   x: [n, in]   W: [in, out]   A: [in, r] (Qᵀ)   E: [1, r] (Λ)   B: [r, out] (Pᵀ)     s = α / (init_r + 1e-5)
 *   y' = y + s · ((dropout(x)·A) ⊙ E)·B
 *   loss' = loss + w / (2L) · Σ_layers ( ‖AᵀA − I‖_F + ‖B·Bᵀ − I‖_F )        (orthogonality, in the graph)
 *   merge: W ← W + s · (A ⊙ E)·B
 * </pre>
 * The branch of module {@code m} lives under {@code peft/<adapter>/adalora/<m>/}: variables {@code lora_A},
 * {@code lora_E}, {@code lora_B}; the regulariser under {@code peft/<adapter>/adalora/orth_reg/}, spliced into the
 * graph's loss variable. After every training step the {@link dev.peft4j.train.Trainer} calls {@link #afterStep},
 * which runs the rank allocation ({@link RankAllocator}).
 *
 * @see AdaLoraConfig
 * @see <a href="https://arxiv.org/abs/2303.10512">Zhang et al., AdaLoRA: Adaptive Budget Allocation for
 *     Parameter-Efficient Fine-Tuning</a>
 */
public final class AdaLora extends AbstractMergeableAdapter<AdaLoraConfig> implements StepListener {

  /**
   * One adapted linear layer; {@code positions[j]} is the index among the init_r triplets of row j of the arrays
   * (all of them for a fresh layer, the kept ones for a layer loaded with a rank pattern).
   */
  record Layer(LinearModule module, String a, String e, String b, int[] positions, String input,
      String droppedInput, String firstMatmulOp, String sum) {

    /** Whether the rank pattern left this module no triplet (then it has no branch). */
    boolean isEmpty() {
      return a == null;
    }
  }

  /** Every targeted layer, in graph order, the empty ones included. */
  private final List<Layer> layers = new ArrayList<>();
  /** The layers that have a branch. */
  private final Branches<Layer> spliced = branches();
  private Branch<String> regulariser;
  private RankAllocator allocator;
  private Map<String, INDArray> beforeMerge = Map.of();

  AdaLora(String name, AdaLoraConfig config) {
    super(name, config);
  }

  @Override
  protected void build(SameDiff sameDiff, GraphRewriter g) {
    AdaLoraConfig config = config();
    List<LinearModule> modules = config.select(g);
    for (String keep : config.modulesToSave()) {
      for (LinearModule m : modules) {
        checkArgument(!m.name().equals(keep) && !m.name().endsWith("." + keep),
            "module '%s' is both an AdaLoRA target and in modules_to_save", m.name());
      }
    }
    for (LinearModule m : modules) {
      checkState(!m.output().startsWith("peft/"), "module '%s' carries an enabled adapter ('%s'); disable it first "
          + "(PeftModel.addAdapter does)", m.name(), m.output());
    }
    List<String> losses = List.copyOf(sameDiff.getLossVariables());
    checkArgument(config.orthRegWeight() == 0 || losses.size() <= 1, "AdaLoRA adds its orthogonality term to the "
        + "graph's loss, but the graph has several loss variables %s; set orthRegWeight(0) or keep one", losses);
    Random random = new Random(config.seed());
    for (LinearModule m : modules) {
      layers.add(insert(sameDiff, g, m, random));
    }
    if (config.orthRegWeight() > 0 && losses.size() == 1) {
      addRegulariser(sameDiff, g, losses.get(0));
    }
    allocator = new RankAllocator(this);
  }

  private Layer insert(SameDiff sameDiff, GraphRewriter g, LinearModule m, Random random) {
    AdaLoraConfig config = config();
    DataType dataType = sameDiff.getVariable(m.weight()).dataType();
    long in = m.inFeatures();
    long out = m.outFeatures();
    int r = config.rankOf(m.name());
    int[] positions = positions(config.rankPattern().get(m.name() + ".lora_E"), config.initR());
    if (r == 0) { // the rank pattern keeps no triplet: no branch, as HF's rank-0 layer adds nothing
      return new Layer(m, null, null, null, positions, m.input(), null, null, null);
    }
    INDArray a0 = normal(random, in, r, dataType);   // HF: A [r, in] ~ N(0, 0.02); ours its transpose
    INDArray b0 = normal(random, r, out, dataType);  // HF: B [out, r] ~ N(0, 0.02)
    return spliced.splice(g, m.output(), () -> {
      String scope = scope("adalora") + m.name();
      try (NameScope ignored = sameDiff.withNameScope(scope)) {
        SDVariable x = sameDiff.getVariable(m.input());                                  // [n, in]
        SDVariable a = sameDiff.var(scope + "/lora_A", a0);                               // [in, r]
        SDVariable e = sameDiff.var(scope + "/lora_E", Nd4j.zeros(dataType, 1, r));       // [1, r]
        SDVariable b = sameDiff.var(scope + "/lora_B", b0);                               // [r, out]
        SDVariable dropped = null;
        if (config.dropout() > 0) {
          double keep = 1 - config.dropout();
          SDVariable mask = new RandomBernoulli(sameDiff, sameDiff.shape(x), keep).outputVariable(); // [n, in]
          dropped = x.mul(mask.castTo(dataType)).mul(1 / keep);                          // inverted dropout
        }
        SDVariable xa = (training() && dropped != null ? dropped : x).mmul(a);           // [n, r]
        SDVariable delta = xa.mul(e).mul(config.scaling()).mmul(b);                      // [n, out]
        SDVariable sum = sameDiff.getVariable(m.output()).add(scope + "/base_output", delta); // [n, out]
        return new Layer(m, a.name(), e.name(), b.name(), positions, m.input(), dropped == null ? null : dropped.name(),
            sameDiff.getVariableOutputOp(xa.name()).getOwnName(), sum.name());
      }
    }, Layer::sum);
  }

  /** loss + w / (2L) · Σ (‖AᵀA − I‖_F + ‖B·Bᵀ − I‖_F), as HF's AdaLoraModel.forward adds it. */
  private void addRegulariser(SameDiff sameDiff, GraphRewriter g, String loss) {
    if (spliced.isEmpty()) {
      return; // every layer is empty: no term
    }
    double weight = config().orthRegWeight() / (2.0 * layers.size());
    regulariser = g.spliceBranch(loss, () -> {
      String scope = scope("adalora") + "orth_reg";
      try (NameScope ignored = sameDiff.withNameScope(scope)) {
        SDVariable total = null;
        for (Layer l : layers) {
          if (l.isEmpty()) {
            continue; // HF counts its (empty) A and B in the mean; their distance is 0
          }
          SDVariable a = sameDiff.getVariable(l.a());
          SDVariable b = sameDiff.getVariable(l.b());
          SDVariable ata = sameDiff.transpose(a).mmul(a);                  // [r, r] = HF's A·Aᵀ
          SDVariable bbt = b.mmul(sameDiff.transpose(b));                  // [r, r] = HF's Bᵀ·B
          int r = l.positions().length;
          SDVariable terms = frobeniusFromIdentity(sameDiff, ata, r).add(frobeniusFromIdentity(sameDiff, bbt, r));
          total = total == null ? terms : total.add(terms);
        }
        SDVariable base = sameDiff.getVariable(loss);
        SDVariable reg = total.mul(weight);                                   // scalar
        if (reg.dataType() != base.dataType()) {
          reg = reg.castTo(base.dataType());
        }
        return base.add(scope + "/base_loss", reg).name();
      }
    }, sum -> sum);
  }

  /** ‖cov − I‖_F as a scalar. */
  private static SDVariable frobeniusFromIdentity(SameDiff sd, SDVariable cov, int r) {
    SDVariable diff = cov.sub(sd.math.eye(r, r, cov.dataType()));
    return sd.math.sqrt(diff.mul(diff).sum());
  }

  private static int[] positions(List<Boolean> keep, int initR) {
    if (keep == null) {
      return java.util.stream.IntStream.range(0, initR).toArray();
    }
    return java.util.stream.IntStream.range(0, keep.size()).filter(keep::get).toArray();
  }

  @Override
  protected void attach() {
    if (regulariser != null) {
      graph().attach(regulariser);
    }
    super.attach();
  }

  @Override
  protected void detach() {
    super.detach();
    if (regulariser != null) {
      graph().detach(regulariser);
    }
  }

  @Override
  protected void remove() {
    if (regulariser != null) { // it reads the layers' variables: goes first
      graph().remove(regulariser);
      regulariser = null;
    }
    super.remove();
    layers.clear();
  }

  @Override
  protected List<String> parameters() {
    List<String> names = new ArrayList<>();
    for (Layer l : spliced.parts()) {
      names.add(l.a());
      names.add(l.e());
      names.add(l.b());
    }
    return names;
  }

  List<Layer> layers() {
    return layers;
  }

  SameDiff graphOf() {
    return sd();
  }

  /** Rows of layer {@code l}'s arrays that the current rank pattern keeps (all when there is none). */
  private int[] keptRows(Layer l) {
    List<Boolean> keep = config().rankPattern().get(l.module().name() + ".lora_E");
    if (keep == null) {
      return java.util.stream.IntStream.range(0, l.positions().length).toArray();
    }
    return java.util.stream.IntStream.range(0, l.positions().length).filter(j -> keep.get(l.positions()[j]))
        .toArray();
  }

  /**
   * {@code <module>.lora_A} {@code [r, in]}, {@code .lora_E} {@code [r, 1]}, {@code .lora_B} {@code [out, r]}, keys
   * without {@code .weight} as HF PEFT saves its parameter dicts; r counts the triplets the rank pattern keeps, as
   * HF's {@code resize_state_dict_by_rank_pattern} prunes them.
   */
  @Override
  protected Map<String, INDArray> ownStateDict() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (Layer l : layers) {
      int[] rows = keptRows(l);
      String m = l.module().name();
      if (rows.length == 0) { // HF saves a rank-0 module as empty tensors
        DataType type = sd().getVariable(l.module().weight()).dataType();
        out.put(m + ".lora_A", Nd4j.create(type, 0, l.module().inFeatures()));
        out.put(m + ".lora_E", Nd4j.create(type, 0, 1));
        out.put(m + ".lora_B", Nd4j.create(type, l.module().outFeatures(), 0));
        continue;
      }
      INDArray a = sd().getArrForVarName(l.a());   // [in, r]
      INDArray e = sd().getArrForVarName(l.e());   // [1, r]
      INDArray b = sd().getArrForVarName(l.b());   // [r, out]
      boolean all = rows.length == l.positions().length;
      out.put(m + ".lora_A", (all ? a : a.get(NDArrayIndex.all(), NDArrayIndex.indices(longs(rows))))
          .transpose().dup('c'));
      out.put(m + ".lora_E", (all ? e : e.get(NDArrayIndex.all(), NDArrayIndex.indices(longs(rows))))
          .transpose().dup('c'));
      out.put(m + ".lora_B", (all ? b : b.get(NDArrayIndex.indices(longs(rows)), NDArrayIndex.all()))
          .transpose().dup('c'));
    }
    return out;
  }

  @Override
  protected void loadOwnStateDict(Map<String, INDArray> tensors) {
    for (Layer l : layers) {
      int[] rows = keptRows(l);
      String m = l.module().name();
      if (l.isEmpty()) {
        continue;
      }
      DataType type = sd().getVariable(l.a()).dataType();
      INDArray a = sd().getArrForVarName(l.a());
      INDArray e = sd().getArrForVarName(l.e());
      INDArray b = sd().getArrForVarName(l.b());
      INDArray ta = tensors.get(m + ".lora_A").transpose().castTo(type);  // [in, kept]
      INDArray te = tensors.get(m + ".lora_E").transpose().castTo(type);  // [1, kept]
      INDArray tb = tensors.get(m + ".lora_B").transpose().castTo(type);  // [kept, out]
      if (rows.length == l.positions().length) {
        a.assign(ta);
        e.assign(te);
        b.assign(tb);
        continue;
      }
      a.assign(0);
      e.assign(0);
      b.assign(0);
      for (int j = 0; j < rows.length; j++) { // pruned triplets come back as zeros: masked, as before saving
        a.getColumn(rows[j]).assign(ta.getColumn(j));
        e.putScalar(0, rows[j], te.getDouble(0, j));
        b.getRow(rows[j]).assign(tb.getRow(j));
      }
    }
  }

  private static long[] longs(int[] values) {
    return java.util.Arrays.stream(values).asLongStream().toArray();
  }

  @Override
  protected void trainingChanged() {
    for (Layer l : layers) {
      if (l.droppedInput() != null) {
        graph().setInput(l.firstMatmulOp(), 0, training() ? l.droppedInput() : l.input());
      }
    }
  }

  @Override
  protected List<MergedWeight> mergedWeights() {
    List<MergedWeight> merged = new ArrayList<>();
    Map<String, INDArray> originals = new LinkedHashMap<>();
    for (Layer l : spliced.parts()) {
      INDArray w = sd().getArrForVarName(l.module().weight());
      originals.put(l.module().weight(), w.dup());
      merged.add(new MergedWeight(l.module().weight(), w.add(delta(l))));
    }
    beforeMerge = originals; // unmerge restores these exactly rather than subtracting in floating point
    return merged;
  }

  @Override
  protected void unmergeWeights() {
    beforeMerge.forEach((w, original) -> sd().getArrForVarName(w).assign(original));
    beforeMerge = Map.of();
  }

  /** {@code s · (A ⊙ E)·B}: the layer's update in W's [in, out] orientation. */
  private INDArray delta(Layer l) {
    INDArray ae = sd().getArrForVarName(l.a()).mulRowVector(sd().getArrForVarName(l.e()));  // [in, r]
    return ae.mmul(sd().getArrForVarName(l.b())).muli(config().scaling());                  // [in, out]
  }

  /** HF's {@code nn.init.normal_(std=0.02)}, drawn from {@code random}. */
  private static INDArray normal(Random random, long rows, long cols, DataType dataType) {
    double[] values = new double[Math.toIntExact(rows * cols)];
    for (int i = 0; i < values.length; i++) {
      values[i] = 0.02 * random.nextGaussian();
    }
    return Nd4j.create(values, new long[] {rows, cols}, DataType.DOUBLE).castTo(dataType);
  }

  /**
   * Runs AdaLoRA's rank allocation after optimizer step {@code step}, as HF's {@code update_and_allocate}: updates the
   * importance scores, masks the triplets below the scheduled budget every deltaT steps (and at
   * {@code total_step − tfinal}, recording the final {@link AdaLoraConfig#rankPattern()}), and keeps the masked
   * singular values at zero afterwards. Does nothing while the adapter is not training (disabled or merged).
   */
  @Override
  public void afterStep(int step, Map<String, INDArray> gradients) {
    requireApplied();
    if (state() != State.ENABLED || !gradients.keySet().containsAll(parameters())) {
      return;
    }
    Map<String, List<Boolean>> pattern = allocator.updateAndAllocate(step, gradients);
    if (pattern != null) {
      updateConfig(config().withRankPattern(pattern));
    }
  }

  /** The budget (number of kept triplets over all modules) HF's schedule gives at {@code step}. */
  public int budgetAt(int step) {
    requireApplied();
    return allocator.budget(step);
  }

  /** Number of triplets each module keeps now (nonzero singular values are what the masks leave). */
  public Map<String, Integer> ranks() {
    requireApplied();
    Map<String, Integer> out = new LinkedHashMap<>();
    for (Layer l : layers) {
      out.put(l.module().name(), keptRows(l).length);
    }
    return out;
  }

  /** The names of the modules this adapter adapted, in graph order. */
  public List<String> adaptedModules() {
    return layers.stream().map(l -> l.module().name()).toList();
  }
}
