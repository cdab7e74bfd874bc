package dev.peft4j.merge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.lora.Lora;
import dev.peft4j.merge.WeightedAdapter.Combination;
import dev.peft4j.merge.WeightedAdapter.MajoritySign;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Mlp;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import dev.peft4j.train.Batch;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Each combination against a direct computation on the ΔW matrices. */
class WeightedAdapterTest {

  private static final double WA = 0.7;
  private static final double WB = -0.4;

  /** An attention model with adapter "a" (r=2, α=4) on q, v and "b" (r=2, α=2, rsLoRA) on q, o; random A and B. */
  private static PeftModel twoAdapters(SameDiff sd, int rankB) {
    PeftModel model = Peft.lora(2).alpha(4).target("q_proj", "v_proj").apply(sd);
    model.addAdapter("b", Peft.lora(rankB).alpha(2).rsLora().target("q_proj", "o_proj").build());
    Random random = new Random(42);
    for (String name : List.of("default", "b")) {
      Map<String, INDArray> state = model.adapter(name).stateDict();
      state.replaceAll((k, v) -> Mlp.uniform(random, 0.5, DataType.FLOAT, v.shape()));
      model.adapter(name).loadStateDict(state);
    }
    return model;
  }

  private static Map<String, Double> weights() {
    Map<String, Double> w = new LinkedHashMap<>();
    w.put("default", WA);
    w.put("b", WB);
    return w;
  }

  /** s · B·A of adapter {@code name} at {@code module}, [out, in], or null. */
  private static INDArray delta(PeftModel model, String name, String module) {
    Lora l = (Lora) model.adapter(name);
    Map<String, INDArray> s = l.stateDict();
    INDArray a = s.get(module + ".lora_A.weight");
    return a == null ? null
        : s.get(module + ".lora_B.weight").castTo(DataType.DOUBLE).mmul(a.castTo(DataType.DOUBLE))
            .muli(l.config().scaling());
  }

  private static double maxDiff(INDArray x, INDArray y) {
    return x.castTo(DataType.DOUBLE).sub(y.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(value = Combination.class, names = {"CAT", "SVD"})
  void catAndFullRankSvdEqualTheWeightedSumOfTheDeltas(Combination c) {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = twoAdapters(sd, 3);
    WeightedAdapter.of(weights()).combination(c).svdRank(5).addTo(model, "mix");
    GraphRewriter.of(sd).requireConsistentLinks();
    assertEquals(5, ((Lora) model.adapter("mix")).config().r(), "cat: 2 + 3; svd: as asked");
    for (String module : List.of("layers.0.self_attn.q_proj", "layers.1.self_attn.v_proj",
        "layers.0.self_attn.o_proj")) {
      INDArray expected = Nd4j.zeros(DataType.DOUBLE, ToyModels.D, ToyModels.D);
      INDArray da = delta(model, "default", module);
      INDArray db = delta(model, "b", module);
      if (da != null) {
        expected.addi(da.mul(WA));
      }
      if (db != null) {
        expected.addi(db.mul(WB));
      }
      assertTrue(maxDiff(delta(model, "mix", module), expected) < 1e-5, c + " " + module);
    }
  }

  @Test
  void linearCombinesSquareRootWeightedFactors() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = twoAdapters(sd, 2);
    WeightedAdapter.of(weights()).combination(Combination.LINEAR).addTo(model, "mix");
    String module = "layers.1.self_attn.q_proj";
    Map<String, INDArray> a = model.adapter("default").stateDict();
    Map<String, INDArray> b = model.adapter("b").stateDict();
    double wsa = WA * 4 / 2.0;             // w · α/r
    double wsb = WB * 2 / Math.sqrt(2);    // w · α/√r (rsLoRA)
    INDArray loraA = a.get(module + ".lora_A.weight").castTo(DataType.DOUBLE).mul(Math.sqrt(wsa))
        .add(b.get(module + ".lora_A.weight").castTo(DataType.DOUBLE).mul(-Math.sqrt(-wsb)));
    INDArray loraB = a.get(module + ".lora_B.weight").castTo(DataType.DOUBLE).mul(Math.sqrt(wsa))
        .add(b.get(module + ".lora_B.weight").castTo(DataType.DOUBLE).mul(Math.sqrt(-wsb)));
    assertTrue(maxDiff(delta(model, "mix", module), loraB.mmul(loraA)) < 1e-5);
  }

  @Test
  void tiesSvdElectsSignsOnTheDeltas() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = twoAdapters(sd, 2);
    WeightedAdapter.of(weights()).combination(Combination.TIES_SVD).density(0.5).svdRank(8).addTo(model, "mix");
    String module = "layers.0.self_attn.q_proj";
    double[] ta = TaskArithmetic.keepLargest(delta(model, "default", module), 0.5).data().asDouble();
    double[] tb = TaskArithmetic.keepLargest(delta(model, "b", module), 0.5).data().asDouble();
    double[] expected = new double[ta.length];
    for (int e = 0; e < ta.length; e++) {
      double sign = ta[e] + tb[e] >= 0 ? 1 : -1;
      double sum = 0;
      int n = 0;
      if (Math.signum(ta[e]) == sign) {
        sum += WA * ta[e];
        n++;
      }
      if (Math.signum(tb[e]) == sign) {
        sum += WB * tb[e];
        n++;
      }
      expected[e] = sum / Math.max(1, n);
    }
    INDArray want = Nd4j.create(expected, new long[] {ToyModels.D, ToyModels.D}, DataType.DOUBLE);
    assertTrue(maxDiff(delta(model, "mix", module), want) < 1e-5, "full-rank svd of the TIES delta");
  }

