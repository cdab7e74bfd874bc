package dev.peft4j.bench;

import dev.peft4j.PeftModel;
import dev.peft4j.TrainableParameterSet;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.PretrainedModels;
import dev.peft4j.model.Tokenizer;
import dev.peft4j.train.Batch;
import dev.peft4j.train.LearningRateSchedule;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The README's main job, for now: LoRA on the bundled real model, all-MiniLM-L6-v2, with a trained classification
 * head, on a small sentiment task; then merge, and check the merged graph computes what the adapted one did.
 *
 * <p>The data are 48 short review sentences written for this demo (24 positive, 24 negative), split 32 / 16 with a
 * fixed seed. The comparison of every method on real data is a job of its own. Options: {@code --steps N}
 * (default 40), {@code --rank R} (default 8), {@code --seed S} (default 7).
 */
public final class Demo {

  private static final List<String> POSITIVE = List.of(
      "I loved this film, it was wonderful.", "What a fantastic, joyful experience.",
      "Absolutely brilliant and moving.", "A delightful story with great acting.",
      "The best purchase I have made all year.", "Works perfectly and arrived early.",
      "Friendly staff and delicious food.", "I would happily recommend it to anyone.",
      "Beautifully made and very comfortable.", "The sequel is even better than the original.",
      "Great value, I am very pleased.", "An uplifting book that I could not put down.",
      "Clear instructions and quick setup.", "The hotel room was spotless and quiet.",
      "Superb sound quality for the price.", "A charming, clever and funny show.",
      "Our guide was knowledgeable and kind.", "Fast shipping and excellent support.",
      "This recipe turned out perfectly.", "The battery lasts for days, impressive.",
      "Such a relaxing and lovely weekend.", "The app is smooth and a pleasure to use.",
      "Everything about the concert was magical.", "Solid build and it looks gorgeous.");
  private static final List<String> NEGATIVE = List.of(
      "This was terrible and boring.", "I hated every minute of it.",
      "An awful, dull waste of time.", "The worst film I have seen this year.",
      "It broke after two days of use.", "Rude staff and cold, bland food.",
      "I want my money back.", "Cheap materials and very uncomfortable.",
      "The plot made no sense at all.", "Shipping took a month and the box was crushed.",
      "The instructions were confusing and incomplete.", "Noisy room and a dirty bathroom.",
      "The sound crackles and the volume is weak.", "A tedious, predictable and unfunny show.",
      "Customer service never answered my emails.", "The recipe was a disaster, do not try it.",
      "The battery dies within an hour.", "A stressful and disappointing trip.",
      "The app crashes every time I open it.", "The concert started late and sounded awful.",
      "It looks nothing like the pictures.", "Overpriced and poorly made.",
      "I regret buying this.", "The worst service I have ever had.");

  private Demo() {}

  public static void main(String[] args) {
    int steps = intOption(args, "--steps", 40);
    int rank = intOption(args, "--rank", 8);
    long seed = intOption(args, "--seed", 7);

    List<Example> all = new ArrayList<>();
    POSITIVE.forEach(t -> all.add(new Example(t, 1)));
    NEGATIVE.forEach(t -> all.add(new Example(t, 0)));
    Collections.shuffle(all, new Random(seed));
    List<Example> train = all.subList(0, 32);
    List<Example> validation = all.subList(32, all.size());

    PretrainedModels.Encoder miniLm = PretrainedModels.miniLm(32);
    Tokenizer tokenizer = miniLm.tokenizer();
    SameDiff sd = Heads.sequenceClassification(miniLm.sameDiff(), miniLm.config().hiddenSize(), 2,
        Heads.Pooling.MEAN, seed);
    List<Batch> batches = new ArrayList<>();
    for (int i = 0; i < train.size(); i += 8) {
      batches.add(batch(tokenizer, train.subList(i, i + 8)));
    }
    Batch held = batch(tokenizer, validation);
    System.out.printf(Locale.ROOT, "peft4j demo: LoRA r=%d on all-MiniLM-L6-v2 (query, value) + trained classifier, "
        + "%d steps, %d training / %d validation sentences%n", rank, steps, train.size(), validation.size());
    double accuracyBefore = accuracy(sd, held);

    PeftModel model = Peft.lora(rank).alpha(2 * rank).dropout(0.1).target("query", "value")
        .modulesToSave(Heads.CLASSIFIER).apply(sd);
    TrainableParameterSet trainable = model.trainableParameters();
    System.out.println(trainable);
    TrainingHistory history = Trainer.builder(model)
        .steps(steps).learningRate(5e-4).warmupSteps(steps / 10).schedule(LearningRateSchedule.COSINE)
        .weightDecay(0.01).seed(seed)
        .evaluateEvery(Math.max(1, steps / 3), (step, m) -> Map.of("accuracy", accuracy(m.sameDiff(), held)))
        .build()
        .fit(batches);

    int window = Math.max(1, steps / 10);
    System.out.printf(Locale.ROOT, "loss: %.4f → %.4f (mean of the first and last %d steps), %,.0f tokens/s%n",
        history.meanLossOfFirst(window), history.meanLossOfLast(window), window, history.tokensPerSecond());
    for (TrainingHistory.Evaluation e : history.evaluations()) {
      System.out.printf(Locale.ROOT, "  step %4d  validation accuracy %.3f%n", e.step(), e.metrics().get("accuracy"));
    }
    System.out.printf(Locale.ROOT, "validation accuracy: %.3f (untrained head) → %.3f (LoRA + trained head)%n",
        accuracyBefore, accuracy(sd, held));
    System.out.printf(Locale.ROOT, "optimizer state: %,d bytes = 2 moments × %,d trainable floats "
        + "(full fine-tuning would hold %,d)%n", history.updaterStateBytes(), trainable.count(),
        2L * 4 * (trainable.allParameters() - trainable.count()));

    INDArray adapted = sd.output(held.inputs(), Heads.LOGITS).get(Heads.LOGITS);
    SameDiff merged = model.mergeAndUnload();
    INDArray mergedLogits = merged.output(held.inputs(), Heads.LOGITS).get(Heads.LOGITS);
    double diff = mergedLogits.sub(adapted).amaxNumber().doubleValue() / adapted.amaxNumber().doubleValue();
    long leftOver = merged.variableMap().keySet().stream().filter(n -> n.startsWith("peft/")).count();
    System.out.printf(Locale.ROOT, "mergeAndUnload: max relative difference merged vs adapted %.2e, "
        + "%d adapter variables left, graph links consistent: %s%n", diff, leftOver,
        GraphRewriter.of(merged).checkLinks().isEmpty());
    tokenizer.close();
  }

  private record Example(String text, long label) {}

  private static Batch batch(Tokenizer tokenizer, List<Example> examples) {
    Tokenizer.Encoded encoded = tokenizer.encode(examples.stream().map(Example::text).toList());
    Map<String, INDArray> inputs = new HashMap<>(encoded.bertInputs());
    inputs.put(Heads.LABELS, Nd4j.createFromArray(examples.stream().mapToLong(Example::label).toArray()));
    return new Batch(inputs, encoded.tokens());
  }

  private static double accuracy(SameDiff sd, Batch batch) {
    INDArray predicted = sd.output(batch.inputs(), Heads.LOGITS).get(Heads.LOGITS).argMax(1);
    INDArray actual = batch.inputs().get(Heads.LABELS);
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
