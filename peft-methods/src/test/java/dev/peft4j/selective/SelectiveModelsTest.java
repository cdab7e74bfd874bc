package dev.peft4j.selective;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The selective methods on the tiny Llama and BERT checkpoints: what trains, what is saved, what unload gives. */
class SelectiveModelsTest {

  private static Map<String, INDArray> golden(String fixture, String... names) throws IOException {
    Map<String, INDArray> out = new HashMap<>();
    try (SafetensorsFile g = SafetensorsFile.open(Fixtures.dir(fixture).resolve("golden.safetensors"))) {
      for (String n : names) {
        out.put(n, g.read(n));
      }
    }
    return out;
  }

  private static Batch llamaBatch() throws IOException {
    Map<String, INDArray> g = golden("tiny-llama", "input_ids", "attention_mask", "loss_labels");
    Map<String, INDArray> inputs = Map.of(Llama.INPUT_IDS, g.get("input_ids"), Llama.ATTENTION_MASK,
        g.get("attention_mask"), Llama.LABELS, g.get("loss_labels"));
    return new Batch(inputs, g.get("attention_mask").sumNumber().longValue());
  }

  /** tiny-bert with a 2-label classifier, and a batch of 2 rows × 8 tokens. */
  private static Batch bertBatch() {
    INDArray ids = Nd4j.createFromArray(new long[][] {{2, 17, 33, 41, 5, 9, 3, 0}, {2, 60, 12, 7, 81, 3, 0, 0}});
    INDArray mask = Nd4j.createFromArray(new long[][] {{1, 1, 1, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1, 0, 0}});
    Map<String, INDArray> inputs = new HashMap<>();
    inputs.put(Bert.INPUT_IDS, ids);
    inputs.put(Bert.ATTENTION_MASK, mask);
    inputs.put(Bert.TOKEN_TYPE_IDS, Nd4j.zeros(org.nd4j.linalg.api.buffer.DataType.INT64, 2, 8));
    inputs.put(Heads.LABELS, Nd4j.createFromArray(1L, 0L));
    return new Batch(inputs, 13);
  }

  private static SameDiff bertClassifier() throws IOException {
    return Heads.sequenceClassification(HfModels.load(Fixtures.dir("tiny-bert")).sameDiff(), 32, 2,
        Heads.Pooling.MEAN, 5);
  }

