package dev.peft4j;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.RowMajorArrayCache;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.model.ModelInputs;
import dev.peft4j.model.ModelOrigin;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * A SameDiff graph with its base parameters frozen and one or more named adapters applied to it.
 *
 * <pre>{@code
 * PeftModel m = Peft.lora(16).alpha(32).target("q_proj", "v_proj").apply(sameDiff);
 * System.out.println(m.trainableParameters());  // trainable params: … || all params: … || trainable%: …
 * Trainer.builder(m).steps(100).build().fit(batches);
 * SameDiff merged = m.mergeAndUnload();         // base graph, adapter folded into its weights
 * }</pre>
 *
 * <p>The graph is modified in place, as Hugging Face PEFT modifies the model it wraps. Base variables are frozen
 * when the first adapter is added and made trainable again by {@link #unload()} and {@link #mergeAndUnload()}.
 */
public final class PeftModel {

  /** The adapter name {@link AdapterConfig#apply(SameDiff)} uses, as in Hugging Face PEFT. */
  public static final String DEFAULT_ADAPTER = "default";

  private final SameDiff sd;
  private final GraphRewriter graph;
  private final Map<String, Adapter> adapters = new LinkedHashMap<>();
  private final Set<String> frozenBase = new LinkedHashSet<>();
  private final Set<String> frozenAdapters = new LinkedHashSet<>();
  private boolean training;
  // written to every saved adapter_config.json, as HF PEFT writes them; from ModelOrigin when the graph has one
  private String baseModelNameOrPath;
  private TaskType taskType;

  private PeftModel(SameDiff sd) {
    this.sd = sd;
    this.graph = GraphRewriter.of(sd);
    ModelOrigin.of(sd).ifPresent(o -> {
      baseModelNameOrPath = o.nameOrPath();
      taskType = o.taskType();
    });
  }

  /**
   * Sets the {@code base_model_name_or_path} saved adapters carry (Hugging Face's {@code AutoPeftModel…} loads the
   * base from it); by default the name {@code HfModels} loaded the graph under, else none.
   */
  public PeftModel baseModelNameOrPath(String nameOrPath) {
    this.baseModelNameOrPath = nameOrPath;
    return this;
  }

  /** The {@code base_model_name_or_path} saved adapters carry, or null. */
  public String baseModelNameOrPath() {
    return baseModelNameOrPath;
  }

  /**
   * Sets the {@code task_type} saved adapters carry; by default the task of the head {@code HfModels} or
   * {@code Heads} built, else none.
   */
  public PeftModel taskType(TaskType taskType) {
    this.taskType = taskType;
    return this;
  }

  /** The {@code task_type} saved adapters carry, or null. */
  public TaskType taskType() {
    return taskType;
  }

  /**
   * A model over {@code sameDiff} with no adapter yet; nothing is frozen until the first adapter is added.
   *
   * @throws IllegalStateException naming the ND4J backend artifacts to add, if none is on the classpath
   *     ({@link BackendCheck})
   */
  public static PeftModel wrap(SameDiff sameDiff) {
    checkArgument(sameDiff != null, "sameDiff must not be null");
    BackendCheck.requireBackend();
    return new PeftModel(sameDiff);
  }

  /**
   * Applies {@code config} as a new adapter called {@code name} and freezes every base variable. As in Hugging Face
   * PEFT, the first adapter is active and later ones are added inactive ({@link #setAdapter} switches); adapters may
   * share modules, since only one is active at a time.
   *
   * @throws IllegalArgumentException if the name is blank, contains '/', is taken, or the config does not fit the
   *     graph; the graph is then untouched
   */
  public PeftModel addAdapter(String name, AdapterConfig config) {
    checkArgument(name != null && !name.isBlank() && !name.contains("/"),
        "adapter name must be non-blank and contain no '/', got '%s'", name);
    checkArgument(config != null, "config must not be null");
    checkArgument(!adapters.containsKey(name), "an adapter named '%s' exists already; adapters: %s", name,
        adapters.keySet());
    Set<String> adapterParameters = new HashSet<>();
    adapters.values().forEach(a -> adapterParameters.addAll(a.trainableParameters().names()));
    List<String> base = new ArrayList<>(graph.trainableVariables());
    base.removeAll(adapterParameters);

    Adapter adapter = config.newAdapter(name);
    List<Adapter> active = adapters.values().stream()
        .filter(a -> a.isEnabled() && !(a instanceof MergeableAdapter m && m.isMerged())).toList();
    active.forEach(Adapter::disable); // the new branches must read the base modules, not another adapter's output
    try {
      adapter.apply(sd); // validates before it rewrites: a failure leaves the graph as it was
      if (!adapters.isEmpty()) {
        adapter.disable();
      }
    } finally {
      active.forEach(Adapter::enable);
    }
    base.removeIf(v -> !sd.hasVariable(v)); // a base weight the adapter replaced (QLoRA stores it quantised)
    graph.freeze(base);
    frozenBase.addAll(base);
    adapter.setTraining(training);
    adapters.put(name, adapter);
    return this;
  }

  /**
   * Like {@link #addAdapter(String, AdapterConfig)}, then loads {@code tensors} (laid out as
   * {@link Adapter#stateDict()}) into the new adapter. If they do not fit, the adapter is removed again and the
   * model is as it was.
   *
   * @throws IllegalArgumentException naming the problem (unmatched targets, missing or unexpected tensors, a shape
   *     that differs, with both shapes)
   */
  public PeftModel addAdapter(String name, AdapterConfig config, Map<String, INDArray> tensors) {
    addAdapter(name, config);
    try {
      adapters.get(name).loadStateDict(tensors);
    } catch (RuntimeException e) {
      deleteAdapter(name);
      throw e;
    }
    return this;
  }

  /**
   * Removes adapter {@code name} (unmerging it if merged); when it was the last one, base variables train again.
   *
   * @throws IllegalArgumentException if no adapter has that name
   * @throws IllegalStateException if it is the active adapter while others exist (switch with {@link #setAdapter}
   *     first)
   */
  public void deleteAdapter(String name) {
    Adapter a = adapter(name);
    checkState(!a.isEnabled() || adapters.size() == 1,
        "adapter '%s' is active; switch to another with setAdapter before deleting it (adapters: %s)", name,
        adapters.keySet());
    a.unload();
    adapters.remove(name);
    frozenAdapters.remove(name);
    if (adapters.isEmpty()) {
      release();
    }
  }

  /**
   * Saves every adapter in Hugging Face PEFT's layout: the adapter {@value #DEFAULT_ADAPTER} in {@code dir}, any
   * other in {@code dir/<name>}, each as {@code adapter_config.json} and {@code adapter_model.safetensors}, written
   * atomically file by file.
   */
  public void save(Path dir) throws IOException {
    for (Adapter a : adapters.values()) {
      Map<String, Object> config = new LinkedHashMap<>(a.config().toHfConfig());
      config.put("base_model_name_or_path", baseModelNameOrPath);
      config.put("task_type", taskType == null ? null : taskType.name());
      AdapterFiles.write(a.name().equals(DEFAULT_ADAPTER) ? dir : dir.resolve(a.name()), config, a.stateDict());
    }
  }

  /** The adapted graph (the same instance that was wrapped). */
  public SameDiff sameDiff() {
    return sd;
  }

  /**
   * Makes {@code name} the one active adapter: every other adapter is disabled (its weights kept) and {@code name}
   * is enabled. Training then touches only its parameters.
   *
   * @throws IllegalArgumentException if no adapter has that name
   * @throws IllegalStateException if another adapter is merged into the base weights (unmerge it first)
   */
  public void setAdapter(String name) {
    Adapter target = adapter(name);
    for (Adapter a : adapters.values()) {
      if (a != target) {
        checkState(!(a instanceof MergeableAdapter m && m.isMerged()),
            "adapter '%s' is merged into the base weights; unmerge it before switching to '%s'", a.name(), name);
      }
    }
    adapters.values().stream().filter(a -> a != target).forEach(Adapter::disable);
    target.enable();
  }

  /**
   * Freezes adapter {@code name} for inference, as Hugging Face's {@code is_trainable=False} loads one: its
   * parameters become constants and {@link #trainableParameters()} leaves it out; it still acts on outputs, merges
   * and unloads. {@link #unfreezeAdapter} undoes it.
   *
   * @throws IllegalArgumentException if no adapter has that name
   */
  public void freezeAdapter(String name) {
    Adapter a = adapter(name);
    if (frozenAdapters.add(name)) {
      graph.freeze(a.trainableParameters().names());
    }
  }

  /** Makes a {@link #freezeAdapter frozen} adapter's parameters train again. */
  public void unfreezeAdapter(String name) {
    Adapter a = adapter(name);
    if (frozenAdapters.remove(name)) {
      graph.unfreeze(a.trainableParameters().names());
    }
  }

  /** Names of the enabled adapters (merged ones included), in the order they were added. */
  public List<String> activeAdapters() {
    return adapters.values().stream().filter(Adapter::isEnabled).map(Adapter::name).toList();
  }

  /** @throws IllegalArgumentException if no adapter has that name */
  public Adapter adapter(String name) {
    Adapter a = adapters.get(name);
    checkArgument(a != null, "no adapter named '%s'; adapters: %s", name, adapters.keySet());
    return a;
  }

  /** Adapter names in the order they were added. */
  public Set<String> adapterNames() {
    return Set.copyOf(adapters.keySet());
  }

  /**
   * The parameters that train: those of every adapter that is enabled and not merged. Prints like Hugging Face's
   * {@code print_trainable_parameters()}.
   */
  public TrainableParameterSet trainableParameters() {
    TrainableParameterSet set = TrainableParameterSet.empty(TrainableParameterSet.parameterCount(sd));
    for (Adapter a : adapters.values()) {
      if (isActive(a) && !frozenAdapters.contains(a.name())) {
        set = set.union(a.trainableParameters());
      }
    }
    return set;
  }

  /** Training behaviour for every adapter (dropout active). */
  public void train() {
    setTraining(true);
  }

  /** Inference behaviour for every adapter (dropout off). The mode after construction. */
  public void eval() {
    setTraining(false);
  }

  public boolean isTraining() {
    return training;
  }

  private void setTraining(boolean on) {
    training = on;
    adapters.values().forEach(a -> a.setTraining(on));
  }

  /**
   * Disables every enabled adapter until the returned scope is closed, which re-enables exactly those. Weights are
   * untouched. Merged adapters stay merged.
   * <pre>{@code try (var base = model.disableAdapters()) { baseOutput = model.output(...); } }</pre>
   */
  public AdapterScope disableAdapters() {
    List<Adapter> disabled = new ArrayList<>();
    for (Adapter a : adapters.values()) {
      if (a.isEnabled() && !(a instanceof MergeableAdapter m && m.isMerged())) {
        a.disable();
        disabled.add(a);
      }
    }
    return () -> disabled.forEach(Adapter::enable);
  }

  /** A scope that undoes a temporary change when closed. */
  @FunctionalInterface
  public interface AdapterScope extends AutoCloseable {
    @Override
    void close();
  }

  /**
   * Merges every enabled adapter into the base weights and returns the base graph with no adapter op or variable
   * left; base variables are trainable again.
   *
   * @throws IllegalStateException if an adapter cannot be merged; nothing is changed then
   */
  public SameDiff mergeAndUnload() {
    for (Adapter a : adapters.values()) {
      checkState(a instanceof MergeableAdapter, "adapter '%s' cannot be merged: %s", a.name(), a.config());
    }
    for (Adapter a : adapters.values()) {
      if (a.isEnabled()) {
        ((MergeableAdapter) a).mergeAndUnload();
      } else {
        a.unload();
      }
    }
    return release();
  }

  /** Removes every adapter without merging and returns the base graph as it was; base variables train again. */
  public SameDiff unload() {
    adapters.values().forEach(Adapter::unload);
    return release();
  }

  private SameDiff release() {
    adapters.clear();
    frozenBase.removeIf(v -> !sd.hasVariable(v));
    graph.unfreeze(new ArrayList<>(frozenBase));
    frozenBase.clear();
    return sd;
  }

  /**
   * Inference on a batch whose rows name their adapter: row i runs with adapter {@code adapterPerRow.get(i)}, or with
   * the base model where that is {@code null}. The result equals running each row alone with its adapter: rows are
   * grouped by adapter, each group runs once, and the rows are put back in order. Every input and every requested
   * output must have the batch as its leading dimension. The active adapters are as before afterwards.
   *
   * @throws IllegalArgumentException if the row count differs from the inputs', an adapter name is unknown, or an
   *     output has no batch dimension
   * @throws IllegalStateException if an adapter is merged (its update is in the base weights)
   */
  public Map<String, INDArray> outputMixed(Map<String, INDArray> inputs, List<String> adapterPerRow,
      String... outputs) {
    long rows = inputs.values().iterator().next().size(0);
    checkArgument(adapterPerRow.size() == rows, "%s adapter names for %s rows", adapterPerRow.size(), rows);
    for (INDArray in : inputs.values()) {
      checkArgument(in.rank() > 0 && in.size(0) == rows, "every input needs the batch of %s rows first, got %s",
          rows, java.util.Arrays.toString(in.shape()));
    }
    for (String name : new LinkedHashSet<>(adapterPerRow)) {
      if (name != null) {
        adapter(name);
      }
    }
    for (Adapter a : adapters.values()) {
      checkState(!(a instanceof MergeableAdapter m && m.isMerged()),
          "adapter '%s' is merged into the base weights; unmerge it for mixed batches", a.name());
    }
    List<String> wasActive = activeAdapters();
    Map<String, INDArray> result = new LinkedHashMap<>();
    try {
      for (String group : new LinkedHashSet<>(adapterPerRow)) {
        long[] members = java.util.stream.IntStream.range(0, adapterPerRow.size())
            .filter(i -> java.util.Objects.equals(adapterPerRow.get(i), group)).asLongStream().toArray();
        Map<String, INDArray> groupInputs = new LinkedHashMap<>();
        inputs.forEach((k, v) -> groupInputs.put(k, rowsOf(v, members)));
        adapters.values().forEach(Adapter::disable);
        if (group != null) {
          adapters.get(group).enable();
        }
        Map<String, INDArray> out = output(groupInputs, outputs);
        for (String o : outputs) {
          INDArray part = out.get(o);
          checkArgument(part.rank() > 0 && part.size(0) == members.length,
              "output '%s' has no batch dimension (shape %s)", o, java.util.Arrays.toString(part.shape()));
          INDArray whole = result.computeIfAbsent(o, k -> {
            long[] shape = part.shape().clone();
            shape[0] = rows;
            return Nd4j.create(part.dataType(), shape);
          });
          for (int i = 0; i < members.length; i++) {
            whole.put(row(whole.rank(), members[i]), part.get(row(part.rank(), i)));
          }
        }
      }
    } finally {
      adapters.values().forEach(Adapter::disable);
      wasActive.forEach(n -> adapters.get(n).enable());
    }
    return result;
  }

  private static INDArray rowsOf(INDArray array, long[] rows) {
    INDArray out = Nd4j.create(array.dataType(), withRows(array.shape(), rows.length));
    for (int i = 0; i < rows.length; i++) {
      out.put(row(out.rank(), i), array.get(row(array.rank(), rows[i])));
    }
    return out;
  }

  /** The index of row {@code i} of an array of rank {@code rank}. */
  private static INDArrayIndex[] row(int rank, long i) {
    INDArrayIndex[] index = new INDArrayIndex[rank];
    index[0] = NDArrayIndex.point(i);
    for (int d = 1; d < rank; d++) {
      index[d] = NDArrayIndex.all();
    }
    return index;
  }

  private static long[] withRows(long[] shape, long rows) {
    long[] s = shape.clone();
    s[0] = rows;
    return s;
  }

  /**
   * Runs the graph in its current mode and returns the requested outputs (through a {@link RowMajorArrayCache}, which
   * spares ND4J M2.1's cache its slow mis-flagged arrays; the values are those of {@code sd.output}). A transformer's
   * missing {@code token_type_ids} are zeros and a missing {@code attention_mask} ones, as in transformers
   * ({@link ModelInputs}).
   *
   * @throws IllegalArgumentException naming both numbers, if {@code input_ids} is longer than the model's positions
   */
  public Map<String, INDArray> output(Map<String, INDArray> inputs, String... outputs) {
    RowMajorArrayCache.install(sd);
    return sd.output(ModelInputs.complete(sd, inputs), outputs);
  }

  private static boolean isActive(Adapter a) {
    return a.isEnabled() && !(a instanceof MergeableAdapter m && m.isMerged());
  }

  @Override
  public String toString() {
    return "PeftModel" + adapters.keySet() + " " + trainableParameters();
  }
}
