package dev.peft4j.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.train.Batch;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Function;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The check every bad-input test makes: a clear refusal, and the graph exactly as it was. */
public final class Refusals {

  private Refusals() {}

  /**
   * Runs {@code action} on a fresh float graph of {@code model}, expects {@code type} whose message contains every
   * one of {@code fragments}, and checks that nothing moved: variables and their types, ops, arrays, loss variables,
   * the output and the op↔variable links.
   *
   * @return the exception, for further checks
   */
  public static <T extends RuntimeException> T assertRefusedUnchanged(Function<DataType, SameDiff> model,
      Class<T> type, Consumer<SameDiff> action, String... fragments) {
    SameDiff sd = model.apply(DataType.FLOAT);
    Batch batch = Graphs.batches(sd, 1, 1, 3).get(0);
    INDArray output = Graphs.logits(sd, batch);
    Map<String, VariableType> types = Graphs.types(sd);
    Set<String> ops = Set.copyOf(sd.getOps().keySet());
    Map<String, INDArray> parameters = Graphs.parameters(sd);
    List<String> losses = List.copyOf(sd.getLossVariables());
    T e = assertThrows(type, () -> action.accept(sd));
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), "message '" + e.getMessage() + "' should mention '" + f + "'");
    }
    assertEquals(types, Graphs.types(sd), "variables and their types unchanged");
    assertEquals(ops, Set.copyOf(sd.getOps().keySet()), "ops unchanged");
    assertEquals(parameters, Graphs.parameters(sd), "arrays unchanged");
    assertEquals(losses, sd.getLossVariables(), "loss variables unchanged");
    assertEquals(output, Graphs.logits(sd, batch), "output unchanged");
    assertEquals(List.of(), GraphRewriter.of(sd).checkLinks());
    return e;
  }
}
