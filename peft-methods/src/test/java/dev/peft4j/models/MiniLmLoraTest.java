package dev.peft4j.models;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.lora.Lora;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.PretrainedModels;
import dev.peft4j.model.Tokenizer;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** LoRA on the real all-MiniLM-L6-v2, end to end. */
class MiniLmLoraTest {

  private static final List<String> TEXTS = List.of(
      "I loved this film, it was wonderful.", "What a fantastic, joyful experience.",
      "Absolutely brilliant and moving.", "A delightful story with great acting.",
      "This was terrible and boring.", "I hated every minute of it.",
      "An awful, dull waste of time.", "The worst film I have seen this year.");
  private static final long[] LABELS = {1, 1, 1, 1, 0, 0, 0, 0};

  /** The eight sentences with their labels, as one batch. */
  private static Batch labelledBatch(Tokenizer.Encoded encoded) {
    Map<String, INDArray> inputs = new HashMap<>(encoded.bertInputs());
    inputs.put(Heads.LABELS, Nd4j.createFromArray(LABELS));
    return new Batch(inputs, encoded.tokens());
  }

  private static SameDiff classifier(PretrainedModels.Encoder m) {
    return Heads.sequenceClassification(m.sameDiff(), m.config().hiddenSize(), 2, Heads.Pooling.MEAN, 3);
  }

  @Test
  void targetsMeanWhatTheyMeanInHuggingFacePeft() {
    PretrainedModels.Encoder m = PretrainedModels.miniLm(32);
    SameDiff sd = classifier(m);
    GraphRewriter g = GraphRewriter.of(sd);
    List<LinearModule> qv = Peft.lora(8).target("query", "value").build().targets().selectLinear(g, "LoRA");
    assertEquals(12, qv.size(), "2 per layer × 6 layers");
    for (int i = 0; i < 6; i++) {
      assertEquals("encoder.layer." + i + ".attention.self.query", qv.get(2 * i).name());
      assertEquals("encoder.layer." + i + ".attention.self.value", qv.get(2 * i + 1).name());
    }
    List<LinearModule> all = Peft.lora(8).target("all-linear").build().targets().selectLinear(g, "LoRA");
    assertEquals(36, all.size(), "q, k, v, attention.output.dense, intermediate.dense, output.dense × 6");
    assertTrue(all.stream().noneMatch(l -> l.name().equals(Heads.CLASSIFIER)), "the head is left out");
    assertEquals(Set.of(Heads.CLASSIFIER), g.outputHeads());
    m.tokenizer().close();
  }

  @Test
  void loraWithTrainedHeadLearnsMergesAndUnloads() {
    PretrainedModels.Encoder m = PretrainedModels.miniLm(32);
    SameDiff sd = classifier(m);
    Batch batch = labelledBatch(m.tokenizer().encode(TEXTS));
    Map<String, INDArray> inputs = batch.inputs();
    INDArray baseLogits = sd.output(inputs, Heads.LOGITS).get(Heads.LOGITS);

    PeftModel model = Peft.lora(8).alpha(16).dropout(0.1).target("query", "value").modulesToSave(Heads.CLASSIFIER)
        .apply(sd);
    GraphRewriter.of(sd).requireConsistentLinks();
    assertEquals(baseLogits, sd.output(inputs, Heads.LOGITS).get(Heads.LOGITS), "identity at init");
    // 12 × 8·(384+384) LoRA + 384·2 + 2 head
    assertEquals(12L * 8 * (384 + 384) + 384 * 2 + 2, model.trainableParameters().count());

    Map<String, INDArray> before = Graphs.parameters(sd);
    TrainingHistory h = Trainer.builder(model).steps(12).learningRate(5e-3).progress(null).build()
        .fit(List.of(batch));
    assertTrue(h.meanLossOfLast(3) < h.meanLossOfFirst(3) * 0.8, h.meanLossOfFirst(3) + " → " + h.meanLossOfLast(3));
    Set<String> trainable = Set.copyOf(model.trainableParameters().names());
    Graphs.parameters(sd).forEach((name, value) -> {
      if (trainable.contains(name)) {
        assertNotEquals(before.get(name), value, name);
      } else {
        assertEquals(before.get(name), value, name);
      }
    });

    INDArray adapted = sd.output(inputs, Heads.LOGITS).get(Heads.LOGITS);
    ((Lora) model.adapter("default")).merge();
    assertTrue(Graphs.relativeError(sd.output(inputs, Heads.LOGITS).get(Heads.LOGITS), adapted) < 1e-4);
    SameDiff merged = model.mergeAndUnload();
    assertTrue(Graphs.relativeError(merged.output(inputs, Heads.LOGITS).get(Heads.LOGITS), adapted) < 1e-4);
    assertEquals(List.of(), GraphRewriter.of(merged).checkLinks());
    assertTrue(merged.getVariables().keySet().stream().noneMatch(n -> n.startsWith("peft/")));
    m.tokenizer().close();
  }

  @Test
  void ensemblesOfTwoSeedsOnTheRealModel() {
    PretrainedModels.Encoder m = PretrainedModels.miniLm(32);
    SameDiff sd = classifier(m);
    Tokenizer.Encoded encoded = m.tokenizer().encode(TEXTS);
    List<Batch> data = List.of(labelledBatch(encoded));
    PeftModel model = Peft.lora(4).target("query", "value").modulesToSave(Heads.CLASSIFIER).seed(1).apply(sd);
    Trainer.builder(model).steps(6).learningRate(3e-3).seed(1).progress(null).build().fit(data);
    model.addAdapter("seed2", Peft.lora(4).target("query", "value").modulesToSave(Heads.CLASSIFIER).seed(2).build());
    model.setAdapter("seed2");
    Trainer.builder(model).steps(6).learningRate(3e-3).seed(2).progress(null).build().fit(data);

    Map<String, INDArray> encoderInputs = encoded.bertInputs();
    model.setAdapter("default");
    INDArray first = sd.output(encoderInputs, Heads.LOGITS).get(Heads.LOGITS);
    model.setAdapter("seed2");
    INDArray second = sd.output(encoderInputs, Heads.LOGITS).get(Heads.LOGITS);
    INDArray outputEnsemble = dev.peft4j.merge.Ensembles.outputSpace(model, List.of("default", "seed2"),
        encoderInputs, Heads.LOGITS);
    assertTrue(Graphs.relativeError(outputEnsemble, first.add(second).div(2)) < 1e-6);
    assertEquals(List.of("seed2"), model.activeAdapters());

    dev.peft4j.merge.Ensembles.weightSpace(model, List.of("default", "seed2"), "soup");
    Map<String, INDArray> a = model.adapter("default").stateDict();
    Map<String, INDArray> b = model.adapter("seed2").stateDict();
    model.adapter("soup").stateDict().forEach((k, v) ->
        assertTrue(Graphs.relativeError(v, a.get(k).add(b.get(k)).div(2)) < 1e-6, k));
    model.setAdapter("soup");
    INDArray soup = sd.output(encoderInputs, Heads.LOGITS).get(Heads.LOGITS);
    assertEquals(8, soup.size(0));
    assertTrue(Graphs.relativeError(soup, outputEnsemble) < 0.5, "a soup of two nearby adapters predicts close to "
        + "their output ensemble");
    m.tokenizer().close();
  }
}
