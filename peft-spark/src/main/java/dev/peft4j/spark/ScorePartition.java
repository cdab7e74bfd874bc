package dev.peft4j.spark;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.PeftModel;
import dev.peft4j.model.Bert;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Scores one partition on an executor: the JVM's model of the source ({@link ExecutorModels}, built once per JVM),
 * rows read {@code batchSize} at a time as the output is consumed (a partition is never held whole), each batch one
 * forward pass with the model to itself (tasks of one JVM take turns batch by batch).
 * <pre>
 *   ids, mask, types: [b, s]  INT64, s = the batch's longest row; shorter rows padded on the right with padTokenId,
 *                              mask 0 and type 0 (a missing mask column: 1 on every real token)
 *   scores:           [b, labels]   PeftModel.output, or outputMixed with the adapter column's names
 *   label:            argmaxₗ scores[i, l]
 * </pre>
 * Each output row is the input row with the label and the scores (as doubles, exactly the floats computed) appended.
 */
final class ScorePartition implements MapPartitionsFunction<Row, Row> {

  private static final long serialVersionUID = 1L;

  private final Broadcast<ModelSource> source;
  private final ScoringConfig config;
  private final ScoringColumns columns;

  ScorePartition(Broadcast<ModelSource> source, ScoringConfig config, ScoringColumns columns) {
    this.source = source;
    this.config = config;
    this.columns = columns;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> rows) throws Exception {
    if (!rows.hasNext()) {
      return Collections.emptyIterator(); // an empty partition loads nothing
    }
    ModelSource shipped = source.value();
    return new Iterator<>() {
      private final ArrayDeque<Row> scored = new ArrayDeque<>();
      private long rowsRead;

      @Override
      public boolean hasNext() {
        if (scored.isEmpty() && rows.hasNext()) {
          List<Row> batch = new ArrayList<>(config.batchSize());
          while (batch.size() < config.batchSize() && rows.hasNext()) {
            batch.add(rows.next());
          }
          long first = rowsRead;
          scored.addAll(ExecutorModels.with(shipped, m -> score(m, batch, first)));
          rowsRead += batch.size();
        }
        return !scored.isEmpty();
      }

      @Override
      public Row next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        return scored.poll();
      }
    };
  }

  /** {@code batch} scored; {@code firstRow} is its first row's index in the partition, for messages. */
  private List<Row> score(PeftModel model, List<Row> batch, long firstRow) {
    if (model.isTraining()) {
      model.eval(); // dropout off; this task holds the model alone
    }
    requireClassifier(model, config.output());
    int b = batch.size();
    long[][] ids = new long[b][];
    long[][] masks = new long[b][];
    long[][] types = new long[b][];
    List<String> adapterPerRow = new ArrayList<>(b);
    int longest = 0;
    for (int i = 0; i < b; i++) {
      Row row = batch.get(i);
      long at = firstRow + i;
      ids[i] = tokens(row, columns.inputIds(), Bert.INPUT_IDS, at);
      checkArgument(ids[i].length > 0, "%s: '%s' is empty", where(at), Bert.INPUT_IDS);
      masks[i] = columns.attentionMask() < 0 ? null : tokens(row, columns.attentionMask(), Bert.ATTENTION_MASK, at);
      types[i] = columns.tokenTypeIds() < 0 ? null : tokens(row, columns.tokenTypeIds(), Bert.TOKEN_TYPE_IDS, at);
      for (long[] other : new long[][] {masks[i], types[i]}) {
        checkArgument(other == null || other.length == ids[i].length, "%s: %s input ids but %s mask or type ids",
            where(at), ids[i].length, other == null ? 0 : other.length);
      }
      if (columns.adapter() >= 0) {
        String name = row.isNullAt(columns.adapter()) ? null : row.getString(columns.adapter());
        checkArgument(name == null || model.adapterNames().contains(name),
            "%s: column '%s' names adapter '%s', which was not loaded; loaded: %s", where(at), config.adapterColumn(),
            name, model.adapterNames());
        adapterPerRow.add(name);
      }
      longest = Math.max(longest, ids[i].length);
    }
    Map<String, INDArray> inputs = new LinkedHashMap<>();
    SameDiff sd = model.sameDiff();
    inputs.put(Bert.INPUT_IDS, padded(ids, null, longest, config.padTokenId(), 1));
    if (sd.hasVariable(Bert.ATTENTION_MASK)) {
      inputs.put(Bert.ATTENTION_MASK, padded(masks, ids, longest, 0, 1));
    }
    if (types[0] != null && sd.hasVariable(Bert.TOKEN_TYPE_IDS)) {
      inputs.put(Bert.TOKEN_TYPE_IDS, padded(types, null, longest, 0, 0));
    }
    String variable = config.output().variable();
    INDArray scores = columns.adapter() >= 0
        ? model.outputMixed(inputs, adapterPerRow, variable).get(variable)
        : model.output(inputs, variable).get(variable);                                     // [b, labels]
    checkArgument(scores.rank() == 2 && scores.size(0) == b, "the model's '%s' has shape %s; scoring needs "
        + "[rows, labels] (a sequence classification head)", variable, Arrays.toString(scores.shape()));
    float[][] values = scores.toFloatMatrix();
    List<Row> out = new ArrayList<>(b);
    for (int i = 0; i < b; i++) {
      Row row = batch.get(i);
      Object[] fields = new Object[row.length() + 2];
      for (int f = 0; f < row.length(); f++) {
        fields[f] = row.get(f);
      }
      double[] perLabel = new double[values[i].length];
      int label = 0;
      for (int l = 0; l < perLabel.length; l++) {
        perLabel[l] = values[i][l];
        if (values[i][l] > values[i][label]) {
          label = l;
        }
      }
      fields[row.length()] = label;
      fields[row.length() + 1] = perLabel;
      out.add(RowFactory.create(fields));
    }
    return out;
  }

  /**
   * @throws IllegalArgumentException naming what is missing, if the model's graph has no {@code input_ids} input or no
   *     {@code output} variable
   */
  static void requireClassifier(PeftModel model, ScoreOutput output) {
    SameDiff sd = model.sameDiff();
    checkArgument(sd.hasVariable(Bert.INPUT_IDS) && sd.hasVariable(output.variable()), "the model is not a sequence "
        + "classifier: scoring needs an '%s' input and a '%s' output", Bert.INPUT_IDS, output.variable());
  }

  /**
   * Rows of {@code rows} right-padded with {@code pad} to {@code length}, as {@code [b, length]} INT64. A null row
   * (a missing column) is {@code fill} over the length of the matching {@code lengthsOf} row, then padding.
   */
  private static INDArray padded(long[][] rows, long[][] lengthsOf, int length, long pad, long fill) {
    long[][] out = new long[rows.length][length];
    for (int i = 0; i < rows.length; i++) {
      Arrays.fill(out[i], pad);
      if (rows[i] != null) {
        System.arraycopy(rows[i], 0, out[i], 0, rows[i].length);
      } else {
        Arrays.fill(out[i], 0, lengthsOf[i].length, fill);
      }
    }
    return Nd4j.createFromArray(out);
  }

  private static long[] tokens(Row row, int index, String column, long at) {
    checkArgument(!row.isNullAt(index), "%s: '%s' is null", where(at), column);
    List<Object> values = row.getList(index);
    long[] out = new long[values.size()];
    for (int t = 0; t < out.length; t++) {
      Object v = values.get(t);
      checkArgument(v != null, "%s: '%s' has a null at position %s", where(at), column, t);
      out[t] = ((Number) v).longValue();
    }
    return out;
  }

  /** "row 7 of partition 2". */
  private static String where(long row) {
    TaskContext task = TaskContext.get();
    return "row " + row + " of partition " + (task == null ? "?" : task.partitionId());
  }
}
