package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.PretrainedModels;
import dev.peft4j.model.Tokenizer;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The root README's quick start, compiled and run. The lines between the two markers below are the README's
 * quick-start code block (after removing their common indentation), and the imports of this file that are neither
 * static nor JUnit's are the block's imports; {@link #readmeShowsExactlyThisCode} holds the two equal, so the README
 * cannot show code that does not compile or does not do what it says. This file's own needs beyond those imports use
 * fully qualified names for that reason.
 */
class QuickStartTest {

  /** all-MiniLM-L6-v2: 6 layers of hidden size 384; LoRA r = 8 on query and value, a 2-label classifier. */
  private static final long LAYERS = 6;
  private static final long HIDDEN = 384;
  private static final long RANK = 8;
  private static final long LABELS = 2;

  @Test
  void trainsSavesLoadsAndMerges() throws Exception {
    // README quick start: begin
    // the bundled all-MiniLM-L6-v2 (texts cut at 32 tokens) with a new 2-label classifier on top, seed 7
    PretrainedModels.Encoder miniLm = PretrainedModels.miniLm(32);
    SameDiff sd = Heads.sequenceClassification(miniLm.sameDiff(), miniLm.config().hiddenSize(), 2,
        Heads.Pooling.MEAN, 7);

    // one batch of two labelled texts: the encoder's inputs (token ids, attention mask, token types) + "labels"
    Tokenizer.Encoded encoded = miniLm.tokenizer().encode(List.of("I loved this film.", "This was terrible."));
    Map<String, INDArray> inputs = new HashMap<>(encoded.bertInputs());
    inputs.put(Heads.LABELS, Nd4j.createFromArray(1L, 0L));  // 1 = positive, 0 = negative
    Batch batch = new Batch(inputs, encoded.tokens());

    // LoRA r=8 on every layer's attention query and value; the new classifier trains in full beside it
    PeftModel model = Peft.lora(8).alpha(16).target("query", "value").modulesToSave(Heads.CLASSIFIER).apply(sd);
    System.out.println(model.trainableParameters());
    // trainable params: 74,498 || all params: 22,640,644 || trainable%: 0.3290

    // five AdamW steps on that batch (with a progress bar); only the adapter and the classifier change
    TrainingHistory history = Trainer.builder(model).steps(5).learningRate(1e-3).seed(7).build()
        .fit(List.of(batch));
    System.out.printf("loss %.3f → %.3f%n", history.firstLoss(), history.lastLoss());
    INDArray logits = model.output(batch.inputs(), Heads.LOGITS).get(Heads.LOGITS);  // [2 texts, 2 labels]

    // save in Hugging Face PEFT's format: adapter_config.json + adapter_model.safetensors
    Path dir = Files.createTempDirectory("my-adapter");
    model.save(dir);

    // later, or in another program: the same base model, with the saved adapter loaded onto it
    PretrainedModels.Encoder again = PretrainedModels.miniLm(32);
    SameDiff base = Heads.sequenceClassification(again.sameDiff(), again.config().hiddenSize(), 2,
        Heads.Pooling.MEAN, 7);
    PeftModel loaded = Peft.load(base, dir);
    INDArray loadedLogits = loaded.output(batch.inputs(), Heads.LOGITS).get(Heads.LOGITS);

    // merge for inference: W ← W + s·A·B, the LoRA branches removed; a plain SameDiff graph again
    SameDiff merged = loaded.mergeAndUnload();
    INDArray mergedLogits = merged.output(batch.inputs(), Heads.LOGITS).get(Heads.LOGITS);

    miniLm.tokenizer().close();  // tokenizers hold native memory
    again.tokenizer().close();
    // README quick start: end

    try {
      // LoRA: r·(in + out) per targeted layer, 2 per layer; the classifier: H·labels weights + labels biases
      long closedForm = LAYERS * 2 * RANK * (HIDDEN + HIDDEN) + HIDDEN * LABELS + LABELS;
      assertEquals(74_498, closedForm);
      assertEquals(closedForm, model.trainableParameters().count());
      assertEquals("trainable params: 74,498 || all params: 22,640,644 || trainable%: 0.3290",
          model.trainableParameters().toString());

      assertEquals(5, history.steps().size());
      assertTrue(history.lastLoss() < 0.9 * history.firstLoss(),
          "the loss should fall on the one batch it trains on: " + history.firstLoss() + " → " + history.lastLoss());

      assertEquals(List.of(2L, 2L), List.of(logits.size(0), logits.size(1)));
      double loadedDiff = loadedLogits.sub(logits).amaxNumber().doubleValue();
      assertTrue(loadedDiff <= 1e-6, "saved → loaded logits differ by " + loadedDiff + " from " + logits);
      double mergedDiff = mergedLogits.sub(loadedLogits).amaxNumber().doubleValue();
      assertTrue(mergedDiff <= 1e-5, "merged logits differ by " + mergedDiff + " from the unmerged " + loadedLogits);
      System.out.println("max |logits difference|: saved → loaded " + loadedDiff + ", merged − unmerged " + mergedDiff);
      assertEquals(List.of(), merged.getVariables().keySet().stream().filter(n -> n.startsWith("peft/")).toList(),
          "adapter variables left after mergeAndUnload");
    } finally {
      try (var files = Files.walk(dir)) {
        for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
          Files.delete(p);
        }
      }
    }
  }

  @Test
  void readmeShowsExactlyThisCode() throws Exception {
    List<String> source = Files.readAllLines(Path.of("src/test/java/dev/peft4j/bench/QuickStartTest.java"));
    List<String> marked = dedent(between(source, "// README quick start: begin", "// README quick start: end"));
    List<String> imports = source.stream()
        .filter(l -> l.startsWith("import ") && !l.startsWith("import static ") && !l.startsWith("import org.junit."))
        .toList();

    List<String> block = quickStartBlock(Files.readAllLines(Path.of("../README.md")));
    int blank = block.indexOf("");
    assertTrue(blank > 0, "the README's quick-start block should start with its imports and a blank line: " + block);
    assertEquals(imports.stream().sorted().toList(), block.subList(0, blank).stream().sorted().toList(),
        "the README quick start's imports");
    List<String> shown = block.subList(blank + 1, block.size());
    assertEquals(marked, shown, () -> "the README quick start's code differs from the code this test runs, first at "
        + firstDifference(marked, shown));
  }

  /**
   * {@code examples/quickstart}, the consumer project that {@code mvn verify} builds against the installed artifacts,
   * runs the README's quick start too: its marked lines are the README's code and it imports what the README imports.
   */
  @Test
  void consumerExampleRunsTheReadmeCode() throws Exception {
    List<String> example = Files.readAllLines(
        Path.of("../examples/quickstart/src/main/java/com/example/quickstart/QuickStart.java"));
    List<String> marked = dedent(between(example, "// README quick start: begin", "// README quick start: end"));
    List<String> block = quickStartBlock(Files.readAllLines(Path.of("../README.md")));
    int blank = block.indexOf("");
    List<String> shown = block.subList(blank + 1, block.size());
    assertEquals(shown, marked, () -> "examples/quickstart runs other code than the README shows, first at "
        + firstDifference(shown, marked));
    List<String> missing = block.subList(0, blank).stream().filter(i -> !example.contains(i)).toList();
    assertEquals(List.of(), missing, "imports of the README quick start that examples/quickstart lacks");
  }

  /** Where two line lists first differ, with both lines, for a readable failure. */
  private static String firstDifference(List<String> expected, List<String> actual) {
    int i = 0;
    while (i < expected.size() && i < actual.size() && expected.get(i).equals(actual.get(i))) {
      i++;
    }
    String run = i < expected.size() ? expected.get(i) : "(end)";
    String shown = i < actual.size() ? actual.get(i) : "(end)";
    return "code line " + (i + 1) + ":\n  test runs: " + run + "\n  README:    " + shown;
  }

  /** The lines strictly between the one line containing {@code begin} and the one containing {@code end}. */
  private static List<String> between(List<String> lines, String begin, String end) {
    List<Integer> begins = indicesOf(lines, begin);
    List<Integer> ends = indicesOf(lines, end);
    assertEquals(1, begins.size(), "lines containing '" + begin + "'");
    assertEquals(1, ends.size(), "lines containing '" + end + "'");
    assertTrue(begins.get(0) < ends.get(0), "'" + begin + "' should come before '" + end + "'");
    return lines.subList(begins.get(0) + 1, ends.get(0));
  }

  private static List<Integer> indicesOf(List<String> lines, String marker) {
    return java.util.stream.IntStream.range(0, lines.size()).filter(i -> lines.get(i).contains(marker)
        && !lines.get(i).contains("\"" + marker)).boxed().toList();
  }

  /** The lines with their common leading spaces removed (blank lines count for none) and trailing spaces cut. */
  private static List<String> dedent(List<String> lines) {
    int common = lines.stream().filter(l -> !l.isBlank())
        .mapToInt(l -> l.length() - l.stripLeading().length()).min().orElse(0);
    return lines.stream().map(l -> l.isBlank() ? "" : l.substring(common).stripTrailing()).toList();
  }

  /** The first {@code ```java} block under the README's {@code ## Quick start} heading, trailing spaces cut. */
  private static List<String> quickStartBlock(List<String> readme) {
    int heading = readme.indexOf("## Quick start");
    assertTrue(heading >= 0, "the README has no '## Quick start' heading");
    int open = heading + 1;
    while (open < readme.size() && !readme.get(open).equals("```java")) {
      assertTrue(!readme.get(open).startsWith("## "), "no ```java block under '## Quick start'");
      open++;
    }
    int close = readme.subList(open + 1, readme.size()).indexOf("```");
    assertTrue(open < readme.size() && close >= 0, "no complete ```java block under '## Quick start'");
    return readme.subList(open + 1, open + 1 + close).stream().map(String::stripTrailing).toList();
  }
}
