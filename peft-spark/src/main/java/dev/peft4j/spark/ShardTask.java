package dev.peft4j.spark;

import dev.peft4j.PeftModel;
import dev.peft4j.model.ModelInputs;
import dev.peft4j.train.AdamW;
import dev.peft4j.train.GradientFunction;
import dev.peft4j.train.Gradients;
import dev.peft4j.train.RandomOps;
import dev.peft4j.train.StepGradients;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.function.Function2;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One shard's work in one exchange, on the executor that holds partition {@code p} (its rows as one list):
 * θ from the round's broadcast, then for each of the round's steps the forward and backward pass on the step's
 * {@code nₚ} rows — and in local SGD an AdamW update — and the result weighted {@code nₚ/n} ({@link ShardResult}).
 *
 * <p>The step's rows are rows {@code (step − 1)·nₚ … step·nₚ − 1} of the partition, cycled. The dropout masks: the
 * step's seed through {@link RandomOps#seed}, salted by {@code p} through {@link RandomOps#distinct}, as
 * {@code DataParallel}'s replica {@code p} draws them under {@code Trainer}.
 */
final class ShardTask implements Function2<Integer, Iterator<List<Row>>, Iterator<ShardResult>> {

  private static final long serialVersionUID = 1L;

  private final Broadcast<ModelSource> source;
  private final Broadcast<SparkTrainer.Round> round;
  private final SparkTrainer.Settings settings;
  private final List<String> columns;
  private final int partitions;
  private final SparkTrainer.ShardHook hook;

  ShardTask(Broadcast<ModelSource> source, Broadcast<SparkTrainer.Round> round, SparkTrainer.Settings settings,
      List<String> columns, int partitions, SparkTrainer.ShardHook hook) {
    this.source = source;
    this.round = round;
    this.settings = settings;
    this.columns = List.copyOf(columns);
    this.partitions = partitions;
    this.hook = hook;
  }

  @Override
  public Iterator<ShardResult> call(Integer partition, Iterator<List<Row>> rows) {
    List<Row> all = rows.hasNext() ? rows.next() : List.of();
    SparkTrainer.Round r = round.value();
    ShardResult result = ExecutorModels.with(source.value(), model -> run(model, partition, all, r));
    if (hook != null) {
      hook.afterShard(r.firstStep(), partition);
    }
    return List.of(result).iterator();
  }

  private ShardResult run(PeftModel model, int partition, List<Row> all, SparkTrainer.Round r) {
    long start = System.nanoTime();
    SameDiff sd = model.sameDiff();
    if (!model.isTraining()) {
      model.train();
    }
    List<String> names = List.copyOf(r.weights().keySet());
    List<String> here = model.trainableParameters().names();
    if (!here.containsAll(names) || !names.containsAll(here)) {
      throw new IllegalStateException(String.format("%s: the executor's model trains %s, the driver's %s; the model "
          + "source must build the driver's model", ExecutorModels.executor(), here, names));
    }
    TrainableArrays.assign(sd, r.weights());
    String loss = sd.getLossVariables().get(0);
    int rowsPerStep = settings.shardRows(partition, partitions);
    double weight = (double) rowsPerStep / settings.globalBatch();
    boolean local = settings.localSteps() > 1;
    AdamW optimizer = local ? settings.optimizer().adamW(sd, names) : null;
    double[] losses = new double[r.steps()];
    long tokens = 0;
    Map<String, INDArray> gradients = null;
    for (int j = 0; j < r.steps(); j++) {
      int step = r.firstStep() + j;
      List<Row> batch = new ArrayList<>(rowsPerStep);
      for (int i = 0; i < rowsPerStep; i++) {
        batch.add(all.get((int) (((long) (step - 1) * rowsPerStep + i) % all.size())));
      }
      Map<String, INDArray> inputs = ModelInputs.complete(sd, Examples.toArrays(sd, batch, columns));
      tokens += rowsPerStep * Examples.tokensPerRow(inputs);
      GradientFunction.prepare(sd);
      OutAndGrad out;
      try (var seeding = RandomOps.seed(sd, () -> settings.stepSeed(step))) {
        sd.addListeners(RandomOps.distinct(partition)); // removed with the seeding listener
        out = Gradients.of(sd, inputs, List.of(loss), names);
      }
      losses[j] = weight * out.getOutputs().get(loss).getDouble(0);
      gradients = out.getGradients();
      if (local) {
        Map<String, INDArray> own = new LinkedHashMap<>();
        names.forEach(n -> own.put(n, gradients(out, n)));
        StepGradients.clip(own, settings.optimizer().maxGradNorm());
        optimizer.step(own, settings.learningRate(step));
      }
    }
    Map<String, INDArray> sent = gradients;
    if (local) { // the shard's θ after its k steps
      sent = new LinkedHashMap<>();
      for (String n : names) {
        sent.put(n, sd.getArrForVarName(n));
      }
    }
    LinkedHashMap<String, float[]> weighted = TrainableArrays.weighted(sent, names, weight);
    return ShardResult.of((long) rowsPerStep * r.steps(), tokens, losses, weighted, System.nanoTime() - start);
  }

  private static INDArray gradients(OutAndGrad out, String name) {
    INDArray g = out.getGradients().get(name);
    if (g == null) {
      throw new IllegalStateException(String.format("no gradient for '%s': it does not reach the loss", name));
    }
    return g;
  }
}
