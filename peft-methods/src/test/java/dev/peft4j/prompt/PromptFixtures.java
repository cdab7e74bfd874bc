package dev.peft4j.prompt;

import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.model.Bert;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.Refusals;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Function;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Fixture loading and checks shared by the prompt-learning tests (prompt, prefix, P-tuning). */
public final class PromptFixtures {

  private PromptFixtures() {}

  public static SameDiff tinyLlama() {
    return load("tiny-llama");
  }

  public static SameDiff tinyBert() {
    return load("tiny-bert");
  }

  private static SameDiff load(String name) {
    try {
      return HfModels.load(Fixtures.dir(name)).sameDiff();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Every tensor of {@code file}. */
  public static Map<String, INDArray> read(Path file) throws IOException {
    Map<String, INDArray> out = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      for (String n : f.names()) {
        out.put(n, f.read(n));
      }
    }
    return out;
  }

  /** The placeholders of a golden file for a Llama graph (with labels) or a BERT graph. */
  public static Map<String, INDArray> inputs(Map<String, INDArray> golden) {
    Map<String, INDArray> in = new LinkedHashMap<>();
    in.put(Llama.INPUT_IDS, golden.get("input_ids"));
    in.put(Llama.ATTENTION_MASK, golden.get("attention_mask"));
    if (golden.containsKey("loss_labels")) {
      in.put(Llama.LABELS, golden.get("loss_labels"));
    } else {
      in.put(Bert.TOKEN_TYPE_IDS, golden.get("token_type_ids"));
    }
    return in;
  }

  /**
   * Max |Δ| between the graph's per-position output on the golden inputs and the golden one, on real tokens; and,
   * for a decoder, |Δloss|.
   */
  public static double[] diffToGolden(SameDiff sd, Map<String, INDArray> golden) {
    Map<String, INDArray> in = inputs(golden);
    if (golden.containsKey("logits")) {
      Map<String, INDArray> out = sd.output(in, Llama.LOGITS, Llama.LOSS);
      return new double[] {
          Graphs.maxDiffOnRealTokens(out.get(Llama.LOGITS), golden.get("logits"), golden.get("attention_mask")),
          Math.abs(out.get(Llama.LOSS).getDouble(0) - golden.get("loss").getDouble(0))};
    }
    INDArray hidden = sd.output(in, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE);
    return new double[] {Graphs.maxDiffOnRealTokens(hidden, golden.get("last_hidden_state"),
        golden.get("attention_mask")), 0};
  }

  /**
   * Runs {@code action} on a fresh graph, expects an {@link IllegalArgumentException} (or {@code type}) naming
   * {@code fragments}, and checks that the graph is exactly as it was: variables, types, ops, arrays, output, links.
   */
  public static void rejects(Function<DataType, SameDiff> model, Class<? extends RuntimeException> type,
      Consumer<SameDiff> action, String... fragments) {
    Refusals.assertRefusedUnchanged(model, type, action, fragments);
  }
}
