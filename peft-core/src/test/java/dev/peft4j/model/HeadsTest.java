package dev.peft4j.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Hugging Face's task heads against transformers' logits (scripts/make_adapter_fixtures.py, tiny-bert-cls). */
class HeadsTest {

  @Test
  void bertForSequenceClassificationMatchesTransformers() throws IOException {
    Path dir = Fixtures.dir("tiny-bert-cls");
    SameDiff sd;
    try (HfCheckpoint weights = HfCheckpoint.open(dir)) {
      sd = Heads.bertForSequenceClassification(BertConfig.read(dir.resolve("config.json")), weights, 3, 0);
      assertEquals(List.of(), List.copyOf(weights.unused()), "pooler and classifier come from the checkpoint");
    }
    Map<String, INDArray> g = HfModelsTest.golden("tiny-bert-cls");
    INDArray logits = sd.output(Map.of(Bert.INPUT_IDS, g.get("input_ids"), Bert.ATTENTION_MASK,
        g.get("attention_mask"), Bert.TOKEN_TYPE_IDS, g.get("token_type_ids")), Heads.LOGITS).get(Heads.LOGITS);
    double diff = Math.abs(logits.sub(g.get("logits")).maxNumber().doubleValue());
    diff = Math.max(diff, Math.abs(logits.sub(g.get("logits")).minNumber().doubleValue()));
    assertTrue(diff <= 1e-4, "logits differ by " + diff);
  }

  @Test
  void allLinearTakesThePoolerAndLeavesTheClassifierAsHfPeftDoes() throws IOException {
    Path dir = Fixtures.dir("tiny-bert-cls");
    try (HfCheckpoint weights = HfCheckpoint.open(dir)) {
      BertConfig config = BertConfig.read(dir.resolve("config.json"));
      List<String> seq = allLinear(Heads.bertForSequenceClassification(config, weights, 3, 0));
      assertEquals(13, seq.size(), "6 per layer × 2 + the pooler, as PEFT 0.21 expands all-linear: " + seq);
      assertTrue(seq.contains("bert.pooler.dense"), seq.toString());
      assertFalse(seq.contains(Heads.CLASSIFIER), seq.toString());
      List<String> token = allLinear(Heads.bertForTokenClassification(config, weights, 3, 0));
      assertEquals(12, token.size(), "no pooler in BertForTokenClassification: " + token);
      assertTrue(token.stream().allMatch(m -> m.startsWith("bert.encoder.")), token.toString());
    }
  }

  @Test
  void allLinearLeavesTheDecodersScore() throws IOException {
    Path dir = Fixtures.dir("tiny-llama");
    try (HfCheckpoint weights = HfCheckpoint.open(dir)) {
      List<String> all = allLinear(Heads.llamaForSequenceClassification(LlamaConfig.read(dir.resolve("config.json")),
          weights, 2, 0L, 0));
      assertEquals(14, all.size(), "q, k, v, o, gate, up, down × 2 layers, no score: " + all);
      assertFalse(all.contains(Heads.SCORE), all.toString());
    }
  }

  private static List<String> allLinear(SameDiff sd) {
    return Targets.names(Targets.ALL_LINEAR).selectLinear(GraphRewriter.of(sd), "LoRA").stream()
        .map(LinearModule::name).toList();
  }

  @Test
  void aCheckpointHeadOfAnotherLabelCountIsRefusedNamingBothCounts() throws IOException {
    Path dir = Fixtures.dir("tiny-bert-cls");
    try (HfCheckpoint weights = HfCheckpoint.open(dir)) {
      BertConfig config = BertConfig.read(dir.resolve("config.json"));
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> Heads.bertForSequenceClassification(config, weights, 5, 0));
      assertTrue(e.getMessage().contains("'classifier' has 3 labels; 5 were asked for"), e.getMessage());
    }
  }

  @Test
  void aBaseCheckpointGetsAFreshHeadAndPooler() throws IOException {
    Path dir = Fixtures.dir("tiny-bert");
    try (HfCheckpoint weights = HfCheckpoint.open(dir)) {
      SameDiff sd = Heads.bertForSequenceClassification(BertConfig.read(dir.resolve("config.json")), weights, 2, 7);
      assertEquals(List.of(32L, 2L), List.of(sd.getArrForVarName("classifier.weight").shape()[0],
          sd.getArrForVarName("classifier.weight").shape()[1]));
      double std = sd.getArrForVarName("bert.pooler.dense.weight").stdNumber().doubleValue();
      assertEquals(0.02, std, 0.004, "pooler initialised normal(0, 0.02)");
    }
  }

  /** HF's RobertaForSequenceClassification.from_pretrained on a bare RobertaModel: a fresh two-linear head. */
  @Test
  void aBareRobertaCheckpointGetsAFreshHead() throws IOException {
    HfModels.Loaded m = HfModels.load(Fixtures.dir("tiny-roberta"), "RobertaForSequenceClassification", 4);
    assertEquals(dev.peft4j.TaskType.SEQ_CLS, m.taskType());
    SameDiff sd = m.sameDiff();
    assertEquals(List.of(32L, 32L), List.of(sd.getArrForVarName("classifier.dense.weight").shape()[0],
        sd.getArrForVarName("classifier.dense.weight").shape()[1]));
    INDArray out = sd.getArrForVarName("classifier.out_proj.weight");
    assertEquals(List.of(32L, 4L), List.of(out.shape()[0], out.shape()[1]), "[in, labels]");
    assertEquals(0.02, out.stdNumber().doubleValue(), 0.006, "normal(0, 0.02)");
    assertEquals(0.0, sd.getArrForVarName("classifier.out_proj.bias").amaxNumber().doubleValue());
    assertTrue(sd.hasVariable("roberta.encoder.layer.0.attention.self.query.weight"), "named as HF's task model");
    INDArray logits = sd.output(Map.of(Roberta.INPUT_IDS, Nd4j.createFromArray(new long[][] {{0, 9, 2}, {0, 5, 1}}),
        Roberta.ATTENTION_MASK, Nd4j.createFromArray(new long[][] {{1, 1, 1}, {1, 1, 0}})), Heads.LOGITS)
        .get(Heads.LOGITS);
    assertEquals(List.of(2L, 4L), List.of(logits.shape()[0], logits.shape()[1]));
    List<String> all = allLinear(sd);
    assertEquals(12, all.size(), "6 per layer × 2; the classifier (dense and out_proj) left out, as PEFT 0.21: " + all);
    assertTrue(all.stream().allMatch(n -> n.startsWith("roberta.encoder.")), all.toString());
  }

  @Test
  void aRobertaHeadOfAnotherLabelCountIsRefusedNamingBothCounts() throws IOException {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> HfModels.load(Fixtures.dir("tiny-xlm-roberta"), "XLMRobertaForSequenceClassification", 5));
    assertTrue(e.getMessage().contains("'classifier.out_proj' has 3 labels; 5 were asked for"), e.getMessage());
  }
}
