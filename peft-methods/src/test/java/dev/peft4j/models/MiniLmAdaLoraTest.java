package dev.peft4j.models;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.adalora.AdaLora;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.PretrainedModels;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** AdaLoRA on the real all-MiniLM-L6-v2: identity at init, training through the whole schedule, merge. */
class MiniLmAdaLoraTest {

  @Test
  void adaLoraLearnsAllocatesTheTargetBudgetAndMerges() {
    PretrainedModels.Encoder m = PretrainedModels.miniLm(32);
    SameDiff sd = Heads.sequenceClassification(m.sameDiff(), m.config().hiddenSize(), 2, Heads.Pooling.MEAN, 3);
    Map<String, INDArray> inputs = new HashMap<>(m.tokenizer().encode(List.of("I loved this film, it was wonderful.",
        "This was terrible and boring.", "Absolutely brilliant and moving.", "An awful, dull waste of time."))
        .bertInputs());
    inputs.put(Heads.LABELS, Nd4j.createFromArray(new long[] {1, 0, 1, 0}));
    m.tokenizer().close();
    INDArray baseLogits = sd.output(inputs, Heads.LOGITS).get(Heads.LOGITS);

    PeftModel model = Peft.adaLora(8, 2).alpha(16).totalStep(20).tinit(3).tfinal(5).deltaT(2)
        .target("query", "value").modulesToSave(Heads.CLASSIFIER).apply(sd);
    GraphRewriter.of(sd).requireConsistentLinks();
    assertEquals(baseLogits, sd.output(inputs, Heads.LOGITS).get(Heads.LOGITS), "identity at init");
    assertEquals(12L * 8 * (384 + 384 + 1) + 384 * 2 + 2, model.trainableParameters().count());

    TrainingHistory h = Trainer.builder(model).steps(20).learningRate(5e-3).progress(null).build()
        .fit(List.of(new Batch(inputs, 4)));
    assertTrue(h.meanLossOfLast(3) < h.meanLossOfFirst(3) * 0.9,
        "loss did not fall: " + h.meanLossOfFirst(3) + " -> " + h.meanLossOfLast(3));
    AdaLora adapter = (AdaLora) model.adapter(PeftModel.DEFAULT_ADAPTER);
    assertEquals(24, adapter.ranks().values().stream().mapToInt(Integer::intValue).sum(), "target_r 2 × 12 modules");
    assertEquals(12, adapter.config().rankPattern().size());

    INDArray unmerged = sd.output(inputs, Heads.LOGITS).get(Heads.LOGITS);
    SameDiff merged = model.mergeAndUnload();
    assertTrue(Graphs.relativeError(merged.output(inputs, Heads.LOGITS).get(Heads.LOGITS), unmerged) <= 1e-5);
  }
}
