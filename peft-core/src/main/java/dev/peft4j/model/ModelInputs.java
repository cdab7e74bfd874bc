package dev.peft4j.model;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.HashMap;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The inputs of a transformer graph ({@link Bert}, {@link Llama}, {@link Heads}) completed and checked as
 * transformers does before a forward pass: {@code token_type_ids} default to zeros and {@code attention_mask} to
 * ones (every token real), and a sequence longer than the model's positions is refused before anything runs.
 */
public final class ModelInputs {

  private ModelInputs() {}

  /**
   * {@code inputs} with the defaults added for the placeholders {@code sd} has and {@code inputs} lacks; other
   * graphs' inputs are returned as given.
   *
   * @throws IllegalArgumentException naming the input, the length and the limit, if {@code input_ids} holds more
   *     tokens than the model's {@code max_position_embeddings}
   */
  public static Map<String, INDArray> complete(SameDiff sd, Map<String, INDArray> inputs) {
    INDArray ids = inputs.get(Bert.INPUT_IDS);
    if (ids == null || !isPlaceholder(sd, Bert.INPUT_IDS) || ids.rank() != 2) {
      return inputs;
    }
    if (sd.hasVariable(Hooks.DIMS) && sd.getVariable(Hooks.DIMS).getArr() != null
        && sd.getVariable(Hooks.DIMS).getArr().length() == 6) {
      long limit = sd.getVariable(Hooks.DIMS).getArr().getLong(5);
      checkArgument(ids.size(1) <= limit, "input_ids has %s tokens per row; the model has %s positions "
          + "(max_position_embeddings): truncate the input (Tokenizer's maxLength)", ids.size(1), limit);
    }
    Map<String, INDArray> out = new HashMap<>(inputs);
    if (isPlaceholder(sd, Bert.TOKEN_TYPE_IDS) && !inputs.containsKey(Bert.TOKEN_TYPE_IDS)) {
      out.put(Bert.TOKEN_TYPE_IDS, Nd4j.zeros(DataType.INT64, ids.size(0), ids.size(1)));
    }
    if (isPlaceholder(sd, Bert.ATTENTION_MASK) && !inputs.containsKey(Bert.ATTENTION_MASK)) {
      out.put(Bert.ATTENTION_MASK, Nd4j.ones(DataType.INT64, ids.size(0), ids.size(1)));
    }
    return out;
  }

  private static boolean isPlaceholder(SameDiff sd, String name) {
    return sd.hasVariable(name) && sd.getVariable(name).getVariableType() == VariableType.PLACEHOLDER;
  }
}
