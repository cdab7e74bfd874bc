package dev.peft4j.bench;

import dev.peft4j.Peft;
import dev.peft4j.PeftModel;
import dev.peft4j.TrainableParameterSet;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.model.Mlp;
import dev.peft4j.train.Batch;
import dev.peft4j.train.LearningRateSchedule;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The README's main job, for now: builds a small MLP classifier, applies LoRA to its hidden layers and head, trains it
 * on a task, merges the adapter and checks the merged graph computes what the adapted one did.
 *
 * <p>The task: 32-dimensional Gaussian inputs labelled by a random linear "teacher" (argmax over 4 classes). The MLP
 * starts random and frozen, so everything it learns is learned by the adapter. Options: {@code --steps N}
 * (default 300), {@code --rank R} (default 8), {@code --seed S} (default 7).
 */
public final class Demo {

  private static final int FEATURES = 32;
  private static final int HIDDEN = 128;
  private static final int LAYERS = 3;
  private static final int CLASSES = 4;
  private static final int BATCH = 32;

  private Demo() {}

  public static void main(String[] args) {
    int steps = intOption(args, "--steps", 300);
    int rank = intOption(args, "--rank", 8);
    long seed = intOption(args, "--seed", 7);
    Random random = new Random(seed);
    INDArray teacher = Mlp.uniform(random, 1, DataType.FLOAT, FEATURES, CLASSES);
    List<Batch> train = task(teacher, random, 40);
    Batch validation = task(teacher, random, 1, 1024).get(0);

    SameDiff sd = Mlp.classifier(FEATURES, HIDDEN, LAYERS, CLASSES, DataType.FLOAT, seed);
    System.out.printf(Locale.ROOT, "peft4j demo: LoRA r=%d on an MLP %d → %d×%d → %d, %d steps of batch %d%n",
        rank, FEATURES, HIDDEN, LAYERS, CLASSES, steps, BATCH);
    double accuracyBefore = accuracy(sd, validation);
    PeftModel model = Peft.lora(rank).alpha(2 * rank).dropout(0.05).target("fc", "head").apply(sd);
    TrainableParameterSet trainable = model.trainableParameters();
    System.out.println(trainable);

    TrainingHistory history = new Trainer.Builder(model)
        .steps(steps).learningRate(3e-3).warmupSteps(steps / 10).schedule(LearningRateSchedule.COSINE)
        .weightDecay(0.01).seed(seed)
        .evaluateEvery(Math.max(1, steps / 3), (step, m) -> Map.of("accuracy", accuracy(m.sameDiff(), validation)))
        .build()
        .fit(train);

    int window = Math.max(1, steps / 10);
    System.out.printf(Locale.ROOT, "loss: %.4f → %.4f (mean of the first and last %d steps)%n",
        history.meanLossOfFirst(window), history.meanLossOfLast(window), window);
    for (TrainingHistory.Evaluation e : history.evaluations()) {
      System.out.printf(Locale.ROOT, "  step %4d  validation accuracy %.3f%n", e.step(), e.metrics().get("accuracy"));
    }
    double accuracyAfter = accuracy(sd, validation);
    System.out.printf(Locale.ROOT, "validation accuracy: %.3f (frozen random base) → %.3f (with LoRA)%n",
        accuracyBefore, accuracyAfter);
    System.out.printf(Locale.ROOT, "optimizer state: %,d bytes = 2 moments × %,d trainable floats "
        + "(full fine-tuning would hold %,d)%n", history.updaterStateBytes(), trainable.count(),
        2L * 4 * (trainable.allParameters() - trainable.count()));

    INDArray adapted = sd.output(validation.inputs(), Mlp.LOGITS).get(Mlp.LOGITS);
    SameDiff merged = model.mergeAndUnload();
    INDArray mergedLogits = merged.output(validation.inputs(), Mlp.LOGITS).get(Mlp.LOGITS);
    double diff = mergedLogits.sub(adapted).amaxNumber().doubleValue() / adapted.amaxNumber().doubleValue();
    long leftOver = merged.getVariables().keySet().stream().filter(n -> n.startsWith("peft/")).count();
    System.out.printf(Locale.ROOT, "mergeAndUnload: max relative difference merged vs adapted %.2e, "
        + "%d adapter variables left, graph links consistent: %s%n", diff, leftOver,
        GraphRewriter.of(merged).checkLinks().isEmpty());
  }

  /** {@code batches} batches of {@code rows} Gaussian inputs labelled one-hot by argmax(x · teacher). */
  private static List<Batch> task(INDArray teacher, Random random, int batches, int rows) {
    List<Batch> out = new ArrayList<>();
    for (int b = 0; b < batches; b++) {
      float[] values = new float[rows * FEATURES];
      for (int i = 0; i < values.length; i++) {
        values[i] = (float) random.nextGaussian();
      }
      INDArray x = Nd4j.create(values, new long[] {rows, FEATURES}, 'c');
      INDArray labels = Nd4j.zeros(DataType.FLOAT, rows, CLASSES);
      INDArray argmax = x.mmul(teacher).argMax(1);
      for (int i = 0; i < rows; i++) {
        labels.putScalar(i, argmax.getInt(i), 1);
      }
      out.add(Batch.of(Map.of(Mlp.INPUT, x, Mlp.LABELS, labels), Mlp.INPUT));
    }
    return out;
  }

  private static List<Batch> task(INDArray teacher, Random random, int batches) {
    return task(teacher, random, batches, BATCH);
  }

  private static double accuracy(SameDiff sd, Batch batch) {
    INDArray predicted = sd.output(batch.inputs(), Mlp.LOGITS).get(Mlp.LOGITS).argMax(1);
    INDArray actual = batch.inputs().get(Mlp.LABELS).argMax(1);
    long correct = 0;
    for (int i = 0; i < predicted.length(); i++) {
      correct += predicted.getLong(i) == actual.getLong(i) ? 1 : 0;
    }
    return (double) correct / predicted.length();
  }

  private static int intOption(String[] args, String name, int fallback) {
    for (int i = 0; i < args.length - 1; i++) {
      if (args[i].equals(name)) {
        try {
          return Integer.parseInt(args[i + 1]);
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException(name + " needs an integer, got '" + args[i + 1] + "'", e);
        }
      }
    }
    return fallback;
  }
}
