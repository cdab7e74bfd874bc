package dev.peft4j;

import static com.google.common.base.Preconditions.checkState;

import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSet;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.GraphRewriter.Built;
import dev.peft4j.graph.GraphRewriter.Created;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Hugging Face PEFT's {@code modules_to_save}: whole modules (a classification head, say) trained in full beside an
 * adapter. Each parameter {@code <module>.<p>} gets a trainable copy {@code peft/<adapter>/modules_to_save/<module>.<p>}
 * and every op that read the original reads the copy; the original stays frozen, so disabling or unloading the
 * adapter gives the base model back exactly. {@link #mergeAndUnload()} writes the trained values into the originals.
 * An adapter owns one instance and forwards its enable, disable and unload calls.
 */
public final class ModulesToSave {

  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(ModulesToSave.class);

  private final SameDiff sd;
  private final GraphRewriter graph;
  private final ImmutableMap<String, String> copies; // original parameter → trainable copy
  // originals that are the [in, out] weight of a linear layer, found before their readers were pointed at the
  // copies: afterwards the layer reads the copy, so looking the originals up at save time finds none of them
  private final ImmutableSet<String> linearWeights;
  private final Created created;
  private boolean active = true;

  private ModulesToSave(SameDiff sd, ImmutableMap<String, String> copies, ImmutableSet<String> linearWeights,
      Created created) {
    this.sd = sd;
    this.graph = GraphRewriter.of(sd);
    this.copies = copies;
    this.linearWeights = linearWeights;
    this.created = created;
  }

  /** Nothing to save. */
  public static ModulesToSave none(SameDiff sameDiff) {
    return new ModulesToSave(sameDiff, ImmutableMap.of(), ImmutableSet.of(), new Created(Set.of(), Set.of()));
  }

  /**
   * Makes trainable copies of every parameter of {@code modules} and points their readers at them.
   *
   * A name that matches no module is skipped with a warning, as Hugging Face PEFT skips it: its SEQ_CLS and
   * TOKEN_CLS adapters list both {@code classifier} (encoders) and {@code score} (decoders), and a model has one.
   */
  public static ModulesToSave apply(SameDiff sameDiff, String adapterName, List<String> modules) {
    if (modules.isEmpty()) {
      return none(sameDiff);
    }
    GraphRewriter g = GraphRewriter.of(sameDiff);
    List<String> parameters = parametersOf(sameDiff, modules);
    Set<String> linear = new HashSet<>();
    g.linearModules().forEach(m -> linear.add(m.weight()));
    linear.retainAll(parameters);
    Built<Map<String, String>> copies = g.build(() -> {
      Map<String, String> made = new LinkedHashMap<>(); // original → copy
      for (String p : parameters) {
        String copy = "peft/" + adapterName + "/modules_to_save/" + p;
        sameDiff.var(copy, sameDiff.getArrForVarName(p).dup());
        made.put(p, copy);
      }
      return made;
    });
    copies.value().forEach((original, copy) -> g.redirect(original, copy, Set.of()));
    return new ModulesToSave(sameDiff, ImmutableMap.copyOf(copies.value()), ImmutableSet.copyOf(linear),
        copies.created());
  }

  /**
   * Whether graph module {@code m} is {@code module} (exact or {@code .name} suffix, HF's rule) or one of its
   * sub-modules: RoBERTa's {@code classifier} is {@code classifier.dense} and {@code classifier.out_proj}, and HF
   * saves the whole module.
   */
  public static boolean within(String m, String module) {
    for (int end = m.length(); end > 0; end = m.lastIndexOf('.', end - 1)) {
      String head = m.substring(0, end);
      if (head.equals(module) || head.endsWith("." + module)) {
        return true;
      }
    }
    return false;
  }

  /** Every array-backed parameter {@code <module>.<p>} of the named modules and their sub-modules. */
  private static List<String> parametersOf(SameDiff sameDiff, List<String> modules) {
    List<String> existing = GraphRewriter.of(sameDiff).moduleNames();
    List<String> parameters = new ArrayList<>();
    for (String module : modules) {
      List<String> matched = existing.stream().filter(m -> within(m, module)).toList();
      if (matched.isEmpty()) {
        LOG.warn("modules_to_save entry '{}' matches no module; skipped, as Hugging Face PEFT skips it. Modules "
            + "that exist: {}", module, existing);
      }
      for (SDVariable v : sameDiff.variables()) {
        boolean array = v.getVariableType() == VariableType.VARIABLE || v.getVariableType() == VariableType.CONSTANT;
        int dot = v.name().lastIndexOf('.');
        if (array && v.getArr() != null && dot > 0 && matched.contains(v.name().substring(0, dot))) {
          parameters.add(v.name());
        }
      }
    }
    return parameters;
  }

  /** The number of scalars {@link #apply} would copy: every parameter of the named modules. */
  public static long parameterCount(SameDiff sameDiff, List<String> modules) {
    return parametersOf(sameDiff, modules).stream().mapToLong(p -> sameDiff.getArrForVarName(p).length()).sum();
  }

  /** The trainable copies, in the order of the originals. */
  public List<String> parameters() {
    return copies.values().asList();
  }

  /**
   * The trained copies under their originals' names, as Hugging Face PEFT saves {@code modules_to_save}; the weights
   * of linear modules in PyTorch's {@code [out, in]}.
   */
  public Map<String, INDArray> stateDict() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    copies.forEach((original, copy) -> {
      INDArray value = sd.getArrForVarName(copy);
      out.put(original, linearWeights.contains(original) ? value.transpose().dup('c') : value.dup());
    });
    return out;
  }

  /** Assigns tensors laid out as {@link #stateDict()}, already checked for keys and shapes. */
  public void load(Map<String, INDArray> tensors) {
    copies.forEach((original, copy) -> {
      INDArray value = tensors.get(original);
      sd.getArrForVarName(copy).assign(linearWeights.contains(original) ? value.transpose() : value);
    });
  }

  /** Readers use the trained copies. */
  public void enable() {
    if (!active) {
      copies.forEach((original, copy) -> graph.redirect(original, copy, Set.of()));
      active = true;
    }
  }

  /** Readers use the frozen originals. */
  public void disable() {
    if (active) {
      copies.forEach((original, copy) -> graph.redirect(copy, original, Set.of()));
      active = false;
    }
  }

  /** Removes the copies; the originals, untouched, are read again. */
  public void unload() {
    disable();
    graph.remove(created);
  }

  /** Writes the trained values into the originals, then removes the copies. */
  public void mergeAndUnload() {
    checkState(active, "modules_to_save copies are disabled; enable them before merging");
    copies.forEach((original, copy) -> sd.getArrForVarName(original).assign(sd.getArrForVarName(copy)));
    unload();
  }
}
