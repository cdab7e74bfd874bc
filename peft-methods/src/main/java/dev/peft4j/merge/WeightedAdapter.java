package dev.peft4j.merge;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.Adapter;
import dev.peft4j.PeftModel;
import dev.peft4j.lora.Lora;
import dev.peft4j.lora.LoraConfig;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Adds to a {@link PeftModel} a new LoRA adapter combined from trained ones, as Hugging Face PEFT's
 * {@code add_weighted_adapter} (see the package documentation for the math).
 *
 * <pre>{@code
 * WeightedAdapter.of(Map.of("sst2", 0.7, "imdb", 0.3))
 *     .combination(WeightedAdapter.Combination.TIES).density(0.5)
 *     .addTo(model, "blend");
 * model.setAdapter("blend");
 * }</pre>
 *
 * The sources' trained {@code modules_to_save} copies are not combined; the new adapter saves no modules.
 */
public final class WeightedAdapter {

  /** Hugging Face PEFT's {@code combination_type}. */
  public enum Combination {
    LINEAR, CAT, SVD, TIES, TIES_SVD, DARE_LINEAR, DARE_TIES, DARE_LINEAR_SVD, DARE_TIES_SVD, MAGNITUDE_PRUNE,
    MAGNITUDE_PRUNE_SVD;

    boolean svd() {
      return name().endsWith("SVD");
    }

    /** The combination applied to task tensors (SVD's base is plain task arithmetic). */
    String base() {
      return this == SVD ? "LINEAR" : name().replace("_SVD", "");
    }

    boolean needsDensity() {
      return !base().equals("LINEAR") && this != CAT;
    }
  }

  /** How TIES elects the sign of an entry. */
  public enum MajoritySign {
    /** The sign of the sum of the entries. */
    TOTAL,
    /** The sign most entries have. */
    FREQUENCY
  }

  private final LinkedHashMap<String, Double> weights;
  private Combination combination = Combination.SVD;
  private Double density;
  private MajoritySign majoritySign = MajoritySign.TOTAL;
  private Integer svdRank;
  private long seed = 0;

  private WeightedAdapter(LinkedHashMap<String, Double> weights) {
    this.weights = weights;
  }

  /** Source adapter name → weight, in the given order (use a LinkedHashMap or Map.of for one). */
  public static WeightedAdapter of(Map<String, Double> adapterWeights) {
    checkArgument(adapterWeights != null && !adapterWeights.isEmpty(), "no adapters to combine");
    return new WeightedAdapter(new LinkedHashMap<>(adapterWeights));
  }

  /** Default {@link Combination#SVD}, as Hugging Face PEFT. */
  public WeightedAdapter combination(Combination c) {
    this.combination = c;
    return this;
  }

  /** Fraction of entries kept by ties, dare and magnitude_prune, in (0, 1]. */
  public WeightedAdapter density(double d) {
    this.density = d;
    return this;
  }

  /** Default {@link MajoritySign#TOTAL}. */
  public WeightedAdapter majoritySign(MajoritySign m) {
    this.majoritySign = m;
    return this;
  }

  /** Rank of the svd combinations; default the largest source rank. */
  public WeightedAdapter svdRank(int r) {
    this.svdRank = r;
    return this;
  }

  /** Seed of dare's random drops; default 0. */
  public WeightedAdapter seed(long s) {
    this.seed = s;
    return this;
  }

  /**
   * Computes the combination and adds it to {@code model} as the inactive LoRA adapter {@code name}.
   *
   * @throws IllegalArgumentException naming the problem, with {@code model} unchanged: an unknown or non-LoRA source,
   *     unequal ranks for the linear family, a density outside (0, 1] where one is needed, a taken name
   */
  public Lora addTo(PeftModel model, String name) {
    try (var only = model.exclusive()) { // the sources stay as read until the combination is in
      return addExclusively(model, name);
    }
  }

  private Lora addExclusively(PeftModel model, String name) {
    List<Lora> sources = new ArrayList<>();
    weights.forEach((source, w) -> {
      Adapter a = model.adapter(source);
      checkArgument(a instanceof Lora, "adapter '%s' is %s; weighted combinations need LoRA adapters", source,
          a.config().peftType());
      checkArgument(Double.isFinite(w), "weight of '%s' must be finite, got %s", source, w);
      sources.add((Lora) a);
    });
    Combination c = sources.size() == 1 ? Combination.LINEAR : combination; // as HF: one adapter, linear only
    if (c.needsDensity()) {
      checkArgument(density != null && density > 0 && density <= 1, "%s needs a density in (0, 1], got %s",
          c.name().toLowerCase(Locale.ROOT), density);
    }
    List<Integer> ranks = sources.stream().map(l -> l.config().r()).toList();
    int rank = switch (c) {
      case CAT -> ranks.stream().mapToInt(Integer::intValue).sum();
      case SVD, TIES_SVD, DARE_LINEAR_SVD, DARE_TIES_SVD, MAGNITUDE_PRUNE_SVD ->
          svdRank != null ? svdRank : ranks.stream().mapToInt(Integer::intValue).max().orElseThrow();
      default -> {
        checkArgument(Set.copyOf(ranks).size() == 1, "%s needs adapters of equal rank, got %s",
            c.name().toLowerCase(Locale.ROOT), ranks);
        yield ranks.get(0);
      }
    };
    checkArgument(rank > 0, "rank must be > 0, got %s", rank);

    Set<String> modules = new LinkedHashSet<>();
    sources.forEach(l -> modules.addAll(l.adaptedModules()));
    List<Map<String, INDArray>> states = sources.stream().map(Lora::stateDict).toList();
    Map<String, INDArray> combined = new LinkedHashMap<>();
    Random random = new Random(seed);
    for (String module : modules) {
      INDArray[] ab = combine(c, rank, module, sources, states, random);
      combined.put(module + ".lora_A.weight", ab[0].castTo(DataType.FLOAT));
      combined.put(module + ".lora_B.weight", ab[1].castTo(DataType.FLOAT));
    }
    LoraConfig config = LoraConfig.builder(rank).alpha(rank).dropout(sources.get(0).config().dropout())
        .target(modules.toArray(String[]::new)).build();
    model.addAdapter(name, config, combined);
    Adapter added = model.adapter(name);
    checkState(added instanceof Lora, "unexpected adapter type");
    return (Lora) added;
  }

