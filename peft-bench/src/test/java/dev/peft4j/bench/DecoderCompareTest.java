package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.bench.TextClassificationData.Example;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.Llama;
import dev.peft4j.model.Tokenizer;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@code compare --model} and {@code predict --model} on a decoder: peft-core's tiny Qwen3 with its trained BPE
 * tokenizer (scripts/fixtures_decoder_cls.py), classified by a {@code score} head on the last non-padding token.
 */
class DecoderCompareTest {

  private static final Path FIXTURE = Path.of("../peft-core/src/test/resources/fixtures/tiny-qwen3-tok");

  @TempDir
  static Path tmp;
  static Compare.Options options;
  static Compare.Runs runs;
  static String log;

  /** A copy of the tiny Qwen3 checkpoint, its config.json edited by {@code edit} (old → new text pairs). */
  static Path model(Path dir, String... edit) throws IOException {
    Files.createDirectories(dir);
    for (String f : List.of("config.json", "model.safetensors", "tokenizer.json")) {
      Files.copy(FIXTURE.resolve(f), dir.resolve(f));
    }
    String config = Files.readString(dir.resolve("config.json"));
    for (int i = 0; i < edit.length; i += 2) {
      assertTrue(config.contains(edit[i]), edit[i]);
      config = config.replace(edit[i], edit[i + 1]);
    }
    Files.writeString(dir.resolve("config.json"), config);
    return dir;
  }

  @BeforeAll
  static void compare() throws IOException {
    Path model = model(tmp.resolve("tiny-qwen3"));
    // short sentences (about 10 of the tokenizer's tokens), so that every batch pads
    options = Compare.Options.parse("--model", model.toString(), "--methods", "lora,full-ft,prefix-tuning,bitfit",
        "--train-rows", "8", "--validation", "8", "--test", "8", "--epochs", "1", "--batch", "4", "--seq", "24",
        "--workers", "1", "--data", TinyTask.csv(tmp, 80).toString(), "--text-column", "sentence",
        "--label-column", "y", "--out", tmp.resolve("out").toString(), "--in-process");
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    runs = Compare.run(options, new PrintStream(out, true, StandardCharsets.UTF_8));
    log = out.toString(StandardCharsets.UTF_8);
  }

  @Test
  void aQuickRunOnATinyQwen3WritesFiniteResultsAndSaysWhatItSkippedAndHowItPadded() throws IOException {
    assertEquals(List.of("lora", "full-ft"), runs.results().stream().map(CompareResult::method).toList());
    for (CompareResult r : runs.results()) {
      System.out.println(r);
      assertTrue(r.trainableParams() > 0 && r.trainableParams() < r.allParams(), r.toString());
      assertTrue(Double.isFinite(r.validationLoss()) && Double.isFinite(r.accuracy().mean())
          && Double.isFinite(r.macroF1().mean()) && Double.isFinite(r.rocAuc().mean()), r.toString());
      assertEquals(8, runs.runs().get(r.method()).length);
      for (double[] p : runs.runs().get(r.method())) {
        assertEquals(1.0, p[0] + p[1], 1e-5);
      }
      assertTrue(Files.isRegularFile(options.out().resolve(r.adapterDir()).resolve("adapter_model.safetensors")));
    }
    assertFalse(java.util.Arrays.deepEquals(runs.runs().get("lora"), runs.runs().get("full-ft")));
    String md = Files.readString(options.out().resolve("results.md"));
    assertTrue(md.contains("- padding: on the right with token pad_token_id 0 of config.json"), md);
    assertTrue(md.contains("- targets: BERT's query, key, value, output.dense of the method descriptions are the "
        + "decoder's q_proj, k_proj, v_proj, down_proj"), md);
    assertTrue(md.contains("- not run on this decoder: prefix-tuning (peft4j's prompt learning splices into a "
        + "causal-LM graph, not a decoder's score head); bitfit (model_type qwen3 has no linear biases to train)"),
        md);
    assertTrue(log.contains("not run on this decoder: prefix-tuning"), log);
    // LoRA's targets are the decoder's q_proj and v_proj, and its head is the score
    String saved = Files.readString(options.out().resolve("adapters/lora/adapter_config.json"));
    assertTrue(saved.contains("q_proj") && saved.contains("v_proj") && saved.contains("\"score\""), saved);
  }

