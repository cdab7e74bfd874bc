package dev.peft4j.methods;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.Targets;
import dev.peft4j.methods.ParameterBudget.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The linear layers of a {@link ParameterBudget}'s shape, named as peft4j's graphs name them, and target matching. */
final class LinearLayers {

  /** One linear layer of the model. */
  record Linear(String name, long in, long out, boolean bias) {
    long parameters() {
      return in * out + (bias ? out : 0);
    }
  }

  private static final Pattern LAYER = Pattern.compile("\\.(?:layer|layers)\\.(\\d+)\\.");

  private final ParameterBudget.Architecture architecture;
  private final List<Linear> linears;  // every linear layer, head last
  private final String head;           // the head module, or null

  LinearLayers(Shape shape) {
    this.architecture = shape.architecture();
    List<Linear> linears = new ArrayList<>();
    long h = shape.hidden();
    long q = (long) shape.heads() * shape.headDim();
    long kv = (long) shape.kvHeads() * shape.headDim();
    for (int i = 0; i < shape.layers(); i++) {
      if (shape.architecture() == ParameterBudget.Architecture.BERT) {
        String p = "encoder.layer." + i + ".";
        linears.add(new Linear(p + "attention.self.query", h, h, shape.qkvBias()));
        linears.add(new Linear(p + "attention.self.key", h, h, shape.qkvBias()));
        linears.add(new Linear(p + "attention.self.value", h, h, shape.qkvBias()));
        linears.add(new Linear(p + "attention.output.dense", h, h, shape.biases()));
        linears.add(new Linear(p + "intermediate.dense", h, shape.ffn(), shape.biases()));
        linears.add(new Linear(p + "output.dense", shape.ffn(), h, shape.biases()));
      } else {
        String p = "model.layers." + i + ".";
        linears.add(new Linear(p + "self_attn.q_proj", h, q, shape.qkvBias()));
        linears.add(new Linear(p + "self_attn.k_proj", h, kv, shape.qkvBias()));
        linears.add(new Linear(p + "self_attn.v_proj", h, kv, shape.qkvBias()));
        linears.add(new Linear(p + "self_attn.o_proj", q, h, false));
        linears.add(new Linear(p + "mlp.gate_proj", h, shape.ffn(), shape.biases()));
        linears.add(new Linear(p + "mlp.up_proj", h, shape.ffn(), shape.biases()));
        linears.add(new Linear(p + "mlp.down_proj", shape.ffn(), h, shape.biases()));
      }
    }
    if (shape.pooler()) {
      linears.add(new Linear("pooler.dense", h, h, true)); // tanh(h[:, 0] · W + b)
    }
    if (shape.labels() > 0) {
      head = "classifier";
      linears.add(new Linear(head, h, shape.labels(), true));
    } else if (shape.architecture() == ParameterBudget.Architecture.LLAMA && !shape.tiedHead()) {
      head = "lm_head";
      linears.add(new Linear(head, h, shape.vocab(), false));
    } else {
      head = null;
    }
    this.linears = List.copyOf(linears);
  }

  /** Every linear layer, the head last. */
  List<Linear> all() {
    return linears;
  }

  /** The head module ({@code classifier} or {@code lm_head}), or null. */
  String head() {
    return head;
  }

  /** Σ of every linear layer's parameters. */
  long parameters() {
    return linears.stream().mapToLong(Linear::parameters).sum();
  }

  /**
   * The linear layers {@code targets} select, HF's way; {@code "all-linear"} is every one but the head.
   *
   * @throws IllegalArgumentException naming the entries that match nothing and listing layer 0's modules
   */
  List<Linear> select(String... targets) {
    checkArgument(targets != null && targets.length > 0, "at least one target module is needed");
    if (targets.length == 1 && targets[0].equals(Targets.ALL_LINEAR)) {
      return linears.stream().filter(l -> !l.name().equals(head)).toList();
    }
    List<String> unmatched = Arrays.stream(targets)
        .filter(t -> linears.stream().noneMatch(l -> matches(l.name(), t))).toList();
    checkArgument(unmatched.isEmpty(), "target modules %s match no linear layer of this %s shape; layer 0 and "
        + "the head have: %s", unmatched, architecture, linears.stream().map(Linear::name)
        .filter(n -> !layerIndexAbove0(n)).toList());
    return linears.stream().filter(l -> Arrays.stream(targets).anyMatch(t -> matches(l.name(), t))).toList();
  }

  private static boolean layerIndexAbove0(String name) {
    Matcher m = LAYER.matcher(name);
    return m.find() && Integer.parseInt(m.group(1)) > 0;
  }

  static boolean matches(String module, String entry) {
    return module.equals(entry) || module.endsWith("." + entry);
  }
}