  /**
   * Trains {@code config} on {@code sd}: the loss falls, exactly the selected base parameters' copies change, the
   * base arrays do not; merged equals unmerged; unload gives the base output bit for bit.
   */
  private static PeftModel trainsOnlyTheSelection(SameDiff sd, AdapterConfig config, Batch batch, String output,
      int steps, double lr) {
    INDArray base = sd.output(batch.inputs(), output).get(output);
    Map<String, INDArray> before = Graphs.parameters(sd);
    PeftModel model = config.apply(sd);
    GraphRewriter.of(sd).requireConsistentLinks();
    assertEquals(base, sd.output(batch.inputs(), output).get(output), "identity at init");
    SelectiveAdapter<?> adapter = (SelectiveAdapter<?>) model.adapter(PeftModel.DEFAULT_ADAPTER);
    Set<String> copies = Set.copyOf(model.trainableParameters().names());
    TrainingHistory h = Trainer.builder(model).steps(steps).learningRate(lr).progress(null).build()
        .fit(List.of(batch));
    assertTrue(h.meanLossOfLast(3) < h.meanLossOfFirst(3) * 0.9, h.meanLossOfFirst(3) + " → " + h.meanLossOfLast(3));
    Map<String, INDArray> after = Graphs.parameters(sd);
    for (String p : before.keySet()) {
      assertEquals(before.get(p), after.get(p), p + " is a base array: training writes only the copies");
    }
    int changed = 0;
    for (String c : copies) {
      String original = c.substring(c.indexOf('/', "peft/default/".length()) + 1);
      assertTrue(adapter.selectedParameters().contains(original), original);
      changed += after.get(c).equals(before.get(original)) ? 0 : 1;
    }
    assertEquals(copies.size(), changed, "every selected parameter moved");
    INDArray adapted = sd.output(batch.inputs(), output).get(output);
    adapter.merge();
    assertTrue(Graphs.relativeError(sd.output(batch.inputs(), output).get(output), adapted) <= 1e-6);
    adapter.unmerge();
    assertEquals(before, Graphs.parameters(sd).entrySet().stream().filter(e -> before.containsKey(e.getKey()))
        .collect(java.util.stream.Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue)), "unmerge restores");
    return model;
  }

  @Test
  void lnTuningOnTinyLlamaTrainsTheRmsNormsAndSavesHfKeys(@TempDir Path dir) throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    Batch batch = llamaBatch();
    PeftModel model = trainsOnlyTheSelection(sd, Peft.lnTuning().build(), batch, Llama.LOSS, 15, 5e-2);
    assertEquals(5L * 64, model.trainableParameters().count(), "2 RMSNorms per layer + model.norm, H = 64");
    assertEquals(List.of("model.layers.0.input_layernorm.ln_tuning_layers.weight",
        "model.layers.0.post_attention_layernorm.ln_tuning_layers.weight",
        "model.layers.1.input_layernorm.ln_tuning_layers.weight",
        "model.layers.1.post_attention_layernorm.ln_tuning_layers.weight",
        "model.norm.ln_tuning_layers.weight"),
        List.copyOf(new java.util.TreeSet<>(model.adapter(PeftModel.DEFAULT_ADAPTER).stateDict().keySet())));
    INDArray trained = sd.output(batch.inputs(), Llama.LOGITS).get(Llama.LOGITS);
    model.save(dir);
    SameDiff fresh = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    Peft.load(fresh, dir);
    assertEquals(trained, fresh.output(batch.inputs(), Llama.LOGITS).get(Llama.LOGITS));
  }

  @Test
  void fullFineTuningOnTinyLlamaTrainsAllButTheEmbeddings() throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    Batch batch = llamaBatch();
    INDArray base = sd.output(batch.inputs(), Llama.LOGITS).get(Llama.LOGITS);
    PeftModel model = trainsOnlyTheSelection(sd, Peft.fullFineTuning().build(), batch, Llama.LOSS, 10, 3e-3);
    SameDiff unloaded = model.unload();
    assertEquals(base, unloaded.output(batch.inputs(), Llama.LOGITS).get(Llama.LOGITS), "unload: bit for bit");
    assertEquals(List.of(), GraphRewriter.of(unloaded).checkLinks());
  }

  @Test
  void linearProbeOnTinyLlamaTrainsTheLmHead() throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-llama")).sameDiff();
    PeftModel model = trainsOnlyTheSelection(sd, Peft.linearProbe().build(), llamaBatch(), Llama.LOSS, 10, 2e-2);
    assertEquals(List.of("lm_head.weight"),
        ((SelectiveAdapter<?>) model.adapter(PeftModel.DEFAULT_ADAPTER)).selectedParameters());
  }

  @Test
  void bitFitOnTinyBertTrainsEveryBias() throws IOException {
    SameDiff sd = bertClassifier();
    PeftModel model = trainsOnlyTheSelection(sd, Peft.bitFit().build(), bertBatch(), Heads.LOSS, 15, 5e-2);
    List<String> selected = ((SelectiveAdapter<?>) model.adapter(PeftModel.DEFAULT_ADAPTER)).selectedParameters();
    assertEquals(2 * 6 + 1, selected.size(), "6 linear layers per layer, 2 layers, and the classifier");
    assertTrue(selected.stream().allMatch(p -> p.endsWith(".bias")));
    assertEquals(2L * (4 * 32 + 64 + 32) + 2, model.trainableParameters().count());
  }

  @Test
  void fullFineTuningOnTinyBertTrainsPositionEmbeddingsAndLayerNorms() throws IOException {
    SameDiff sd = bertClassifier();
    PeftModel model = trainsOnlyTheSelection(sd, Peft.fullFineTuning().build(), bertBatch(), Heads.LOSS, 10, 5e-3);
    FullFineTuning adapter = (FullFineTuning) model.adapter(PeftModel.DEFAULT_ADAPTER);
    assertEquals(List.of("embeddings.word_embeddings.weight", "embeddings.token_type_embeddings.weight"),
        adapter.excludedEmbeddings());
    assertTrue(adapter.selectedParameters().contains("embeddings.position_embeddings.weight"));
    assertTrue(adapter.selectedParameters().contains("embeddings.LayerNorm.bias"));
    assertNotEquals(0, model.trainableParameters().count());
  }
}
