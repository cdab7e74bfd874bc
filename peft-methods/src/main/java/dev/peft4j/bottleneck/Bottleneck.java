package dev.peft4j.bottleneck;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.AbstractAdapter;
import dev.peft4j.bottleneck.BottleneckConfig.NonLinearity;
import dev.peft4j.bottleneck.BottleneckConfig.Placement;
import dev.peft4j.graph.Branches;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.nd4j.autodiff.samediff.NameScope;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.random.custom.RandomBernoulli;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Bottleneck adapters: a small residual MLP after each chosen output projection. See the package documentation for
 * the math.
 * <pre>
 *   y: [n, H]   down: [H, b]   down_bias: [b]   up: [b, H]   up_bias: [H]
 *   y' = y + dropout(act(y·down + down_bias))·up + up_bias
 * </pre>
 * The adapter after module {@code m} lives under {@code peft/<adapter>/bottleneck/<m>/}: variables
 * {@code adapter_down}, {@code adapter_down_bias}, {@code adapter_up}, {@code adapter_up_bias}, and the ops of the two
 * projections, the nonlinearity, the dropout mask and the residual sum. It is spliced in after the module's output as
 * LoRA's branch is, so every reader of the output (the residual add, the next layer) reads {@code y'}. Not mergeable:
 * the nonlinearity cannot be folded into a weight.
 */
public final class Bottleneck extends AbstractAdapter<BottleneckConfig> {

  /** One adapter after one module. */
  private record Layer(LinearModule module, String down, String downBias, String up, String upBias, String activated,
      String dropped, String upMatmulOp, String sum) {}

  private final Branches<Layer> layers = branches();

  Bottleneck(String name, BottleneckConfig config) {
    super(name, config);
  }

  /** The most values one initialised matrix may hold: the largest Java array, 2³¹ − 9. */
  private static final long MAX_INIT_VALUES = Integer.MAX_VALUE - 8;

  @Override
  protected void build(SameDiff sameDiff, GraphRewriter g) {
    List<LinearModule> modules = select(config(), g);
    for (String keep : config().modulesToSave()) {
      for (LinearModule m : modules) {
        checkArgument(!m.name().equals(keep) && !m.name().endsWith("." + keep),
            "module '%s' is both adapted by a bottleneck adapter and in modules_to_save", m.name());
      }
    }
    for (LinearModule m : modules) { // a spliced module's original output has been renamed into the peft/ scope
      checkState(!m.output().startsWith("peft/"), "module '%s' already carries an adapter branch ('%s'); a bottleneck "
          + "adapter goes after a module no enabled adapter (nor another part of a hybrid) adapts", m.name(),
          m.output());
    }
    for (LinearModule m : modules) { // the init is drawn into one Java array: refuse by name, not by overflow
      checkArgument((long) config().size() * m.outFeatures() <= MAX_INIT_VALUES, "bottleneck_size %s on module '%s' "
          + "(width %s) needs %s values in adapter_down; at most %s are supported", config().size(), m.name(),
          m.outFeatures(), (long) config().size() * m.outFeatures(), MAX_INIT_VALUES);
    }
    Random random = new Random(config().seed());
    for (LinearModule m : modules) {
      insert(sameDiff, g, m, random);
    }
  }

  private void insert(SameDiff sameDiff, GraphRewriter g, LinearModule m, Random random) {
    BottleneckConfig config = config();
    DataType type = sameDiff.getVariable(m.weight()).dataType();
    long h = m.outFeatures();
    int b = config.size();
    INDArray down0 = kaimingUniform(random, h, b, type);
    layers.splice(g, m.output(), () -> {
      String scope = scope("bottleneck") + m.name();
      try (NameScope ignored = sameDiff.withNameScope(scope)) { // names the ops; variables are named in full
        SDVariable y = sameDiff.getVariable(m.output());                                    // [n, H]
        SDVariable down = sameDiff.var(scope + "/adapter_down", down0);                      // [H, b]
        SDVariable downBias = sameDiff.var(scope + "/adapter_down_bias", Nd4j.zeros(type, b)); // [b]
        SDVariable up = sameDiff.var(scope + "/adapter_up", Nd4j.zeros(type, b, h));          // [b, H]
        SDVariable upBias = sameDiff.var(scope + "/adapter_up_bias", Nd4j.zeros(type, h));    // [H]
        SDVariable activated = activate(sameDiff, config.nonLinearity(), y.mmul(down).add(downBias)); // [n, b]
        SDVariable dropped = null;
        if (config.dropout() > 0) {
          double keep = 1 - config.dropout();
          SDVariable mask = new RandomBernoulli(sameDiff, sameDiff.shape(activated), keep).outputVariable(); // [n, b]
          dropped = activated.mul(mask.castTo(type)).mul(1 / keep);                   // inverted dropout
        }
        SDVariable projected = (training() && dropped != null ? dropped : activated).mmul(up);   // [n, H]
        // named for what it will hold once spliced in: the module's original output
        SDVariable sum = y.add(scope + "/base_output", projected.add(upBias));                 // [n, H]
        return new Layer(m, down.name(), downBias.name(), up.name(), upBias.name(), activated.name(),
            dropped == null ? null : dropped.name(), sameDiff.getVariableOutputOp(projected.name()).getOwnName(),
            sum.name());
      }
    }, Layer::sum);
  }

