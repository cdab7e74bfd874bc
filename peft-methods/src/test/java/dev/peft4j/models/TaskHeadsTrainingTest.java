package dev.peft4j.models;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfCheckpoint;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.LlamaConfig;
import dev.peft4j.model.Llama;
import dev.peft4j.model.Roberta;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Every task head trains with LoRA and its head in modules_to_save under the Trainer: the loss falls. */
class TaskHeadsTrainingTest {

  private static void lossFalls(SameDiff sd, String[] targets, Batch batch, double lr) {
    PeftModel model = Peft.lora(4).target(targets).modulesToSave(Heads.CLASSIFIER, Heads.SCORE).apply(sd);
    TrainingHistory h = Trainer.builder(model).steps(12).learningRate(lr).progress(null).build()
        .fit(List.of(batch));
    assertTrue(h.meanLossOfLast(3) < h.meanLossOfFirst(3) * 0.8, h.meanLossOfFirst(3) + " → " + h.meanLossOfLast(3));
  }

  /** The first step of a CLS-pooled head used to fail with "cannot get size of dimension 1 for rank 1 NDArray". */
  @Test
  void clsPooledHeadTrains() throws IOException {
    SameDiff sd = Heads.sequenceClassification(HfModels.load(Fixtures.dir("tiny-bert")).sameDiff(), 32, 2,
        Heads.Pooling.CLS, 3);
    lossFalls(sd, new String[] {"query", "value"}, Graphs.tinyBertBatch(11), 0.05);
  }

  /**
   * A checkpoint with a pooler under peft4j's mean-pooled head: all-linear adapts the pooler too (HF's rule), which
   * the loss does not read; training must still run.
   */
  @Test
  void allLinearTrainsWhenThePoolerIsUnused() throws IOException {
    SameDiff sd = Heads.sequenceClassification(HfModels.load(Fixtures.dir("tiny-bert-cls")).sameDiff(), 32, 2,
        Heads.Pooling.MEAN, 3);
    lossFalls(sd, new String[] {"all-linear"}, Graphs.tinyBertBatch(11), 0.05);
  }

  /** Also without token_type_ids in the batch: zeros, as transformers defaults them. */
  @Test
  void bertForSequenceClassificationTrains() throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-bert"), "BertForSequenceClassification", 2).sameDiff();
    Batch b = Graphs.tinyBertBatch(11);
    Map<String, INDArray> inputs = new HashMap<>(b.inputs());
    inputs.remove(Bert.TOKEN_TYPE_IDS);
    lossFalls(sd, new String[] {"query", "value"}, new Batch(inputs, b.tokens()), 0.05);
  }

  @Test
  void bertForTokenClassificationTrains() throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-bert"), "BertForTokenClassification", 3).sameDiff();
    Batch b = Graphs.tinyBertBatch(12);
    Map<String, INDArray> inputs = new HashMap<>(b.inputs());
    INDArray labels = b.inputs().get(Bert.INPUT_IDS).fmod(3);                         // [4, 8], a label per token
    labels.muli(b.inputs().get(Bert.ATTENTION_MASK)).addi(b.inputs().get(Bert.ATTENTION_MASK).rsub(1).muli(-100));
    inputs.put(Heads.LABELS, labels);                                                 // padding: −100
    lossFalls(sd, new String[] {"query", "value"}, new Batch(inputs, b.tokens()), 0.05);
  }

  /** A bare RobertaModel checkpoint (tiny-roberta, pad id 1) with the head HF would initialise for it. */
  @Test
  void robertaForSequenceClassificationOnABaseCheckpointTrains() throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-roberta"), "RobertaForSequenceClassification", 2).sameDiff();
    Map<String, INDArray> inputs = new HashMap<>();
    inputs.put(Roberta.INPUT_IDS, Nd4j.createFromArray(new long[][] {{0, 9, 17, 2}, {0, 44, 2, 1}, {0, 7, 2, 1},
        {0, 12, 30, 2}}));
    inputs.put(Roberta.ATTENTION_MASK, Nd4j.createFromArray(new long[][] {{1, 1, 1, 1}, {1, 1, 1, 0}, {1, 1, 1, 0},
        {1, 1, 1, 1}}));
    inputs.put(Heads.LABELS, Nd4j.createFromArray(0L, 1L, 0L, 1L));
    lossFalls(sd, new String[] {"query", "value"}, new Batch(inputs, 14), 0.05);
  }

  @Test
  void llamaForSequenceClassificationTrains() throws IOException {
    // tiny-llama's config has no pad_token_id, with which transformers (and peft4j) refuse batches of several rows
    SameDiff sd;
    try (HfCheckpoint weights = HfCheckpoint.open(Fixtures.dir("tiny-llama"))) {
      sd = Heads.llamaForSequenceClassification(LlamaConfig.read(Fixtures.dir("tiny-llama").resolve("config.json")),
          weights, 2, 0L, 0);
    }
    Map<String, INDArray> inputs = new HashMap<>();
    inputs.put(Llama.INPUT_IDS, Nd4j.createFromArray(new long[][] {{5, 9, 17, 3}, {8, 2, 44, 0}, {7, 7, 1, 0},
        {90, 12, 0, 0}}));
    inputs.put(Llama.ATTENTION_MASK, Nd4j.createFromArray(new long[][] {{1, 1, 1, 1}, {1, 1, 1, 0}, {1, 1, 1, 0},
        {1, 1, 0, 0}}));
    inputs.put(Heads.LABELS, Nd4j.createFromArray(0L, 1L, 0L, 1L));
    lossFalls(sd, new String[] {"q_proj", "v_proj"}, new Batch(inputs, 13), 0.02);
  }
}
