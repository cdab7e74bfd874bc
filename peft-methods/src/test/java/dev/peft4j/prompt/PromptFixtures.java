package dev.peft4j.prompt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.model.Bert;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Function;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
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
    SameDiff sd = model.apply(DataType.FLOAT);
    Batch batch = Graphs.batches(sd, 1, 1, 3).get(0);
    INDArray output = Graphs.logits(sd, batch);
    Map<String, VariableType> types = Graphs.types(sd);
    Set<String> ops = Set.copyOf(sd.getOps().keySet());
    Map<String, INDArray> parameters = Graphs.parameters(sd);
    RuntimeException e = assertThrows(type, () -> action.accept(sd));
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), "message '" + e.getMessage() + "' should mention '" + f + "'");
    }
    assertEquals(types, Graphs.types(sd), "variables and their types unchanged");
    assertEquals(ops, Set.copyOf(sd.getOps().keySet()), "ops unchanged");
    assertEquals(parameters, Graphs.parameters(sd), "arrays unchanged");
    assertEquals(output, Graphs.logits(sd, batch), "output unchanged");
    assertEquals(List.of(), GraphRewriter.of(sd).checkLinks());
  }
}
