package dev.peft4j.merge;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.Adapter;
import dev.peft4j.PeftModel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Ensembles of adapters trained separately (other seeds, other data orders) on one task.
 * <ul>
 *   <li>Weight space: one adapter whose every tensor is the mean of the sources' tensors ("model soup"); it needs
 *       sources of the same method and shapes, and costs nothing extra at inference.
 *   <li>Output space: the mean of the sources' outputs, one forward pass each; works for every method.
 * </ul>
 */
public final class Ensembles {

  private Ensembles() {}

  /**
   * Adds {@code name}, inactive, holding the element-wise mean of the sources' tensors, with the first source's
   * config.
   *
   * @throws IllegalArgumentException naming the sources, if they differ in method or in tensor names or shapes
   */
  public static Adapter weightSpace(PeftModel model, List<String> sources, String name) {
    try (var only = model.exclusive()) { // the sources stay as read until the new adapter is in
      return weightSpaceExclusively(model, sources, name);
    }
  }

  private static Adapter weightSpaceExclusively(PeftModel model, List<String> sources, String name) {
    checkArgument(sources.size() >= 2, "an ensemble needs at least 2 adapters, got %s", sources);
    Adapter first = model.adapter(sources.get(0));
    Map<String, INDArray> sum = new LinkedHashMap<>();
    first.stateDict().forEach((k, v) -> sum.put(k, v.dup()));
    for (String s : sources.subList(1, sources.size())) {
      Adapter a = model.adapter(s);
      checkArgument(a.config().peftType().equals(first.config().peftType()),
          "weight-space ensembles need one method: '%s' is %s, '%s' is %s", sources.get(0),
          first.config().peftType(), s, a.config().peftType());
      Map<String, INDArray> state = a.stateDict();
      checkArgument(state.keySet().equals(sum.keySet()), "'%s' and '%s' adapt different modules", sources.get(0), s);
      for (Map.Entry<String, INDArray> e : state.entrySet()) {
        INDArray acc = sum.get(e.getKey());
        checkArgument(Arrays.equals(acc.shape(), e.getValue().shape()), "tensor '%s' is %s in '%s' but %s in '%s'",
            e.getKey(), Arrays.toString(acc.shape()), sources.get(0), Arrays.toString(e.getValue().shape()), s);
        acc.addi(e.getValue());
      }
    }
    sum.values().forEach(t -> t.divi(sources.size()));
    model.addAdapter(name, first.config(), sum);
    return model.adapter(name);
  }

  /**
   * The mean of {@code output} over the sources, each run as the one active adapter; the active adapters are as
   * before afterwards. Holds the model's exclusive access ({@link PeftModel#exclusive()}) while it switches, so other
   * threads never see the switching.
   */
  public static INDArray outputSpace(PeftModel model, List<String> sources, Map<String, INDArray> inputs,
      String output) {
    checkArgument(!sources.isEmpty(), "no adapters to ensemble");
    try (var only = model.exclusive()) {
      return outputSpaceExclusively(model, sources, inputs, output);
    }
  }

  private static INDArray outputSpaceExclusively(PeftModel model, List<String> sources, Map<String, INDArray> inputs,
      String output) {
    List<String> active = model.activeAdapters();
    List<INDArray> outputs = new ArrayList<>();
    try {
      for (String s : sources) {
        model.setAdapter(s);
        outputs.add(model.output(inputs, output).get(output));
      }
    } finally {
      if (!active.isEmpty()) {
        model.setAdapter(active);
      }
    }
    INDArray mean = outputs.get(0).dup();
    outputs.subList(1, outputs.size()).forEach(mean::addi);
    return mean.divi(outputs.size());
  }
}