  /** predict with a saved adapter gives the probabilities PeftModel.output gives on the same, re-padded, batch. */
  @Test
  void predictWithASavedAdapterGivesPeftModelOutputsProbabilities() throws IOException {
    List<Example> test = CompareTest.testSplit(options);
    String input = String.join("\n", test.stream().map(e -> e.text().replace('\n', ' ')).toList());
    for (String method : List.of("lora", "full-ft")) {
      Path adapter = options.out().resolve("adapters/" + method);
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      Predict.run(adapter, null, null, "-", Predict.Format.CSV, 3,
          new ByteArrayInputStream(input.getBytes(StandardCharsets.UTF_8)), new PrintStream(out, true,
              StandardCharsets.UTF_8), CompareTest.quiet());
      List<String> rows = out.toString(StandardCharsets.UTF_8).lines().skip(1).toList();
      assertEquals(test.size(), rows.size());

      PeftModel peft = Peft.load(Compare.classifier(options.model(), 24, 2, 99), adapter);
      INDArray expected;
      try (Tokenizer tokenizer = Compare.tokenizer(options.model(), 24)) {
        Tokenizer.Encoded encoded = tokenizer.encode(test.stream().map(e -> e.text().replace('\n', ' ')).toList());
        Map<String, INDArray> inputs = Compare.inputs(encoded, 0L);
        INDArray ids = inputs.get(Llama.INPUT_IDS);                                      // [n, longest]
        assertEquals(0L, ids.getLong(rowWithPadding(encoded), ids.size(1) - 1), "padded with id 0");
        expected = peft.output(inputs, Heads.PROBABILITIES).get(Heads.PROBABILITIES);   // [n, 2]
      }
      for (int i = 0; i < rows.size(); i++) {
        String[] cells = rows.get(i).split(",");
        for (int c = 0; c < 2; c++) {
          assertEquals(expected.getDouble(i, c), Double.parseDouble(cells[2 + c]), 1e-6, method + " row " + i);
        }
      }
    }
  }

  private static int rowWithPadding(Tokenizer.Encoded encoded) {
    INDArray real = encoded.attentionMask().sum(1);                                    // [n]
    for (int i = 0; i < real.length(); i++) {
      if (real.getLong(i) < encoded.attentionMask().size(1)) {
        return i;
      }
    }
    throw new AssertionError("no test text is shorter than the longest");
  }

  /** Whatever id the tokenizer padded with, a decoder's padding positions carry the pad id its head skips. */
  @Test
  void aDecodersPaddingPositionsAreRewrittenToItsPadId() throws IOException {
    try (Tokenizer tokenizer = Compare.tokenizer(options.model(), 24)) {
      Tokenizer.Encoded encoded = tokenizer.encode(List.of("the movie was very good, good", "bad"));
      Map<String, INDArray> inputs = Compare.inputs(encoded, 7L);
      assertEquals(List.of(Llama.ATTENTION_MASK, Llama.INPUT_IDS), inputs.keySet().stream().sorted().toList(),
          "no token_type_ids for a decoder");
      INDArray ids = inputs.get(Llama.INPUT_IDS);
      INDArray mask = encoded.attentionMask();
      int padded = 0;
      for (int r = 0; r < 2; r++) {
        for (int t = 0; t < ids.size(1); t++) {
          boolean real = mask.getLong(r, t) == 1;
          assertEquals(real ? encoded.inputIds().getLong(r, t) : 7L, ids.getLong(r, t), "row " + r + ", token " + t);
          padded += real ? 0 : 1;
        }
      }
      assertTrue(padded > 0, "the short row is padded");
    }
  }

