package dev.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.MergeableAdapter;
import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Mlp;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Property-style: for random MLP shapes, ranks and target subsets (each case's seed is in its name, so a failure can
 * be replayed), LoRA is the identity at init, its count is Σ r·(in+out), merging preserves the output and unloading
 * restores it exactly.
 */
class LoraShapePropertyTest {

  static Stream<Long> seeds() {
    return LongStream.range(0, 12).map(i -> 0x5EEDL * 31 + i * 7919).boxed();
  }

  @ParameterizedTest(name = "seed={0}")
  @MethodSource("seeds")
  void identityCountMergeAndUnloadHoldForRandomShapes(long seed) {
    Random random = new Random(seed);
    int in = 1 + random.nextInt(24);
    int hidden = 1 + random.nextInt(24);
    int layers = 1 + random.nextInt(3);
    int classes = 2 + random.nextInt(5);
    int r = 1 + random.nextInt(12); // may exceed a layer's width, as HF allows
    SameDiff sd = Mlp.classifier(in, hidden, layers, classes, DataType.FLOAT, seed);
    List<String> modules = new ArrayList<>();
    for (LinearModule m : GraphRewriter.of(sd).linearModules()) {
      if (random.nextBoolean()) {
        modules.add(m.name());
      }
    }
    if (modules.isEmpty()) {
      modules.add("head");
    }
    String context = String.format("seed=%d in=%d hidden=%d layers=%d classes=%d r=%d targets=%s", seed, in,
        hidden, layers, classes, r, modules);
    Batch batch = Graphs.batches(sd, seed, 1, 1 + random.nextInt(9)).get(0);
    INDArray base = Graphs.logits(sd, batch);

    PeftModel model = Peft.lora(r).alpha(1 + random.nextInt(32)).target(modules.toArray(String[]::new)).seed(seed)
        .apply(sd);
    assertEquals(base, Graphs.logits(sd, batch), context);
    long expected = 0;
    for (String m : modules) {
      LinearModule lm = GraphRewriter.of(sd).linearModule(m);
      expected += (long) r * (lm.inFeatures() + lm.outFeatures());
    }
    assertEquals(expected, model.trainableParameters().count(), context);

    for (String p : model.trainableParameters().names()) {
      INDArray a = sd.getArrForVarName(p);
      a.assign(Mlp.uniform(random, 0.5, DataType.FLOAT, a.shape()));
    }
    INDArray adapted = Graphs.logits(sd, batch);
    MergeableAdapter lora = (MergeableAdapter) model.adapter("default");
    lora.merge();
    double error = Graphs.relativeError(Graphs.logits(sd, batch), adapted);
    assertTrue(error <= 1e-5, context + " merge error " + error);
    lora.unmerge();
    model.unload();
    assertTrue(Graphs.relativeError(Graphs.logits(sd, batch), base) <= 1e-5, context);
    assertEquals(List.of(), GraphRewriter.of(sd).checkLinks(), context);
  }
}
