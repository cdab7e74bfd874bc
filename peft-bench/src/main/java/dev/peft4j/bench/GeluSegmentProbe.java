package dev.peft4j.bench;

import dev.peft4j.graph.RowMajorArrayCache;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.PretrainedModels;
import java.lang.management.ManagementFactory;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Would a Java GELU pay in MiniLM's forward (8 × 128, one thread of SameDiff)? The whole graph, with ND4J's
 * {@code erf}, against a second copy of it cut at every GELU and run segment by segment, {@link RationalGelu#forward}
 * computing each GELU between two {@code output} calls; the two alternate in one process.
 * <pre>
 *   per layer j:  x_j (the FFN's input, also its residual) and a_j = GELU(h_j) become placeholders of the copy;
 *   run:  x_0 ← output;  h_j ← output(x_j);  a_j ← Java(h_j);  x_{j+1} ← output(x_j, a_j);  …  last_hidden_state
 * </pre>
 * Each {@code output} runs only the ops between its placeholders and its target, so nothing is computed twice and
 * the copy's {@code erf}s never run. A measurement, not a code path of the library: it finds the GELU blocks by the
 * shape of the ops {@code Layers.gelu} builds. Results: peft-bench/HISTORY.md, round 5, "GELU / erf".
 *
 * <pre>{@code
 * cd peft-bench && OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive mvn -B -q exec:exec -Dexec.executable=java \
 *   -Dexec.args="-Xmx8g -cp %classpath dev.peft4j.bench.GeluSegmentProbe 16"
 * }</pre>
 */
public final class GeluSegmentProbe {

  private GeluSegmentProbe() {}

  /** One GELU block of the graph: the FFN's input x {@code [n, in]}, GELU's input h and output a {@code [n, out]}. */
  private record Block(String x, String h, String a, long in, long out) {}

  public static void main(String[] args) throws Exception {
    int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 16;
    Map<String, INDArray> inputs = MiniLmTrainingBenchmark.batch();
    inputs.remove(Heads.LABELS);
    SameDiff whole = PretrainedModels.miniLm(MiniLmTrainingBenchmark.SEQ).sameDiff();
    SameDiff cut = PretrainedModels.miniLm(MiniLmTrainingBenchmark.SEQ).sameDiff();
    List<Block> blocks = cutAtGelus(cut);
    INDArray[] activations = new INDArray[blocks.size()];     // a_j, reused: a fresh 6 MiB array costs ~17 ms
    float[] h = new float[0];
    float[] a = new float[0];
    double[] sums = new double[5];   // whole CPU, wall; cut CPU, wall; the Java part of the cut's wall
    INDArray reference = null;
    INDArray segmented = null;
    for (int r = -2; r < rounds; r++) {
      for (int which : r % 2 == 0 ? new int[] {0, 1} : new int[] {1, 0}) {
        long c0 = cpuNanos();
        long w0 = System.nanoTime();
        long java = 0;
        if (which == 0) {
          RowMajorArrayCache.install(whole); // as PeftModel.output does
          reference = whole.output(inputs, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE);
        } else {
          RowMajorArrayCache.install(cut);
          Map<String, INDArray> feed = new HashMap<>(inputs);
          for (int j = 0; j < blocks.size(); j++) {
            Block b = blocks.get(j);
            feed.put("gelu_cut/x_" + j, cut.output(feed, b.x()).get(b.x()));
            INDArray pre = cut.output(feed, b.h()).get(b.h());                      // [b·s, I]
            long j0 = System.nanoTime();
            if (pre.ordering() != 'c' || pre.isView()) {
              pre = pre.dup('c');
            }
            if (h.length != pre.length()) {
              h = new float[(int) pre.length()];
              a = new float[h.length];
            }
            RationalGelu.forward(GeluBenchmark.read(pre, h), a);
            if (activations[j] == null || !activations[j].equalShapes(pre)) {
              activations[j] = Nd4j.createUninitialized(DataType.FLOAT, pre.shape());
            }
            activations[j].data().asNio().order(ByteOrder.nativeOrder()).asFloatBuffer().put(a);
            feed.put("gelu_cut/a_" + j, activations[j]);
            java += System.nanoTime() - j0;
          }
          segmented = cut.output(feed, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE);
        }
        if (r >= 0) {
          sums[2 * which] += (cpuNanos() - c0) / 1e6;
          sums[2 * which + 1] += (System.nanoTime() - w0) / 1e6;
          sums[4] += java / 1e6;
        }
      }
    }
    double diff = reference.castTo(DataType.DOUBLE).sub(segmented.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    System.out.printf(Locale.ROOT, "MiniLM forward %d × %d, %d alternated rounds, mean ms (CPU = process CPU time)%n",
        MiniLmTrainingBenchmark.BATCH, MiniLmTrainingBenchmark.SEQ, rounds);
    System.out.printf(Locale.ROOT, "  whole graph, ND4J erf         CPU %6.0f wall %6.0f%n", sums[0] / rounds,
        sums[1] / rounds);
    System.out.printf(Locale.ROOT, "  cut at %d GELUs, Java GELU     CPU %6.0f wall %6.0f (of which Java, copies "
        + "included: %.1f)%n", blocks.size(), sums[2] / rounds, sums[3] / rounds, sums[4] / rounds);
    System.out.printf(Locale.ROOT, "  max |difference| of last_hidden_state: %.2g%n", diff);
    System.out.println("  load average " + Files.readString(Path.of("/proc/loadavg")).trim());
    System.exit(0);
  }

  /**
   * Finds the GELU blocks {@code ½h(1 + erf(h/√2))} of {@code sd} (h = {@code reshape(xw_plus_b(x, W, b))}) and
   * redirects the readers of every x and of every GELU output to new placeholders {@code gelu_cut/x_j} and
   * {@code gelu_cut/a_j}.
   *
   * @throws IllegalStateException if an {@code erf} is not inside a block of that shape
   */
  private static List<Block> cutAtGelus(SameDiff sd) {
    List<Block> blocks = new ArrayList<>();
    for (DifferentialFunction erf : sd.ops()) {
      if (!erf.opName().equals("erf")) {
        continue;
      }
      String u = erf.arg().name();
      String h = sd.getVariableOutputOp(u).arg().name();
      String a = null;
      for (String reader : sd.getVariables().get(h).getInputsForOp()) {
        String half = sd.getOpById(reader).outputVariable().name();
        for (String next : half.equals(u) ? List.<String>of() : sd.getVariables().get(half).getInputsForOp()) {
          if (sd.getOpById(next).opName().equals("multiply")) {
            a = sd.getOpById(next).outputVariable().name();
          }
        }
      }
      DifferentialFunction linear = sd.getVariableOutputOp(sd.getVariableOutputOp(h).arg().name());
      if (a == null || !linear.opName().equals("xw_plus_b")) {
        throw new IllegalStateException("erf '" + erf.getOwnName() + "' is not in a GELU block of Layers.gelu's shape");
      }
      long[] weight = linear.args()[1].getArr().shape();                             // [in, out]
      blocks.add(new Block(linear.arg().name(), h, a, weight[0], weight[1]));
    }
    for (int j = 0; j < blocks.size(); j++) {
      Block b = blocks.get(j);
      redirect(sd, b.x(), sd.placeHolder("gelu_cut/x_" + j, DataType.FLOAT, -1, b.in()));
      redirect(sd, b.a(), sd.placeHolder("gelu_cut/a_" + j, DataType.FLOAT, -1, b.out()));
    }
    return blocks;
  }

  private static void redirect(SameDiff sd, String from, SDVariable to) {
    for (String reader : new ArrayList<>(sd.getVariables().get(from).getInputsForOp())) {
      DifferentialFunction op = sd.getOpById(reader);
      String[] args = op.argNames();
      for (int i = 0; i < args.length; i++) {
        if (args[i].equals(from)) {
          sd.replaceArgFor(i, to, op);
        }
      }
    }
  }

  private static long cpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }
}
