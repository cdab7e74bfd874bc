package dev.peft4j.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.PeftModel;
import dev.peft4j.TaskType;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfCheckpoint;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.model.LlamaConfig;
import dev.peft4j.model.Tokenizer;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Task adapters both ways with Hugging Face PEFT 0.21 (scripts/make_adapter_fixtures.py --tasks): SEQ_CLS and
 * TOKEN_CLS on BERT (keys {@code bert.encoder…}, the classifier in modules_to_save, all-linear with the pooler),
 * SEQ_CLS on Llama ({@code score}), all-linear on a BERT with a pooler. HF-saved files reproduce HF's logits; files
 * peft4j saves are written under {@code peft-methods/target/task-check/<fixture>} with peft4j's logits, for
 * {@code scripts/make_adapter_fixtures.py --check} to load in HF PEFT.
 */
class HfTaskAdaptersTest {

  private static final Path CHECK = Path.of("target", "task-check");

  private static Map<String, INDArray> golden(String fixture) throws IOException {
    Map<String, INDArray> out = new HashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(Fixtures.dir(fixture).resolve("golden.safetensors"))) {
      for (String n : f.names()) {
        out.put(n, f.read(n));
      }
    }
    return out;
  }

  private static Map<String, INDArray> inputs(Map<String, INDArray> golden) {
    Map<String, INDArray> in = new HashMap<>();
    for (String k : List.of(Bert.INPUT_IDS, Bert.ATTENTION_MASK, Bert.TOKEN_TYPE_IDS)) {
      if (golden.containsKey(k)) {
        in.put(k, golden.get(k));
      }
    }
    return in;
  }

  private static double maxAbsDiff(INDArray a, INDArray b) {
    INDArray d = a.castTo(b.dataType()).sub(b);
    return Math.max(d.maxNumber().doubleValue(), -d.minNumber().doubleValue());
  }

  /** Loads {@code fixture} on the task model of {@code base}, compares logits, saves it for the HF check. */
  private static PeftModel reproduces(String fixture, String base, String architecture, int labels)
      throws IOException {
    return reproduces(fixture, base, HfModels.load(Fixtures.dir(base), architecture, labels).sameDiff());
  }

  private static PeftModel reproduces(String fixture, String base, SameDiff sd) throws IOException {
    PeftModel model = Peft.load(sd, Fixtures.dir(fixture));
    Map<String, INDArray> g = golden(fixture);
    INDArray logits = model.output(inputs(g), Heads.LOGITS).get(Heads.LOGITS);
    double diff = g.get("logits").rank() == 3
        ? Graphs.maxDiffOnRealTokens(logits, g.get("logits"), g.get(Bert.ATTENTION_MASK))
        : maxAbsDiff(logits, g.get("logits"));
    assertTrue(diff <= 1e-4, fixture + ": logits differ from HF PEFT's by " + diff);

    Path out = CHECK.resolve(fixture);
    model.baseModelNameOrPath(base).save(out); // the fixture's name: --check finds the base among the fixtures
    Map<String, INDArray> mine = new HashMap<>(inputs(g));
    mine.put("logits", logits);
    Safetensors.write(out.resolve("golden.safetensors"), mine, Map.of("format", "pt"));
    return model;
  }

  @Test
  void seqClsOnBertWithPoolerAndAllLinearReproducesHf() throws IOException {
    PeftModel model = reproduces("seq-cls-tiny-bert", "tiny-bert-cls", "BertForSequenceClassification", 3);
    assertEquals(TaskType.SEQ_CLS, model.taskType());
    JsonObject saved = savedConfig("seq-cls-tiny-bert");
    assertEquals("SEQ_CLS", saved.get("task_type").getAsString());
    assertEquals("tiny-bert-cls", saved.get("base_model_name_or_path").getAsString());
    try (SafetensorsFile f = SafetensorsFile.open(CHECK.resolve("seq-cls-tiny-bert").resolve(AdapterFiles.WEIGHTS))) {
      long[] head = f.read("base_model.model.classifier.weight").shape();
      assertEquals(List.of(3L, 32L), List.of(head[0], head[1]), "the head in PyTorch's [out, in]");
      assertTrue(f.names().contains("base_model.model.bert.pooler.dense.lora_A.weight"), f.names().toString());
    }
  }

  @Test
  void tokenClsOnBertReproducesHf() throws IOException {
    reproduces("token-cls-tiny-bert", "tiny-bert-cls", "BertForTokenClassification", 3);
  }

  /** tiny-llama's config has no pad_token_id; the fixture's task model was built with 0, the golden inputs' pad. */
  @Test
  void seqClsOnLlamaReproducesHf() throws IOException {
    Path dir = Fixtures.dir("tiny-llama");
    SameDiff sd;
    try (HfCheckpoint weights = HfCheckpoint.open(dir)) {
      sd = Heads.llamaForSequenceClassification(LlamaConfig.read(dir.resolve("config.json")), weights, 2, 0L, 0);
    }
    reproduces("seq-cls-tiny-llama", "tiny-llama", sd);
  }

  /**
   * PEFT 0.21's SEQ_CLS LoRA on Qwen3ForSequenceClassification (scripts/fixtures_decoder_cls.py): the checkpoint's
   * config.json names its pad_token_id, found in input_ids with right and with left padding.
   */
  @Test
  void seqClsOnQwen3ReproducesHfWithRightAndLeftPadding() throws IOException {
    HfModels.Loaded task = HfModels.load(Fixtures.dir("tiny-qwen3-tok"), "Qwen3ForSequenceClassification", 2);
    PeftModel model = Peft.load(task.sameDiff(), Fixtures.dir("seq-cls-tiny-qwen3"));
    assertEquals(TaskType.SEQ_CLS, model.taskType());
    Map<String, INDArray> g = golden("seq-cls-tiny-qwen3");
    for (String side : List.of("right", "left")) {
      INDArray logits = model.output(Map.of(Llama.INPUT_IDS, g.get(side + "_input_ids"), Llama.ATTENTION_MASK,
          g.get(side + "_attention_mask")), Heads.LOGITS).get(Heads.LOGITS);
      double diff = maxAbsDiff(logits, g.get(side + "_logits"));
      System.out.printf("seq-cls-tiny-qwen3, %s padding: max |logits - PEFT's| = %.2e%n", side, diff);
      assertTrue(diff <= 1e-5, side + " padding: logits differ from HF PEFT's by " + diff);
    }
  }

  @Test
  void allLinearOnABertWithAPoolerReproducesHf() throws IOException {
    HfModels.Loaded m = HfModels.load(Fixtures.dir("tiny-bert-cls")); // a BertModel: the checkpoint has a pooler
    PeftModel model = Peft.load(m.sameDiff(), Fixtures.dir("lora-all-linear-tiny-bert"));
    Map<String, INDArray> g = golden("lora-all-linear-tiny-bert");
    Map<String, INDArray> out = model.output(inputs(g), Bert.LAST_HIDDEN_STATE, Bert.POOLER_OUTPUT);
    double hidden = Graphs.maxDiffOnRealTokens(out.get(Bert.LAST_HIDDEN_STATE), g.get("last_hidden_state"),
        g.get(Bert.ATTENTION_MASK));
    double pooled = maxAbsDiff(out.get(Bert.POOLER_OUTPUT), g.get("pooler_output"));
    assertTrue(hidden <= 1e-4 && pooled <= 1e-4, "last_hidden_state " + hidden + ", pooler_output " + pooled);
  }

  /** The same SEQ_CLS file on a graph named like BertModel ({@code encoder.…}): the {@code bert.} prefix is mapped. */
  @Test
  void aSeqClsAdapterLoadsOnAnUnprefixedEncoderWithAClassifier() throws IOException {
    SameDiff sd = Heads.sequenceClassification(HfModels.load(Fixtures.dir("tiny-bert-cls")).sameDiff(), 32, 3,
        Heads.Pooling.CLS, 0);
    PeftModel model = Peft.load(sd, Fixtures.dir("seq-cls-tiny-bert"));
    assertEquals(13, model.adapter(PeftModel.DEFAULT_ADAPTER).trainableParameters().names().stream()
        .filter(n -> n.endsWith("lora_A")).count(), "every linear layer but the classifier, pooler included");
  }

  /** The other way: an adapter saved on BertModel ({@code encoder.…}) loads on a task graph ({@code bert.encoder.…}). */
  @Test
  void aBertModelAdapterLoadsOnTheTaskModel() throws IOException {
    HfModels.Loaded task = HfModels.load(Fixtures.dir("tiny-bert"), "BertForSequenceClassification", 2);
    PeftModel model = Peft.load(task.sameDiff(), Fixtures.dir("lora-tiny-bert"));
    Map<String, INDArray> g = golden("lora-tiny-bert");
    double diff = Graphs.maxDiffOnRealTokens(model.output(inputs(g), Bert.LAST_HIDDEN_STATE)
        .get(Bert.LAST_HIDDEN_STATE), g.get("last_hidden_state"), g.get(Bert.ATTENTION_MASK));
    assertTrue(diff <= 1e-4, "last_hidden_state differs from HF PEFT's by " + diff);
    assertTrue(model.trainableParameters().names().stream().filter(n -> n.contains("lora_A"))
        .allMatch(n -> n.contains("bert.encoder.layer.")), model.trainableParameters().names().toString());
  }

  @Test
  void aTaskAdapterForAHeadTheModelLacksIsRefusedAndChangesNothing() throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-bert-cls")).sameDiff(); // no classifier
    Map<String, INDArray> before = Graphs.parameters(sd);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Peft.load(sd, Fixtures.dir("seq-cls-tiny-bert")));
    assertTrue(e.getMessage().contains("head 'classifier' (task_type SEQ_CLS)"), e.getMessage());
    assertEquals(before, Graphs.parameters(sd));
    assertEquals(List.of(), GraphRewriter.of(sd).checkLinks());
  }

  @Test
  void aHeadOfAnotherLabelCountIsRefusedNamingBothCounts() throws IOException {
    SameDiff two = HfModels.load(Fixtures.dir("tiny-bert"), "BertForSequenceClassification", 2).sameDiff();
    Map<String, INDArray> before = Graphs.parameters(two);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Peft.load(two, Fixtures.dir("seq-cls-tiny-bert")));
    assertTrue(e.getMessage().contains("head 'classifier' has 3 labels; this model's has 2"), e.getMessage());
    assertEquals(before, Graphs.parameters(two));
    assertEquals(List.of(), GraphRewriter.of(two).checkLinks());
  }

  @Test
  void anUnknownTaskTypeIsRefused(@TempDir Path tmp) throws IOException {
    Path dir = tmp.resolve("a");
    Files.createDirectories(dir);
    for (String f : List.of(AdapterFiles.CONFIG, AdapterFiles.WEIGHTS)) {
      Files.copy(Fixtures.dir("seq-cls-tiny-bert").resolve(f), dir.resolve(f));
    }
    Path config = dir.resolve(AdapterFiles.CONFIG);
    Files.writeString(config, Files.readString(config).replace("\"SEQ_CLS\"", "\"SEQ_REGRESSION\""));
    SameDiff sd = HfModels.load(Fixtures.dir("tiny-bert-cls"), "BertForSequenceClassification", 3).sameDiff();
    IOException e = assertThrows(IOException.class, () -> Peft.load(sd, dir));
    assertTrue(e.getMessage().contains("task_type must be null or one of"), e.getMessage());
    assertTrue(GraphRewriter.of(sd).trainableVariables().size() > 10, "nothing frozen");
  }

  /**
   * An adapter peft4j trains itself (LoRA on all-linear, the classifier in modules_to_save) on a task model built
   * from a base checkpoint, saved to {@code target/task-check/trained-seq-cls-tiny-bert} with its logits for
   * {@code make_adapter_fixtures.py --check} (HF builds BertForSequenceClassification from tiny-bert-cls and takes
   * the classifier from the file).
   */
  @Test
  void anAdapterTrainedByPeft4jIsSavedForHf() throws IOException {
    HfModels.Loaded task = HfModels.loadTask(Fixtures.dir("tiny-bert-cls"));
    PeftModel model = Peft.lora(2).alpha(4).target("all-linear").modulesToSave("classifier").apply(task.sameDiff());
    Map<String, INDArray> g = golden("seq-cls-tiny-bert");
    Map<String, INDArray> batch = new HashMap<>(inputs(g));
    batch.put(Heads.LABELS, Nd4j.createFromArray(0L, 2L, 1L));
    dev.peft4j.train.Trainer.builder(model).steps(5).learningRate(0.05).progress(null).build()
        .fit(List.of(new dev.peft4j.train.Batch(batch, 21)));
    INDArray logits = model.output(inputs(g), Heads.LOGITS).get(Heads.LOGITS);
    Path out = CHECK.resolve("trained-seq-cls-tiny-bert");
    model.baseModelNameOrPath("tiny-bert-cls").save(out);
    Map<String, INDArray> mine = new HashMap<>(inputs(g));
    mine.put("logits", logits);
    Safetensors.write(out.resolve("golden.safetensors"), mine, Map.of("format", "pt"));
    PeftModel reloaded = Peft.load(HfModels.loadTask(Fixtures.dir("tiny-bert-cls")).sameDiff(), out);
    assertEquals(logits, reloaded.output(inputs(g), Heads.LOGITS).get(Heads.LOGITS));
    assertTrue(maxAbsDiff(logits, g.get("logits")) > 1e-3, "trained away from the fixture's adapter");
  }

  /**
   * SEQ_CLS on XLM-RoBERTa from PEFT 0.21: keys {@code roberta.encoder…}, and the classifier is a module with two
   * linears ({@code classifier.dense}, {@code classifier.out_proj}) saved whole in PyTorch's {@code [out, in]}.
   */
  @Test
  void seqClsOnXlmRobertaReproducesHfBothWays() throws IOException {
    HfModels.Loaded task = HfModels.loadTask(Fixtures.dir("tiny-xlm-roberta"));
    assertEquals(TaskType.SEQ_CLS, task.taskType());
    PeftModel model = reproduces("seq-cls-tiny-xlm-roberta", "tiny-xlm-roberta", task.sameDiff());
    assertEquals(List.of("classifier.dense.bias", "classifier.dense.weight", "classifier.out_proj.bias",
        "classifier.out_proj.weight"), model.trainableParameters().names().stream()
        .filter(n -> n.contains("modules_to_save")).map(n -> n.substring(n.lastIndexOf('/') + 1)).sorted().toList());
    try (SafetensorsFile f = SafetensorsFile.open(CHECK.resolve("seq-cls-tiny-xlm-roberta")
        .resolve(AdapterFiles.WEIGHTS))) {
      long[] out = f.read("base_model.model.classifier.out_proj.weight").shape();
      assertEquals(List.of(3L, 32L), List.of(out[0], out[1]), "out_proj in PyTorch's [out, in]");
      assertTrue(f.names().contains("base_model.model.roberta.encoder.layer.0.attention.self.query.lora_A.weight"),
          f.names().toString());
    }

    HfModels.Loaded again = HfModels.loadTask(Fixtures.dir("tiny-xlm-roberta"));
    PeftModel frozen = Peft.fromPretrained(again.sameDiff(), Fixtures.dir("seq-cls-tiny-xlm-roberta"));
    Map<String, INDArray> g = golden("seq-cls-tiny-xlm-roberta");
    double diff = maxAbsDiff(frozen.output(inputs(g), Heads.LOGITS).get(Heads.LOGITS), g.get("logits"));
    assertTrue(diff <= 1e-4, "fromPretrained: logits differ by " + diff);
  }

  /**
   * peft4j trains LoRA and RoBERTa's two-linear classifier, saves them to
   * {@code target/task-check/trained-seq-cls-tiny-xlm-roberta} with its logits for
   * {@code make_adapter_fixtures.py --check}.
   */
  @Test
  void aRobertaAdapterTrainedByPeft4jIsSavedForHf() throws IOException {
    HfModels.Loaded task = HfModels.loadTask(Fixtures.dir("tiny-xlm-roberta"));
    PeftModel model = Peft.lora(2).alpha(4).target("query", "value").modulesToSave("classifier")
        .apply(task.sameDiff());
    Map<String, INDArray> g = golden("seq-cls-tiny-xlm-roberta");
    Map<String, INDArray> batch = new HashMap<>(inputs(g));
    batch.put(Heads.LABELS, Nd4j.createFromArray(0L, 2L, 1L));
    dev.peft4j.train.Trainer.builder(model).steps(5).learningRate(0.05).progress(null).build()
        .fit(List.of(new dev.peft4j.train.Batch(batch, 22)));
    INDArray logits = model.output(inputs(g), Heads.LOGITS).get(Heads.LOGITS);
    INDArray base = HfModels.loadTask(Fixtures.dir("tiny-xlm-roberta")).sameDiff()
        .output(inputs(g), Heads.LOGITS).get(Heads.LOGITS);
    assertTrue(maxAbsDiff(logits, base) > 1e-3, "training moved the logits");
    Path out = CHECK.resolve("trained-seq-cls-tiny-xlm-roberta");
    model.baseModelNameOrPath("tiny-xlm-roberta").save(out);
    Map<String, INDArray> mine = new HashMap<>(inputs(g));
    mine.put("logits", logits);
    Safetensors.write(out.resolve("golden.safetensors"), mine, Map.of("format", "pt"));
    PeftModel reloaded = Peft.load(HfModels.loadTask(Fixtures.dir("tiny-xlm-roberta")).sameDiff(), out);
    assertTrue(maxAbsDiff(logits, reloaded.output(inputs(g), Heads.LOGITS).get(Heads.LOGITS)) <= 1e-6);
  }

  @Test
  void aRobertaSeqClsAdapterOntoTheBareEncoderOrAnotherLabelCountIsRefused() throws IOException {
    SameDiff bare = HfModels.load(Fixtures.dir("tiny-roberta")).sameDiff(); // RobertaModel: no classifier
    Map<String, INDArray> before = Graphs.parameters(bare);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Peft.load(bare, Fixtures.dir("seq-cls-tiny-xlm-roberta")));
    assertTrue(e.getMessage().contains("head 'classifier' (task_type SEQ_CLS)"), e.getMessage());
    assertEquals(before, Graphs.parameters(bare));
    assertEquals(List.of(), GraphRewriter.of(bare).checkLinks());

    SameDiff two = HfModels.load(Fixtures.dir("tiny-roberta"), "RobertaForSequenceClassification", 2).sameDiff();
    Map<String, INDArray> beforeTwo = Graphs.parameters(two);
    IllegalArgumentException labels = assertThrows(IllegalArgumentException.class,
        () -> Peft.load(two, Fixtures.dir("seq-cls-tiny-xlm-roberta")));
    assertTrue(labels.getMessage().contains("head 'classifier' has 3 labels; this model's has 2"),
        labels.getMessage());
    assertEquals(beforeTwo, Graphs.parameters(two));
    assertEquals(List.of(), GraphRewriter.of(two).checkLinks());
  }

  /** HF's {@code PeftModel.from_pretrained(model, dir)}: is_trainable=False by default. */
  @Test
  void fromPretrainedFreezesTheAdapterForInferenceUnlessAskedToTrain() throws IOException {
    HfModels.Loaded task = HfModels.loadTask(Fixtures.dir("tiny-bert-cls")); // architectures: BertForSequence…
    assertEquals(TaskType.SEQ_CLS, task.taskType());
    PeftModel frozen = Peft.fromPretrained(task.sameDiff(), Fixtures.dir("seq-cls-tiny-bert"));
    assertEquals(0, frozen.trainableParameters().count());
    assertEquals(List.of(), GraphRewriter.of(task.sameDiff()).trainableVariables(), "nothing left to train");
    Map<String, INDArray> g = golden("seq-cls-tiny-bert");
    double diff = maxAbsDiff(frozen.output(inputs(g), Heads.LOGITS).get(Heads.LOGITS), g.get("logits"));
    assertTrue(diff <= 1e-4, "frozen adapter's logits differ by " + diff);
    frozen.unfreezeAdapter(PeftModel.DEFAULT_ADAPTER);
    assertTrue(frozen.trainableParameters().count() > 0);

    HfModels.Loaded again = HfModels.loadTask(Fixtures.dir("tiny-bert-cls"));
    PeftModel trainable = Peft.fromPretrained(again.sameDiff(), Fixtures.dir("seq-cls-tiny-bert"), true);
    assertEquals(frozen.trainableParameters().count(), trainable.trainableParameters().count());
  }

  /** transformers' defaults: token_type_ids zeros, attention_mask ones; too long an input is refused up front. */
  @Test
  void bertInputsDefaultAndTooLongInputsAreRefusedNamingTheLimit() throws IOException {
    HfModels.Loaded task = HfModels.loadTask(Fixtures.dir("tiny-bert-cls"));
    PeftModel model = Peft.load(task.sameDiff(), Fixtures.dir("seq-cls-tiny-bert"));
    Map<String, INDArray> g = golden("seq-cls-tiny-bert");
    INDArray ids = g.get(Bert.INPUT_IDS).getRow(0).reshape(1, -1);   // row 0: every token real
    INDArray full = model.output(Map.of(Bert.INPUT_IDS, ids, Bert.ATTENTION_MASK,
        Nd4j.ones(DataType.INT64, 1, ids.size(1)), Bert.TOKEN_TYPE_IDS, Nd4j.zeros(DataType.INT64, 1, ids.size(1))),
        Heads.LOGITS).get(Heads.LOGITS);
    assertEquals(full, model.output(Map.of(Bert.INPUT_IDS, ids), Heads.LOGITS).get(Heads.LOGITS));
    INDArray tooLong = Nd4j.ones(DataType.INT64, 1, 65);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> model.output(Map.of(Bert.INPUT_IDS, tooLong), Heads.LOGITS));
    assertTrue(e.getMessage().contains("input_ids has 65 tokens per row; the model has 64 positions"), e.getMessage());
  }

  @Test
  void typedModelsAndUnsupportedArchitectures(@TempDir Path tmp) throws IOException {
    assertEquals(32, HfModels.loadEncoder(Fixtures.dir("tiny-bert")).config().hiddenSize(), "typed, no cast");
    assertEquals(64, HfModels.loadDecoder(Fixtures.dir("tiny-llama")).config().hiddenSize());
    IOException notDecoder = assertThrows(IOException.class, () -> HfModels.loadDecoder(Fixtures.dir("tiny-bert")));
    assertTrue(notDecoder.getMessage().contains("model_type 'bert' is not a decoder"), notDecoder.getMessage());
    Path dir = tmp.resolve("bert-qa");
    Files.createDirectories(dir);
    for (String f : List.of("config.json", "model.safetensors")) {
      Files.copy(Fixtures.dir("tiny-bert-cls").resolve(f), dir.resolve(f));
    }
    try (java.io.InputStream tokenizer = HfModels.class.getResourceAsStream("/all-minilm-l6-v2-tokenizer.json")) {
      Files.copy(tokenizer, dir.resolve("tokenizer.json"));
    }
    try (Tokenizer t = HfModels.load(dir).tokenizer().orElseThrow()) {
      assertEquals(64, t.maxLength(), "tokenizer.json read, truncating at max_position_embeddings");
      assertEquals(2, t.encode(List.of("a b c", "d")).inputIds().size(0));
    }
    Path config = dir.resolve("config.json");
    Files.writeString(config, Files.readString(config).replace("BertForSequenceClassification",
        "BertForQuestionAnswering"));
    IOException e = assertThrows(IOException.class, () -> HfModels.loadTask(dir));
    assertTrue(e.getMessage().contains("architecture 'BertForQuestionAnswering' is not supported; supported: "
        + "BertForSequenceClassification, BertForTokenClassification, LlamaForSequenceClassification"), e.getMessage());
  }

  private static JsonObject savedConfig(String fixture) throws IOException {
    return JsonParser.parseString(Files.readString(CHECK.resolve(fixture).resolve(AdapterFiles.CONFIG),
        StandardCharsets.UTF_8)).getAsJsonObject();
  }
}
