package dev.peft4j.selective;

import dev.peft4j.AbstractMergeableAdapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.GraphRewriter.Built;
import dev.peft4j.graph.GraphRewriter.Created;
import dev.peft4j.graph.LinearModule;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The life cycle of the <em>selective</em> methods (BitFit, LayerNorm tuning, linear probing, full fine-tuning), which
 * train a chosen subset of the base model's own parameters instead of adding a branch.
 *
 * <p>Each chosen parameter {@code p} gets a trainable copy {@code peft/<adapter>/<method>/p}, and the ops that read
 * {@code p} when the adapter was applied read the copy instead (as Hugging Face PEFT's LN tuning trains a copy of the
 * norm layer). The original is never written during training, so:
 * <ul>
 *   <li>disable points the readers back at the untouched original; enable points them at the copy again;
 *   <li>unload removes the copies and gives the base model back bit for bit;
 *   <li>merge writes the trained values into the originals (the trained values <em>are</em> the fine-tuned weights;
 *       a user who merges expects the plain graph to compute what the adapted one computed), remembering what it
 *       overwrote, so unmerge and unload restore the originals exactly. {@code mergeAndUnload()} returns the
 *       fine-tuned model with no {@code peft/} variable left.
 * </ul>
 * Several selective adapters can share a graph, as other adapters can; only the active one is read.
 *
 * <p>Saved tensors use Hugging Face's module keys: {@link #key(String)} maps a parameter to its key relative to the
 * model; weights of linear layers are saved in PyTorch's {@code [out, in]}.
 *
 * @param <C> the method's config type
 */
public abstract class SelectiveAdapter<C extends AdapterConfig> extends AbstractMergeableAdapter<C> {

  /** One trained parameter: the original, its copy and the ops that read the original when applied. */
  private record Copy(String original, String copy, Set<String> readers, boolean linearWeight) {}

  private final String method;
  private final List<Copy> copies = new ArrayList<>();
  private final Map<String, INDArray> overwritten = new LinkedHashMap<>(); // originals a merge replaced
  private Created created;

  protected SelectiveAdapter(String name, C config, String method) {
    super(name, config);
    this.method = method;
  }

  /**
   * The base parameters this method trains, in graph order. Validates the config against the graph and throws,
   * naming the problem, before anything is touched.
   *
   * @throws IllegalArgumentException if the config does not fit the graph
   */
  protected abstract List<String> select(SameDiff sameDiff, GraphRewriter g);

  /** The saved key of parameter {@code parameter}, relative to the model ({@code <module>.bias}, say). */
  protected String key(String parameter) {
    return parameter;
  }

  /**
   * Whether {@code parameter} belongs to one of the config's {@code modules_to_save} (exact module name or
   * {@code .name} suffix): those are trained in full by their own copies, so a method leaves them out.
   */
  protected final boolean inModulesToSave(String parameter) {
    int dot = parameter.lastIndexOf('.');
    String module = dot > 0 ? parameter.substring(0, dot) : parameter;
    return config().modulesToSave().stream().anyMatch(m -> module.equals(m) || module.endsWith("." + m));
  }

  /** The base parameters this adapter trains (their copies are what {@link #trainableParameters()} lists). */
  public final List<String> selectedParameters() {
    requireApplied();
    return copies.stream().map(Copy::original).toList();
  }

  @Override
  protected final void build(SameDiff sameDiff, GraphRewriter g) {
    List<String> chosen = select(sameDiff, g);
    Set<String> linearWeights = new HashSet<>();
    g.linearModules().forEach((LinearModule m) -> linearWeights.add(m.weight()));
    String scope = scope(method);
    Built<List<Copy>> planned = g.build(() -> {
      List<Copy> made = new ArrayList<>();
      for (String p : chosen) {
        String copy = scope + p;
        sameDiff.var(copy, sameDiff.getArrForVarName(p).dup());
        made.add(new Copy(p, copy, Set.copyOf(g.consumersOf(p)), linearWeights.contains(p)));
      }
      return made;
    });
    created = planned.created();
    for (Copy c : planned.value()) {
      copies.add(c);
      point(c, c.original(), c.copy());
    }
  }

  /** Points the recorded readers of {@code c} from {@code from} to {@code to}, leaving any other reader alone. */
  private void point(Copy c, String from, String to) {
    Set<String> others = new HashSet<>(graph().consumersOf(from));
    others.removeAll(c.readers());
    graph().redirect(from, to, others);
  }

  @Override
  protected final void attach() {
    copies.forEach(c -> point(c, c.original(), c.copy()));
  }

  @Override
  protected final void detach() {
    copies.forEach(c -> point(c, c.copy(), c.original()));
  }

  @Override
  protected final void remove() {
    if (created != null) {
      graph().remove(created);
      created = null;
    }
    copies.clear();
    overwritten.clear();
  }

  @Override
  protected final List<String> parameters() {
    return copies.stream().map(Copy::copy).toList();
  }

  @Override
  protected final Map<String, INDArray> ownStateDict() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (Copy c : copies) {
      INDArray value = sd().getArrForVarName(c.copy());
      out.put(key(c.original()), c.linearWeight() ? value.transpose().dup('c') : value.dup());
    }
    return out;
  }

  @Override
  protected final void loadOwnStateDict(Map<String, INDArray> tensors) {
    for (Copy c : copies) {
      INDArray target = sd().getArrForVarName(c.copy());
      INDArray value = tensors.get(key(c.original()));
      target.assign((c.linearWeight() ? value.transpose() : value).castTo(target.dataType()));
    }
  }

  /** The trained values; the values they replace are remembered so that unmerge restores them exactly. */
  @Override
  protected final List<MergedWeight> mergedWeights() {
    overwritten.clear();
    List<MergedWeight> merged = new ArrayList<>();
    for (Copy c : copies) {
      overwritten.put(c.original(), sd().getArrForVarName(c.original()).dup());
      merged.add(new MergedWeight(c.original(), sd().getArrForVarName(c.copy()).dup()));
    }
    return merged;
  }

  @Override
  protected final void unmergeWeights() {
    overwritten.forEach((original, value) -> sd().getArrForVarName(original).assign(value));
    overwritten.clear();
  }
}