  /** Without pad_token_id the EOS token pads, as Hugging Face recipes do; with neither, the model is refused. */
  @Test
  void aDecoderWithoutPadTokenIdPadsWithEosAndOneWithNeitherIsRefused() throws IOException {
    Path eos = model(tmp.resolve("eos"), "\"pad_token_id\": 0", "\"pad_token_id\": null");
    assertEquals(new ModelOptions.DecoderPad(1, "eos_token_id 1 of config.json (it has no pad_token_id; Hugging "
        + "Face recipes pad decoders with the EOS token)"), ModelOptions.decoderPad(eos));
    Path neither = model(tmp.resolve("neither"), "\"pad_token_id\": 0", "\"pad_token_id\": null",
        "\"eos_token_id\": 1", "\"eos_token_id\": null");
    assertEquals("--model " + neither + ": config.json has neither pad_token_id nor eos_token_id; a decoder "
        + "classifier needs a token to pad batches with (transformers refuses batches of several rows without "
        + "pad_token_id)", refused(neither));
  }

  @Test
  void anUnsupportedModelTypeIsRefusedListingTheSupportedOnes() throws IOException {
    Path phi = model(tmp.resolve("phi"), "\"model_type\": \"qwen3\"", "\"model_type\": \"phi3\"");
    assertEquals("--model " + phi + ": model_type 'phi3' is not supported; supported: bert, llama, mistral, "
        + "qwen2, qwen3, gemma", refused(phi));
  }

  @Test
  void aDecoderWithoutTokenizerJsonIsRefused() throws IOException {
    Path bare = model(tmp.resolve("bare"));
    Files.delete(bare.resolve("tokenizer.json"));
    assertEquals("--model " + bare + ": no tokenizer.json", refused(bare));
  }

  @Test
  void aTokenizerLargerThanTheEmbeddingIsRefusedNamingBothCounts() throws IOException {
    Path small = model(tmp.resolve("small"), "\"vocab_size\": 512", "\"vocab_size\": 400");
    assertEquals("--model " + small + ": tokenizer.json has 500 token ids but the model's embedding has 400 rows "
        + "(vocab_size of config.json): ids beyond them have no embedding", refused(small));
  }

  @Test
  void aSequenceBeyondTheDecodersPositionsIsRefused() throws IOException {
    Path model = tmp.resolve("tiny-qwen3");
    assertEquals("--seq 200 is beyond the model's 128 positions (max_position_embeddings of " + model + ")",
        refused(model, "--seq", "200"));
  }

  /** compare and predict both refuse {@code model}, creating nothing; compare's message is returned. */
  private static String refused(Path model, String... more) throws IOException {
    Path out = tmp.resolve("refused-" + model.getFileName());
    List<String> args = new java.util.ArrayList<>(List.of("--model", model.toString(), "--methods", "lora",
        "--data", "data/spam-assassin.jsonl", "--workers", "1", "--out", out.toString(), "--in-process"));
    args.addAll(more.length == 0 ? List.of("--seq", "24") : List.of(more));
    Compare.Options o = Compare.Options.parse(args.toArray(String[]::new));
    String message = assertThrows(IllegalArgumentException.class, () -> Compare.run(o, CompareTest.quiet()))
        .getMessage();
    assertFalse(Files.exists(out), "compare created " + out + " although it refused: " + message);
    Path adapter = options.out().resolve("adapters/lora");
    Integer seq = more.length == 0 ? null : Integer.valueOf(more[1]);
    String predicted = assertThrows(IllegalArgumentException.class, () -> Predict.run(adapter, model, seq, "-",
        Predict.Format.CSV, 3, new ByteArrayInputStream("a text".getBytes(StandardCharsets.UTF_8)),
        CompareTest.quiet(), CompareTest.quiet())).getMessage();
    assertEquals(message, predicted, "predict refuses the same model with the same message");
    return message;
  }
}
