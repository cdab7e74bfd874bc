package dev.peft4j.bench;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Mlp;
import dev.peft4j.train.GradientFunction;
import dev.peft4j.train.NativeMemoryGuard;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Forward pass, full fine-tuning step and LoRA r=16 step of a 4-layer, 512-wide MLP classifier at batch 32.
 * <pre>
 *   input [32, 512] → 4 × (linear 512→512, tanh) → linear 512→10 → softmax cross-entropy
 * </pre>
 * Both training steps run the same code — gradients of the trainable set, then {@code p ← p − lr·g} — so their ratio
 * isolates what LoRA changes in the graph: frozen weights need no weight gradient, and the low-rank branches cost
 * extra matmuls. LoRA targets the four hidden layers ({@code fc}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Dorg.nd4j.log.initialization=false", "-Xmx4g"})
public class MlpStepBenchmark {

  private static final int WIDTH = 512;
  private static final int LAYERS = 4;
  private static final int CLASSES = 10;
  private static final int BATCH = 32;
  private static final double LR = 1e-4;

  private SameDiff full;
  private List<String> fullParameters;
  private SameDiff lora;
  private List<String> loraParameters;
  private Map<String, INDArray> batch;
  private final NativeMemoryGuard memory = new NativeMemoryGuard();

  @Setup
  public void setUp() {
    full = Mlp.classifier(WIDTH, WIDTH, LAYERS, CLASSES, DataType.FLOAT, 1);
    fullParameters = full.variables().stream().filter(v -> v.getVariableType() == VariableType.VARIABLE)
        .map(SDVariable::name).toList();
    lora = Mlp.classifier(WIDTH, WIDTH, LAYERS, CLASSES, DataType.FLOAT, 1);
    PeftModel model = Peft.lora(16).alpha(32).target("fc").apply(lora);
    loraParameters = model.trainableParameters().names();
    Random random = new Random(3);
    INDArray labels = Nd4j.zeros(DataType.FLOAT, BATCH, CLASSES);
    for (int i = 0; i < BATCH; i++) {
      labels.putScalar(i, random.nextInt(CLASSES), 1);
    }
    batch = Map.of(Mlp.INPUT, Mlp.uniform(random, 1, DataType.FLOAT, BATCH, WIDTH), Mlp.LABELS, labels);
    GradientFunction.prepare(full);
    GradientFunction.prepare(lora);
  }

  @Benchmark
  public INDArray forward() {
    return full.output(batch, Mlp.LOGITS).get(Mlp.LOGITS);
  }

  @Benchmark
  public INDArray fullFineTuningStep() {
    return step(full, fullParameters);
  }

  @Benchmark
  public INDArray loraStep() {
    return step(lora, loraParameters);
  }

  private INDArray step(SameDiff sd, List<String> parameters) {
    Map<String, INDArray> gradients = sd.calculateGradients(batch, parameters);
    INDArray last = null;
    for (String p : parameters) {
      last = sd.getArrForVarName(p).subi(gradients.get(p).muli(LR));
    }
    memory.afterStep();
    return last;
  }
}