  /** The combined lora_A {@code [r, in]} and lora_B {@code [out, r]} of one module, in double precision. */
  private INDArray[] combine(Combination c, int rank, String module, List<Lora> sources,
      List<Map<String, INDArray>> states, Random random) {
    List<INDArray> as = new ArrayList<>();
    List<INDArray> bs = new ArrayList<>();
    List<Double> w = new ArrayList<>();
    List<Double> scale = new ArrayList<>();
    long in = -1;
    long out = -1;
    int i = 0;
    for (Lora l : sources) {
      double weight = weights.get(l.name());
      INDArray a = states.get(i).get(module + ".lora_A.weight");
      INDArray b = states.get(i).get(module + ".lora_B.weight");
      i++;
      if (a == null) {
        continue; // this adapter does not adapt the module
      }
      as.add(a.castTo(DataType.DOUBLE));
      bs.add(b.castTo(DataType.DOUBLE));
      w.add(weight);
      scale.add(l.config().scaling());
      in = a.size(1);
      out = b.size(0);
    }
    if (c == Combination.CAT) {
      INDArray a = Nd4j.zeros(DataType.DOUBLE, rank, in);
      INDArray b = Nd4j.zeros(DataType.DOUBLE, out, rank);
      int row = 0;
      for (int k = 0; k < as.size(); k++) {
        int r = (int) as.get(k).size(0);
        for (int j = 0; j < r; j++) {
          a.putRow(row + j, as.get(k).getRow(j).mul(w.get(k) * scale.get(k)));
          b.putColumn(row + j, bs.get(k).getColumn(j));
        }
        row += r;
      }
      return new INDArray[] {a, b};
    }
    if (c.svd()) {
      List<INDArray> deltas = new ArrayList<>();
      for (int k = 0; k < as.size(); k++) {
        deltas.add(bs.get(k).mmul(as.get(k)).muli(scale.get(k)));            // [out, in]
      }
      INDArray delta = TaskArithmetic.combine(c.base(), deltas, w, density, majoritySign, random);
      return truncatedSvd(delta, rank);
    }
    List<Double> wa = new ArrayList<>();
    List<Double> wb = new ArrayList<>();
    for (int k = 0; k < w.size(); k++) {
      double ws = w.get(k) * scale.get(k);
      wa.add(Math.signum(ws == 0 ? 1 : ws) * Math.sqrt(Math.abs(ws)));  // the sign goes on one side only
      wb.add(Math.sqrt(Math.abs(ws)));
    }
    return new INDArray[] {TaskArithmetic.combine(c.base(), as, wa, density, majoritySign, random),
        TaskArithmetic.combine(c.base(), bs, wb, density, majoritySign, random)};
  }

  /** ΔW {@code [out, in]} ≈ B·A with A = Vhᵣ {@code [r, in]}, B = Uᵣ·diag(Sᵣ) {@code [out, r]}. */
  static INDArray[] truncatedSvd(INDArray delta, int rank) {
    int m = (int) delta.size(0);
    int n = (int) delta.size(1);
    int k = Math.min(m, n);
    INDArray s = Nd4j.zeros(DataType.DOUBLE, k);
    INDArray u = Nd4j.zeros(DataType.DOUBLE, m, m).dup('f');
    INDArray vt = Nd4j.zeros(DataType.DOUBLE, n, n).dup('f');
    Nd4j.getBlasWrapper().lapack().gesvd(delta.dup('f'), s, u, vt);
    INDArray a = Nd4j.zeros(DataType.DOUBLE, rank, n);
    INDArray b = Nd4j.zeros(DataType.DOUBLE, m, rank);
    for (int j = 0; j < Math.min(rank, k); j++) {
      a.putRow(j, vt.getRow(j));
      b.putColumn(j, u.getColumn(j).mul(s.getDouble(j)));
    }
    return new INDArray[] {a, b};
  }
}
