package dev.peft4j.lntuning;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.selective.SelectiveAdapter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;

/**
 * LayerNorm tuning: only the norm layers' γ (and β) train; see the package documentation. As Hugging Face PEFT's
 * {@code LNTuningLayer} trains a copy of the norm layer ({@code ln_tuning_layers}), the copies live at
 * {@code peft/<adapter>/ln_tuning/<module>.<param>} and are saved under {@code <module>.ln_tuning_layers.<param>}.
 */
public final class LnTuning extends SelectiveAdapter<LnTuningConfig> {

  LnTuning(String name, LnTuningConfig config) {
    super(name, config, "ln_tuning");
  }

  @Override
  protected List<String> select(SameDiff sameDiff, GraphRewriter g) {
    return chosenParameters(config(), sameDiff, g);
  }

  /** {@code <module>.ln_tuning_layers.<param>}, as Hugging Face PEFT saves it. */
  @Override
  protected String key(String parameter) {
    int dot = parameter.lastIndexOf('.');
    return parameter.substring(0, dot) + ".ln_tuning_layers" + parameter.substring(dot);
  }

  /**
   * The norm layers of a graph and their parameters, in graph order: the modules that are not linear layers and
   * whose parameters are all vectors ({@code weight} = γ, and {@code bias} = β for LayerNorm).
   */
  static Map<String, List<String>> normLayers(SameDiff sameDiff, GraphRewriter g) {
    Set<String> linear = new TreeSet<>();
    g.linearModules().forEach((LinearModule m) -> linear.add(m.name()));
    Map<String, List<String>> params = new LinkedHashMap<>();
    Set<String> notNorm = new TreeSet<>(linear);
    for (String module : g.moduleNames()) {
      if (!linear.contains(module)) {
        params.put(module, new ArrayList<>());
      }
    }
    for (SDVariable v : sameDiff.variables()) {
      int dot = v.name().lastIndexOf('.');
      if (dot <= 0 || !params.containsKey(v.name().substring(0, dot))
          || (v.getVariableType() != VariableType.VARIABLE && v.getVariableType() != VariableType.CONSTANT)
          || v.getArr() == null || g.consumersOf(v.name()).isEmpty()) {
        continue;
      }
      String module = v.name().substring(0, dot);
      if (v.getArr().rank() == 1 && v.dataType().isFPType()) {
        params.get(module).add(v.name());
      } else {
        notNorm.add(module);
      }
    }
    params.keySet().removeAll(notNorm);
    params.values().removeIf(List::isEmpty);
    return params;
  }

  /**
   * The parameters of the targeted norm layers (every one by default) without the modules to save, in graph order.
   *
   * @throws IllegalArgumentException if the model has no norm layer, if a target matches no module or a module
   *     that is not a norm layer (listing the norm layers that exist), or if nothing is left
   */
  static List<String> chosenParameters(LnTuningConfig config, SameDiff sameDiff, GraphRewriter g) {
    Targets targets = config.targetsAllNormLayers() ? null : config.targets();
    List<String> modulesToSave = config.modulesToSave();
    Map<String, List<String>> norms = normLayers(sameDiff, g);
    checkArgument(!norms.isEmpty(), "LN tuning trains norm layers (LayerNorm γ and β, RMSNorm γ), but this model "
        + "has no norm layer; modules: %s", g.moduleNames());
    List<String> modules = g.moduleNames();
    List<String> chosen = new ArrayList<>();
    if (targets == null) {
      chosen.addAll(norms.keySet());
    } else if (targets.regex().isPresent()) {
      Pattern p = Pattern.compile(targets.regex().get());
      modules.stream().filter(m -> p.matcher(m).matches()).forEach(chosen::add);
      checkArgument(!chosen.isEmpty(), "target regex '%s' matches no module; norm layers that exist: %s",
          p.pattern(), norms.keySet());
    } else {
      List<String> unmatched = targets.entries().stream()
          .filter(e -> modules.stream().noneMatch(m -> matches(m, e))).toList();
      checkArgument(unmatched.isEmpty(), "LN tuning target modules %s not found in the graph; norm layers that "
          + "exist: %s", unmatched, norms.keySet());
      modules.stream().filter(m -> targets.entries().stream().anyMatch(e -> matches(m, e))).forEach(chosen::add);
    }
    if (targets != null) {
      chosen.removeIf(m -> targets.excluded().stream().anyMatch(e -> matches(m, e)));
      List<String> notNorms = chosen.stream().filter(m -> !norms.containsKey(m)).toList();
      checkArgument(notNorms.isEmpty(), "LN tuning target modules %s are not norm layers (a norm layer's "
          + "parameters are all vectors); norm layers that exist: %s", notNorms, norms.keySet());
    }
    chosen.removeIf(m -> modulesToSave.stream().anyMatch(s -> matches(m, s)));
    checkArgument(!chosen.isEmpty(), "LN tuning: no norm layer left to train (targets %s, modules_to_save %s); norm "
        + "layers that exist: %s", config.targets(), modulesToSave, norms.keySet());
    return norms.entrySet().stream().filter(e -> chosen.contains(e.getKey())).flatMap(e -> e.getValue().stream())
        .toList();
  }

  private static boolean matches(String module, String entry) {
    return module.equals(entry) || module.endsWith("." + entry);
  }
}