  @Test
  void densityOneMakesThePruningCombinationsPlain() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = twoAdapters(sd, 2);
    WeightedAdapter.of(weights()).combination(Combination.SVD).svdRank(4).addTo(model, "svd");
    WeightedAdapter.of(weights()).combination(Combination.MAGNITUDE_PRUNE_SVD).density(1).svdRank(4)
        .addTo(model, "pruned");
    WeightedAdapter.of(weights()).combination(Combination.DARE_LINEAR_SVD).density(1).svdRank(4).addTo(model, "dare");
    WeightedAdapter.of(weights()).combination(Combination.LINEAR).addTo(model, "linear");
    WeightedAdapter.of(weights()).combination(Combination.DARE_LINEAR).density(1).addTo(model, "dare-linear");
    String module = "layers.1.self_attn.q_proj";
    assertTrue(maxDiff(delta(model, "pruned", module), delta(model, "svd", module)) < 1e-5);
    assertTrue(maxDiff(delta(model, "dare", module), delta(model, "svd", module)) < 1e-5);
    assertTrue(maxDiff(delta(model, "dare-linear", module), delta(model, "linear", module)) < 1e-6);
  }

  @Test
  void catOfTwoAdaptersOnTheHeadAddsTheirOutputs() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    Batch batch = Graphs.batches(sd, 1, 1, 5).get(0);
    INDArray base = Graphs.logits(sd, batch);
    PeftModel model = Peft.lora(2).target("head").apply(sd);
    model.addAdapter("b", Peft.lora(3).alpha(6).target("head").build());
    Random random = new Random(1);
    for (String name : List.of("default", "b")) {
      Map<String, INDArray> state = model.adapter(name).stateDict();
      state.replaceAll((k, v) -> Mlp.uniform(random, 0.5, DataType.FLOAT, v.shape()));
      model.adapter(name).loadStateDict(state);
    }
    INDArray outA = Graphs.logits(sd, batch);
    model.setAdapter("b");
    INDArray outB = Graphs.logits(sd, batch);
    WeightedAdapter.of(Map.of("default", 1.0, "b", 1.0)).combination(Combination.CAT).addTo(model, "both");
    model.setAdapter("both");
    INDArray both = Graphs.logits(sd, batch);
    INDArray expected = outA.sub(base).add(outB.sub(base)).add(base);
    assertTrue(Graphs.relativeError(both, expected) < 1e-5, "cat = the sum of the adapters' contributions");
  }

  @Test
  void badCombinationsAreRefusedAndTheModelIsUnchanged() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = twoAdapters(sd, 3);
    Map<String, INDArray> parameters = Graphs.parameters(sd);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> WeightedAdapter.of(weights()).combination(Combination.LINEAR).addTo(model, "x"));
    assertTrue(e.getMessage().contains("equal rank") && e.getMessage().contains("[2, 3]"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> WeightedAdapter.of(weights()).combination(Combination.TIES_SVD).addTo(model, "x"));
    assertTrue(e.getMessage().contains("density in (0, 1]"), e.getMessage());
    assertThrows(IllegalArgumentException.class,
        () -> WeightedAdapter.of(Map.of("nope", 1.0)).addTo(model, "x"));
    e = assertThrows(IllegalArgumentException.class, () -> WeightedAdapter.of(weights()).addTo(model, "b"));
    assertTrue(e.getMessage().contains("'b' exists already"), e.getMessage());
    assertEquals(Set.of("default", "b"), model.adapterNames());
    assertEquals(parameters, Graphs.parameters(sd));
  }

  @Test
  void adaptersOfDifferentMethodsAreNotCombined() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.lora(2).target("q_proj").apply(sd);
    model.addAdapter("ia3", Peft.ia3().target("q_proj").build());
    Set<String> adapters = model.adapterNames();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> WeightedAdapter.of(Map.of("default", 0.5, "ia3", 0.5)).combination(Combination.CAT).addTo(model, "x"));
    assertTrue(e.getMessage().contains("'ia3' is IA3") && e.getMessage().contains("LoRA"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> Ensembles.weightSpace(model, List.of("default", "ia3"), "soup"));
    assertTrue(e.getMessage().contains("one method"), e.getMessage());
    assertEquals(adapters, model.adapterNames(), "nothing was added");
  }

  @Test
  void taskArithmeticPiecesByHand() {
    INDArray t = Nd4j.createFromArray(new double[] {0.1, -3, 2, -0.5});
    assertEquals(Nd4j.createFromArray(new double[] {0, -3, 2, 0}), TaskArithmetic.keepLargest(t, 0.5));
    INDArray x = Nd4j.createFromArray(new double[] {1, -1, 2, 0});
    INDArray y = Nd4j.createFromArray(new double[] {-3, -1, 1, 5});
    // TOTAL: signs of x + y = (-, -, +, +): entry 0 keeps y only, 1 both, 2 both, 3 y only (0 has no sign)
    assertEquals(Nd4j.createFromArray(new double[] {-3 * 0.5, (-1 * 2 + -1 * 0.5) / 2, (2 * 2 + 0.5) / 2, 2.5}),
        TaskArithmetic.disjointMerge(List.of(x, y), List.of(2.0, 0.5), MajoritySign.TOTAL));
    // FREQUENCY: sign counts (0, -2, 2, 1) → (+, -, +, +): entry 0 keeps x only
    assertEquals(2.0, TaskArithmetic.disjointMerge(List.of(x, y), List.of(2.0, 0.5), MajoritySign.FREQUENCY)
        .getDouble(0), 1e-12);
    INDArray ones = Nd4j.ones(DataType.DOUBLE, 10_000);
    INDArray dropped = TaskArithmetic.dropAtRandom(ones, 0.25, new Random(3));
    long kept = dropped.neq(0).castTo(DataType.DOUBLE).sumNumber().longValue();
    assertEquals(2500, kept, 150, "about density of the entries survive");
    assertEquals(4.0, dropped.maxNumber().doubleValue(), 1e-12, "and are rescaled by 1/density");
  }
}