  /** The nonlinearity on {@code x: [n, b]}. */
  private static SDVariable activate(SameDiff sd, NonLinearity f, SDVariable x) {
    return switch (f) {
      case RELU -> sd.nn.relu(x, 0);
      case GELU -> x.mul(0.5).mul(sd.math.erf(x.mul(1 / Math.sqrt(2))).add(1.0));
      case SILU -> x.mul(sd.nn.sigmoid(x));
      case TANH -> sd.math.tanh(x);
    };
  }

  @Override
  protected List<String> parameters() {
    List<String> names = new ArrayList<>();
    for (Layer l : layers.parts()) {
      names.addAll(List.of(l.down(), l.downBias(), l.up(), l.upBias()));
    }
    return names;
  }

  /**
   * {@code <module>.adapter_down.weight [b, H]}, {@code .adapter_down.bias [b]}, {@code .adapter_up.weight [H, b]},
   * {@code .adapter_up.bias [H]}: PyTorch's {@code nn.Linear} layout.
   */
  @Override
  protected Map<String, INDArray> ownStateDict() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (Layer l : layers.parts()) { // ours are down: [H, b], up: [b, H]; nn.Linear's weights the transposes
      String m = l.module().name();
      out.put(m + ".adapter_down.weight", sd().getArrForVarName(l.down()).transpose().dup('c'));
      out.put(m + ".adapter_down.bias", sd().getArrForVarName(l.downBias()).dup());
      out.put(m + ".adapter_up.weight", sd().getArrForVarName(l.up()).transpose().dup('c'));
      out.put(m + ".adapter_up.bias", sd().getArrForVarName(l.upBias()).dup());
    }
    return out;
  }

  @Override
  protected void loadOwnStateDict(Map<String, INDArray> tensors) {
    for (Layer l : layers.parts()) {
      String m = l.module().name();
      DataType type = sd().getVariable(l.down()).dataType();
      sd().getArrForVarName(l.down()).assign(tensors.get(m + ".adapter_down.weight").transpose().castTo(type));
      sd().getArrForVarName(l.downBias()).assign(tensors.get(m + ".adapter_down.bias").castTo(type));
      sd().getArrForVarName(l.up()).assign(tensors.get(m + ".adapter_up.weight").transpose().castTo(type));
      sd().getArrForVarName(l.upBias()).assign(tensors.get(m + ".adapter_up.bias").castTo(type));
    }
  }

  @Override
  protected void trainingChanged() {
    for (Layer l : layers.parts()) {
      if (l.dropped() != null) {
        graph().setInput(l.upMatmulOp(), 0, training() ? l.dropped() : l.activated());
      }
    }
  }

  /**
   * The linear modules the adapters of {@code c} go after, in graph order: the attention outputs (with
   * {@code HOULSBY}) and the feed-forward outputs that are not attention outputs, each name given matching a module.
   *
   * @throws IllegalArgumentException listing the modules that exist, if a name given by the user matches no module
   *     or none of a default list does; or if a matched module is not a linear layer
   */
  static List<LinearModule> select(BottleneckConfig c, GraphRewriter g) {
    List<String> modules = g.moduleNames();
    List<String> attentionModules = modules.stream().filter(m -> matchesAny(m, c.attentionOutput())).toList();
    if (c.placement() == Placement.HOULSBY) {
      requireMatches("attention-output", c.attentionOutputModules(), c.attentionOutput(), attentionModules, modules,
          "attentionOutput(...), or place adapters after the feed-forward only with afterFfnOnly()");
    }
    List<String> ffnModules = modules.stream()
        .filter(m -> matchesAny(m, c.ffnOutput()) && !attentionModules.contains(m)).toList();
    requireMatches("feed-forward-output (attention outputs excepted)", c.ffnOutputModules(), c.ffnOutput(),
        ffnModules, modules, "ffnOutput(...)");
    return c.targets().selectLinear(g, "a bottleneck adapter");
  }

  private static void requireMatches(String what, List<String> given, List<String> inEffect, List<String> matched,
      List<String> modules, String hint) {
    if (given.isEmpty()) {
      checkArgument(!matched.isEmpty(), "none of the default %s modules %s exists in this graph; name the modules "
          + "after which adapters go with %s. Modules that exist: %s", what, inEffect, hint, modules);
    } else {
      List<String> unmatched = given.stream()
          .filter(n -> matched.stream().noneMatch(m -> matchesAny(m, List.of(n)))).toList();
      checkArgument(unmatched.isEmpty(), "%s modules %s not found in the graph. Modules that exist: %s", what,
          unmatched, modules);
    }
  }

  /** Hugging Face's list rule: the name equals an entry or ends with {@code "." + entry}. */
  private static boolean matchesAny(String module, List<String> entries) {
    return entries.stream().anyMatch(e -> module.equals(e) || module.endsWith("." + e));
  }


  /**
   * The down-projection's init, {@code nn.Linear}'s default {@code kaiming_uniform_(a=√5)} on {@code [b, H]}:
   * bound = 1/√H. Returned as {@code [H, b]}.
   */
  private static INDArray kaimingUniform(Random random, long h, int b, DataType type) {
    double bound = 1 / Math.sqrt(h);
    double[] values = new double[Math.toIntExact(h * b)];
    for (int i = 0; i < values.length; i++) {
      values[i] = (2 * random.nextDouble() - 1) * bound;
    }
    return Nd4j.create(values, new long[] {h, b}, DataType.DOUBLE).castTo(type);
  }

  /** The names of the modules adapters were put after, in graph order. */
  public List<String> adaptedModules() {
    return layers.parts().stream().map(l -> l.module().name()).toList();
  }
}
