package dev.peft4j.testing;

import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.Mlp;
import dev.peft4j.train.Batch;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Data and comparisons for tests over graphs with the {@link Mlp} placeholders. */
public final class Graphs {

  private Graphs() {}

  /** {@code count} fixed batches of {@code rows} random inputs with random one-hot labels, from {@code seed}. */
  public static List<Batch> batches(SameDiff sd, long seed, int count, int rows) {
    Random random = new Random(seed);
    if (sd.hasVariable(ToyModels.INPUT_IDS)) {
      return tokenBatches(sd, random, count, rows);
    }
    DataType dataType = sd.getVariable(Mlp.INPUT).dataType();
    long features = sd.getVariable(Mlp.INPUT).getShape()[1];
    long classes = sd.getVariable(Mlp.LABELS).getShape()[1];
    List<Batch> out = new ArrayList<>();
    for (int b = 0; b < count; b++) {
      INDArray x = Mlp.uniform(random, 1, dataType, rows, features);
      INDArray y = Nd4j.zeros(dataType, rows, classes);
      for (int i = 0; i < rows; i++) {
        y.putScalar(i, random.nextInt((int) classes), 1);
      }
      out.add(Batch.of(Map.of(Mlp.INPUT, x, Mlp.LABELS, y), Mlp.INPUT));
    }
    return out;
  }

  /**
   * For {@link ToyModels#tokens}: 2 sequences of {@code length} random token ids each (the second with its last token
   * padded), with random one-hot labels.
   */
  private static List<Batch> tokenBatches(SameDiff sd, Random random, int count, int length) {
    DataType dataType = sd.getVariable(Mlp.LABELS).dataType();
    long classes = sd.getVariable(Mlp.LABELS).getShape()[1];
    List<Batch> out = new ArrayList<>();
    for (int b = 0; b < count; b++) {
      INDArray ids = Nd4j.zeros(DataType.INT64, 2, length);
      INDArray mask = Nd4j.ones(DataType.INT64, 2, length);
      INDArray y = Nd4j.zeros(dataType, 2, classes);
      for (int i = 0; i < 2; i++) {
        for (int t = 0; t < length; t++) {
          ids.putScalar(i, t, random.nextInt(ToyModels.VOCAB));
        }
        y.putScalar(i, random.nextInt((int) classes), 1);
      }
      mask.putScalar(1, length - 1, 0);
      out.add(Batch.of(Map.of(ToyModels.INPUT_IDS, ids, ToyModels.ATTENTION_MASK, mask, Mlp.LABELS, y),
          ToyModels.INPUT_IDS));
    }
    return out;
  }

  /** The graph's {@code logits} for a batch. */
  public static INDArray logits(SameDiff sd, Batch batch) {
    return sd.output(batch.inputs(), Mlp.LOGITS).get(Mlp.LOGITS);
  }

  /** A copy of every variable and constant array of the graph, by name. */
  public static Map<String, INDArray> parameters(SameDiff sd) {
    Map<String, INDArray> out = new TreeMap<>();
    for (SDVariable v : sd.variables()) {
      if ((v.getVariableType() == VariableType.VARIABLE || v.getVariableType() == VariableType.CONSTANT)
          && v.getArr() != null) {
        out.put(v.name(), v.getArr().dup());
      }
    }
    return out;
  }

  /** Name → variable type of every variable. */
  public static Map<String, VariableType> types(SameDiff sd) {
    Map<String, VariableType> out = new TreeMap<>();
    sd.variables().forEach(v -> out.put(v.name(), v.getVariableType()));
    return out;
  }

  /** max |a − b| over the positions where {@code mask} is 1; a, b: {@code [B, T, C]}, mask {@code [B, T]}. */
  public static double maxDiffOnRealTokens(INDArray a, INDArray b, INDArray mask) {
    double max = 0;
    for (int i = 0; i < mask.size(0); i++) {
      for (int t = 0; t < mask.size(1); t++) {
        if (mask.getLong(i, t) == 1) {
          for (int c = 0; c < b.size(2); c++) {
            max = Math.max(max, Math.abs(a.getDouble(i, t, c) - b.getDouble(i, t, c)));
          }
        }
      }
    }
    return max;
  }

  /** max |a − b| / max(max |b|, tiny). */
  public static double relativeError(INDArray a, INDArray b) {
    double scale = Math.max(b.amaxNumber().doubleValue(), 1e-12);
    return a.sub(b).amaxNumber().doubleValue() / scale;
  }

  /**
   * A batch for the tiny BERT under a 2-class head: 4 × 8 random ids in [1, 128), 5–7 real tokens a row, type ids 0,
   * labels 0, 1, 0, 1.
   */
  public static Batch tinyBertBatch(long seed) {
    Random random = new Random(seed);
    long[][] ids = new long[4][8];
    long[][] mask = new long[4][8];
    for (int b = 0; b < 4; b++) {
      for (int s = 0; s < 8; s++) {
        ids[b][s] = 1 + random.nextInt(127);
        mask[b][s] = s < 5 + b % 3 ? 1 : 0;
      }
    }
    Map<String, INDArray> inputs = new HashMap<>();
    inputs.put(Bert.INPUT_IDS, Nd4j.createFromArray(ids));
    inputs.put(Bert.ATTENTION_MASK, Nd4j.createFromArray(mask));
    inputs.put(Bert.TOKEN_TYPE_IDS, Nd4j.zeros(DataType.INT64, 4, 8));
    inputs.put(Heads.LABELS, Nd4j.createFromArray(0L, 1L, 0L, 1L));
    return new Batch(inputs, 32);
  }

  /**
   * Asserts that every element of {@code params}' gradients ({@code analytic}, as SameDiff computed them) equals the
   * central difference (L(θ + eps) − L(θ − eps)) / 2·eps of {@code loss} on {@code inputs} to
   * {@code tolerance · max(1, |numeric|)}, naming the element on failure; returns how many elements it checked.
   */
  public static int assertCentralDifferences(SameDiff sd, Map<String, INDArray> inputs, String loss,
      Map<String, INDArray> analytic, List<String> params, double eps, double tolerance) {
    int checked = 0;
    for (String p : params) {
      INDArray a = sd.getArrForVarName(p);
      for (long i = 0; i < a.length(); i++) {
        double original = a.getDouble(i);
        a.putScalar(i, original + eps);
        double plus = sd.output(inputs, loss).get(loss).getDouble(0);
        a.putScalar(i, original - eps);
        double minus = sd.output(inputs, loss).get(loss).getDouble(0);
        a.putScalar(i, original);
        double numeric = (plus - minus) / (2 * eps);
        double grad = analytic.get(p).getDouble(i);
        org.junit.jupiter.api.Assertions.assertTrue(Math.abs(numeric - grad) <= tolerance * Math.max(1,
            Math.abs(numeric)), p + "[" + i + "]: analytic " + grad + " vs numeric " + numeric);
        checked++;
      }
    }
    return checked;
  }
}
