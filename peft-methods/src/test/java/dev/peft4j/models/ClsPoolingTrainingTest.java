package dev.peft4j.models;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfModels;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * Heads that read the [CLS] token train under the Trainer: the first step of a CLS-pooled head used to fail with
 * "cannot get size of dimension 1 for rank 1 NDArray".
 */
class ClsPoolingTrainingTest {

  @Test
  void clsPooledHeadTrainsWithLora() throws IOException {
    SameDiff sd = Heads.sequenceClassification(HfModels.load(Fixtures.dir("tiny-bert")).sameDiff(), 32, 2,
        Heads.Pooling.CLS, 3);
    PeftModel model = Peft.lora(4).target("query", "value").modulesToSave(Heads.CLASSIFIER).apply(sd);
    Batch batch = Graphs.tinyBertBatch(11);
    TrainingHistory h = Trainer.builder(model).steps(15).learningRate(0.05).progress(null).build()
        .fit(List.of(batch));
    assertTrue(h.meanLossOfLast(3) < h.meanLossOfFirst(3) * 0.8, h.meanLossOfFirst(3) + " → " + h.meanLossOfLast(3));
  }
}
