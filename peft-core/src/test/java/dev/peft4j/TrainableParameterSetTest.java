package dev.peft4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.peft4j.testing.ToyModels;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

class TrainableParameterSetTest {

  @Test
  void countsFromArraysAndPrintsLikeHuggingFace() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    TrainableParameterSet set = TrainableParameterSet.of(sd, List.of("head.weight", "head.bias"));
    long head = (long) ToyModels.MLP_HIDDEN * ToyModels.CLASSES + ToyModels.CLASSES;
    long all = (long) (ToyModels.MLP_IN + 1) * ToyModels.MLP_HIDDEN + (ToyModels.MLP_HIDDEN + 1) * ToyModels.MLP_HIDDEN
        + head;
    assertEquals(head, set.count());
    assertEquals(all, set.allParameters());
    assertEquals(String.format(java.util.Locale.ROOT, "trainable params: %d || all params: %d || trainable%%: %.4f",
        head, all, 100.0 * head / all), set.toString());
    assertEquals(List.of("head.weight", "head.bias"), set.names());
  }

  @Test
  void unknownNamesAreRejected() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TrainableParameterSet.of(sd, List.of("nope")));
    assertEquals("'nope' is not an array-backed variable of the graph", e.getMessage());
  }
}
