package dev.peft4j.spark;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.model.Bert;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Rows of a training {@code Dataset<Row>} as the graph's placeholder arrays: one column per placeholder, named as
 * the placeholder; a column of arrays (token ids, an attention mask) becomes a {@code [rows, length]} array, a column
 * of numbers (a label) a {@code [rows]} array, each in the placeholder's data type.
 */
final class Examples {

  private Examples() {}

  /**
   * The columns the model needs: its placeholders, less {@code token_type_ids} and {@code attention_mask}, which
   * {@code ModelInputs.complete} fills in as transformers does when {@code input_ids} is given.
   */
  static List<String> neededColumns(SameDiff sd) {
    List<String> needed = new ArrayList<>();
    boolean hasIds = false;
    for (SDVariable v : sd.variables()) {
      if (v.getVariableType() == VariableType.PLACEHOLDER) {
        needed.add(v.name());
        hasIds |= v.name().equals(Bert.INPUT_IDS);
      }
    }
    if (hasIds) {
      needed.remove(Bert.TOKEN_TYPE_IDS);
      needed.remove(Bert.ATTENTION_MASK);
    }
    return needed;
  }

  /**
   * The columns of {@code present} that feed the graph: the needed ones, plus the optional placeholders present.
   *
   * @throws IllegalArgumentException naming the missing and the present columns, if a needed one is missing
   */
  static List<String> inputColumns(SameDiff sd, List<String> present) {
    List<String> needed = neededColumns(sd);
    List<String> missing = needed.stream().filter(c -> !present.contains(c)).toList();
    checkArgument(missing.isEmpty(), "the dataset lacks the columns %s that the model's inputs need; it has %s "
        + "(needed: %s, one column per placeholder, named as it)", missing, present, needed);
    List<String> columns = new ArrayList<>(needed);
    for (String optional : List.of(Bert.TOKEN_TYPE_IDS, Bert.ATTENTION_MASK)) {
      if (present.contains(optional) && sd.hasVariable(optional)
          && sd.getVariable(optional).getVariableType() == VariableType.PLACEHOLDER && !columns.contains(optional)) {
        columns.add(optional);
      }
    }
    return columns;
  }

  /**
   * The placeholder arrays of {@code rows}.
   *
   * @throws IllegalArgumentException naming the column, if a value is null, nested, or array lengths differ
   */
  static Map<String, INDArray> toArrays(SameDiff sd, List<Row> rows, List<String> columns) {
    Map<String, INDArray> arrays = new HashMap<>();
    for (String c : columns) {
      DataType type = sd.getVariable(c).dataType();
      int index = rows.get(0).fieldIndex(c);
      Object first = rows.get(0).get(index);
      checkArgument(first != null, "column '%s' holds a null", c);
      if (first instanceof Number) {
        double[] values = new double[rows.size()];
        for (int r = 0; r < rows.size(); r++) {
          Object v = rows.get(r).get(index);
          checkArgument(v instanceof Number, "column '%s' mixes numbers and %s", c, v);
          values[r] = ((Number) v).doubleValue();
        }
        arrays.put(c, Nd4j.createFromArray(values).castTo(type));                  // [rows]
      } else {
        int length = rows.get(0).getList(index).size();
        double[][] values = new double[rows.size()][];
        for (int r = 0; r < rows.size(); r++) {
          checkArgument(!rows.get(r).isNullAt(index), "column '%s' holds a null", c);
          List<Object> list = rows.get(r).getList(index);
          checkArgument(list.size() == length, "column '%s' holds arrays of lengths %s and %s: pad every row of a "
              + "batch to one length", c, length, list.size());
          values[r] = new double[length];
          for (int t = 0; t < length; t++) {
            checkArgument(list.get(t) instanceof Number, "column '%s' holds %s, not a number or an array of "
                + "numbers", c, list.get(t));
            values[r][t] = ((Number) list.get(t)).doubleValue();
          }
        }
        arrays.put(c, Nd4j.createFromArray(values).castTo(type));                  // [rows, length]
      }
    }
    return arrays;
  }

  /** The leading length of the first array column (tokens per row), or 1 when every column is a number. */
  static long tokensPerRow(Map<String, INDArray> arrays) {
    return arrays.values().stream().filter(a -> a.rank() == 2).mapToLong(a -> a.size(1)).findFirst().orElse(1);
  }
}
