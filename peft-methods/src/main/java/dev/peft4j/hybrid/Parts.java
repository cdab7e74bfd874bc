package dev.peft4j.hybrid;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.graph.GraphRewriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The parts of one hybrid adapter, driven together through the {@link Adapter} interface only, so that any method
 * can be a part. Parts are applied and enabled in order and disabled and unloaded in reverse order, so that a part
 * spliced in after another's output is always taken out first.
 */
final class Parts {

  private final String adapterName;
  private final List<Adapter> parts;
  private int applied; // parts.subList(0, applied) are applied and not unloaded

  Parts(String adapterName, List<Adapter> parts) {
    this.adapterName = adapterName;
    this.parts = List.copyOf(parts);
  }

  List<Adapter> all() {
    return parts;
  }

  List<Adapter> live() {
    return parts.subList(0, applied);
  }

  /**
   * Checks every part against the untouched graph, then applies the parts in order. A part that does not fit is
   * reported with its index and method; whatever was applied is undone by the caller's {@link #detach()} and
   * {@link #remove()}.
   */
  void build(SameDiff sd, List<String> modulesToSave, boolean training) {
    for (int i = 0; i < parts.size(); i++) {
      try {
        parts.get(i).config().parameterCount(sd); // validates the part's targets without rewriting anything
      } catch (IllegalArgumentException e) {
        throw partError(i, e);
      }
    }
    for (int i = 0; i < parts.size(); i++) {
      Adapter part = parts.get(i);
      part.setTraining(training);
      try {
        part.apply(sd);
      } catch (IllegalArgumentException | IllegalStateException e) {
        throw partError(i, e);
      }
      applied++;
    }
    Map<String, Integer> owner = new LinkedHashMap<>();
    for (int i = 0; i < parts.size(); i++) {
      for (String key : parts.get(i).stateDict().keySet()) {
        Integer other = owner.putIfAbsent(key, i);
        checkArgument(other == null, "parts %s (%s) and %s (%s) of hybrid adapter '%s' both hold tensor '%s'; "
            + "parts must adapt different modules", other, type(other == null ? i : other), i, type(i), adapterName,
            key);
      }
    }
    List<String> modules = GraphRewriter.of(sd).moduleNames();
    for (String entry : modulesToSave) {
      for (String module : modules) {
        if (module.equals(entry) || module.endsWith("." + entry)) {
          owner.forEach((key, i) -> checkArgument(!key.startsWith(module + "."),
              "module '%s' is both adapted by part %s (%s) of hybrid adapter '%s' and in modules_to_save", module, i,
              type(i), adapterName));
        }
      }
    }
  }

  private IllegalArgumentException partError(int i, RuntimeException e) {
    return new IllegalArgumentException(String.format("part %s (%s) of hybrid adapter '%s' does not fit: %s", i,
        type(i), adapterName, e.getMessage()), e);
  }

  String type(int i) {
    return parts.get(i).config().peftType();
  }

  void attach() {
    live().forEach(Adapter::enable);
  }

  void detach() {
    for (int i = applied - 1; i >= 0; i--) {
      parts.get(i).disable();
    }
  }

  void remove() {
    for (int i = applied - 1; i >= 0; i--) {
      parts.get(i).unload();
    }
    applied = 0;
  }

  /** The parts' trainable variables, part by part. */
  List<String> parameters() {
    List<String> names = new ArrayList<>();
    live().forEach(p -> names.addAll(p.trainableParameters().names()));
    return names;
  }

  /** The union of the parts' state dicts (their keys are distinct, checked in {@link #build}). */
  Map<String, INDArray> stateDict() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    live().forEach(p -> out.putAll(p.stateDict()));
    return out;
  }

  /** Gives every part its own tensors out of {@code tensors}. */
  void loadStateDict(Map<String, INDArray> tensors) {
    for (Adapter p : live()) {
      Map<String, INDArray> own = new LinkedHashMap<>();
      p.stateDict().keySet().forEach(k -> own.put(k, tensors.get(k)));
      p.loadStateDict(own);
    }
  }

  void setTraining(boolean training) {
    live().forEach(p -> p.setTraining(training));
  }

  /** Forgets the parts after they removed themselves (a merge-and-unload). */
  void forget() {
    applied = 0;
  }
}
