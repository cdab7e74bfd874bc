package dev.peft4j.spark;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.model.Bert;
import java.io.Serializable;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Where a scorer's inputs sit in a dataset's rows, checked against its schema on the driver before any task runs:
 * {@code input_ids} (required), {@code attention_mask} and {@code token_type_ids} (used when present), each an
 * {@code array<int>} or {@code array<bigint>} (the columns a Hugging Face tokenizer's output has); the adapter column
 * a string. The index of a column the dataset lacks is −1.
 */
record ScoringColumns(int inputIds, int attentionMask, int tokenTypeIds, int adapter, StructType output)
    implements Serializable {

  private static final long serialVersionUID = 1L;

  /** The token-id columns read, in this order. */
  static final List<String> TOKEN_COLUMNS = List.of(Bert.INPUT_IDS, Bert.ATTENTION_MASK, Bert.TOKEN_TYPE_IDS);

  /**
   * @throws IllegalArgumentException naming the column and the dataset's columns, if {@code input_ids} or the adapter
   *     column is missing, a token column is not an integer array or the adapter column not a string, or an output
   *     column is already there
   */
  static ScoringColumns of(StructType schema, ScoringConfig config) {
    List<String> names = Arrays.asList(schema.fieldNames());
    checkArgument(names.contains(Bert.INPUT_IDS), "the dataset has no column '%s' (token ids, array<int> or "
        + "array<bigint>); its columns: %s", Bert.INPUT_IDS, names);
    for (String column : TOKEN_COLUMNS) {
      if (names.contains(column)) {
        DataType type = schema.apply(column).dataType();
        checkArgument(type instanceof ArrayType a
                && (a.elementType().equals(DataTypes.IntegerType) || a.elementType().equals(DataTypes.LongType)),
            "column '%s' is %s; expected array<int> or array<bigint>", column, type.simpleString());
      }
    }
    int adapter = -1;
    if (config.adapterColumn() != null) {
      checkArgument(names.contains(config.adapterColumn()), "the dataset has no adapter column '%s' (a string naming "
          + "each row's adapter); its columns: %s", config.adapterColumn(), names);
      DataType type = schema.apply(config.adapterColumn()).dataType();
      checkArgument(type.equals(DataTypes.StringType), "adapter column '%s' is %s; expected string",
          config.adapterColumn(), type.simpleString());
      adapter = schema.fieldIndex(config.adapterColumn());
    }
    for (String out : List.of(config.labelColumn(), config.scoresColumn())) {
      checkArgument(!names.contains(out), "the dataset already has a column '%s', which scoring appends; choose "
          + "other output names (outputColumns)", out);
    }
    StructType output = schema
        .add(new StructField(config.labelColumn(), DataTypes.IntegerType, false, Metadata.empty()))
        .add(new StructField(config.scoresColumn(), DataTypes.createArrayType(DataTypes.DoubleType, false), false,
            Metadata.empty()));
    return new ScoringColumns(index(names, Bert.INPUT_IDS), index(names, Bert.ATTENTION_MASK),
        index(names, Bert.TOKEN_TYPE_IDS), adapter, output);
  }

  private static int index(List<String> names, String column) {
    return names.indexOf(column);
  }
}
