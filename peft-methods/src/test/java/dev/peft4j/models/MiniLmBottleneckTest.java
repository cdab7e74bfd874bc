package dev.peft4j.models;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.bottleneck.Bottleneck;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.PretrainedModels;
import dev.peft4j.model.Tokenizer;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Bottleneck adapters and a LoRA + bottleneck hybrid on the real all-MiniLM-L6-v2 (H = 384, 6 layers). */
class MiniLmBottleneckTest {

  private static final List<String> TEXTS = List.of(
      "I loved this film, it was wonderful.", "What a fantastic, joyful experience.",
      "Absolutely brilliant and moving.", "A delightful story with great acting.",
      "This was terrible and boring.", "I hated every minute of it.",
      "An awful, dull waste of time.", "The worst film I have seen this year.");
  private static final long[] LABELS = {1, 1, 1, 1, 0, 0, 0, 0};

  private static Batch labelledBatch(Tokenizer.Encoded encoded) {
    Map<String, INDArray> inputs = new HashMap<>(encoded.bertInputs());
    inputs.put(Heads.LABELS, Nd4j.createFromArray(LABELS));
    return new Batch(inputs, encoded.tokens());
  }

  /** Trains {@code model} on the batch; asserts the loss falls and exactly its trainable parameters change. */
  private static void trainsOnlyItsParameters(PeftModel model, SameDiff sd, Batch batch, int steps) {
    Set<String> trainable = Set.copyOf(model.trainableParameters().names());
    Map<String, INDArray> before = Graphs.parameters(sd);
    TrainingHistory h = Trainer.builder(model).steps(steps).learningRate(5e-3).progress(null).build()
        .fit(List.of(batch));
    assertTrue(h.meanLossOfLast(3) < h.meanLossOfFirst(3) * 0.8, h.meanLossOfFirst(3) + " → " + h.meanLossOfLast(3));
    Graphs.parameters(sd).forEach((name, value) -> {
      if (trainable.contains(name)) {
        assertNotEquals(before.get(name), value, name);
      } else {
        assertEquals(before.get(name), value, name);
      }
    });
  }

  @Test
  void houlsbyAdaptersLeaveTheHiddenStatesUnchangedAtInitThenTrain() {
    PretrainedModels.Encoder m = PretrainedModels.miniLm(32);
    SameDiff sd = Heads.sequenceClassification(m.sameDiff(), 384, 2, Heads.Pooling.MEAN, 3);
    Tokenizer.Encoded encoded = m.tokenizer().encode(TEXTS);
    Map<String, INDArray> encoderInputs = encoded.bertInputs();
    INDArray base = sd.output(encoderInputs, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE);

    PeftModel model = Peft.bottleneck(16).modulesToSave(Heads.CLASSIFIER).apply(sd);
    GraphRewriter.of(sd).requireConsistentLinks();
    assertEquals(base, sd.output(encoderInputs, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE),
        "last_hidden_state at init equals the base exactly");
    List<String> expected = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      expected.add("encoder.layer." + i + ".attention.output.dense");
      expected.add("encoder.layer." + i + ".output.dense");
    }
    assertEquals(expected, ((Bottleneck) model.adapter("default")).adaptedModules());
    assertEquals(12L * (2 * 384 * 16 + 16 + 384) + 384 * 2 + 2, model.trainableParameters().count(),
        "12 adapters of 2·H·b + b + H, plus the head");

    trainsOnlyItsParameters(model, sd, labelledBatch(encoded), 12);
    assertNotEquals(base, sd.output(encoderInputs, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE));
    SameDiff unloaded = model.unload();
    assertEquals(base, unloaded.output(encoderInputs, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE),
        "unload restores the base bit for bit");
    m.tokenizer().close();
  }

  @Test
  void loraOnAttentionPlusBottleneckAfterTheFeedForwardTrainsAsOne() {
    PretrainedModels.Encoder m = PretrainedModels.miniLm(32);
    SameDiff sd = Heads.sequenceClassification(m.sameDiff(), 384, 2, Heads.Pooling.MEAN, 3);
    Tokenizer.Encoded encoded = m.tokenizer().encode(TEXTS);
    INDArray base = sd.output(encoded.bertInputs(), Heads.LOGITS).get(Heads.LOGITS);

    PeftModel model = Peft.hybrid(Peft.lora(8).alpha(16).target("query", "value").build(),
        Peft.bottleneck(16).afterFfnOnly().build()).modulesToSave(Heads.CLASSIFIER).apply(sd);
    assertEquals(base, sd.output(encoded.bertInputs(), Heads.LOGITS).get(Heads.LOGITS), "identity at init");
    assertEquals(12L * 8 * (384 + 384) + 6L * (2 * 384 * 16 + 16 + 384) + 384 * 2 + 2,
        model.trainableParameters().count(), "LoRA on 12 projections, 6 adapters, the head");
    trainsOnlyItsParameters(model, sd, labelledBatch(encoded), 12);
    m.tokenizer().close();
  }
}
