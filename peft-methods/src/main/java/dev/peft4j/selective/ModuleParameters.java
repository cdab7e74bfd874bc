package dev.peft4j.selective;

import dev.peft4j.graph.GraphRewriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;

/** The parameters of a graph's modules, read off its variables; shared by linear probing and full fine-tuning. */
final class ModuleParameters {

  private ModuleParameters() {}

  /**
   * Every floating-point, array-backed variable {@code <module>.<param>} that some op reads, grouped by module in
   * graph order. Shared constants such as {@code zero_bias_<out>} have no module and are not parameters.
   */
  static Map<String, List<String>> of(SameDiff sameDiff, GraphRewriter g) {
    Map<String, List<String>> out = new LinkedHashMap<>();
    g.moduleNames().forEach(m -> out.put(m, new ArrayList<>()));
    for (SDVariable v : sameDiff.variables()) {
      int dot = v.name().lastIndexOf('.');
      VariableType t = v.getVariableType();
      if (dot > 0 && out.containsKey(v.name().substring(0, dot))
          && (t == VariableType.VARIABLE || t == VariableType.CONSTANT) && v.getArr() != null
          && v.dataType().isFPType() && !g.consumersOf(v.name()).isEmpty()) {
        out.get(v.name().substring(0, dot)).add(v.name());
      }
    }
    out.values().removeIf(List::isEmpty);
    return out;
  }

  /** Whether {@code module} equals {@code entry} or ends with {@code "." + entry}, as HF matches names. */
  static boolean matches(String module, String entry) {
    return module.equals(entry) || module.endsWith("." + entry);
  }
}
