package dev.peft4j;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.graph.ArrayHolders;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.BatchedMatmulBlasThreads;
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
import java.util.concurrent.locks.ReentrantReadWriteLock;
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
 *
 * <p><b>Threads.</b> A {@code PeftModel} may be shared by threads. It guards its graph with a read/write lock:
 * <ul>
 *   <li>{@link #output} runs under the read lock, so any number of threads run it at once (SameDiff keeps one
 *       inference session per graph and thread), each getting what it would get alone with the adapters active
 *       when its call began;
 *   <li>every change takes the write lock and waits for running outputs to finish, and outputs wait for it:
 *       {@link #addAdapter}, {@link #deleteAdapter}, {@link #setAdapter}, {@link #merge}, {@link #unmerge},
 *       {@link #train}, {@link #eval}, {@link #mergeAndUnload}, {@link #unload};
 *   <li>{@link #outputMixed} runs under the read lock when every adapter its rows name is plain LoRA (in eval
 *       mode), so mixed batches run at once with each other and with {@code output}; it takes the write lock once
 *       to build its graph variant, and again after an adapter was added or removed. Batches naming another kind
 *       of adapter switch adapters between row groups under the write lock for the whole call: they give the
 *       single-threaded result, and other threads never see the switching, but they run one at a time and other
 *       threads' outputs wait meanwhile;
 *   <li>{@link #disableAdapters()} takes the write lock until its scope is closed: the calling thread sees the base
 *       model, other threads' calls wait until the scope closes (they never see the base by accident). The scope
 *       must be closed on the thread that opened it;
 *   <li>{@link #exclusive()} hands the write lock to the caller for work that is not one of the calls above:
 *       {@code Trainer.fit} holds it for the whole run (inference from other threads waits until training ends),
 *       as should code that rewrites the graph or changes an {@link Adapter} from {@link #adapter} directly.
 * </ul>
 * The locks are reentrant: the thread holding the write lock may call every method (an evaluation callback of the
 * trainer calls {@code output}), but it must not wait for another thread that calls this model, which would wait
 * for the lock it holds. {@link #sameDiff()} and the {@link Adapter}s themselves are not guarded: used directly,
 * they are outside this contract. Uncontended, the read lock costs about 17 ns a call, 0.0007% of a batch-1 forward
 * of a 4 × 512 MLP ({@code OutputLockBenchmark} in peft-bench).
 */
public final class PeftModel {

  /** The adapter name {@link AdapterConfig#apply(SameDiff)} uses, as in Hugging Face PEFT. */
  public static final String DEFAULT_ADAPTER = AdapterFiles.DEFAULT_ADAPTER;

  private final SameDiff sd;
  private final GraphRewriter graph;
  private final Map<String, Adapter> adapters = new LinkedHashMap<>();
  private final Set<String> frozenBase = new LinkedHashSet<>();
  private final Set<String> frozenAdapters = new LinkedHashSet<>();
  private volatile boolean training;
  // written to every saved adapter_config.json, as HF PEFT writes them; from ModelOrigin when the graph has one
  private volatile String baseModelNameOrPath;
  private volatile TaskType taskType;
  // read: output; write: every change of the graph, the adapters' states or the adapter map (see the class Javadoc)
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  // outputMixed's graph variant for LoRA adapters: built under the write lock, run under the read lock
  private volatile MixedLoraGraph mixedGraph;

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
   * A model over {@code sameDiff} with no adapter yet; nothing is frozen until the first adapter is added. The graph's
   * weights move into holders that keep each array once ({@link ArrayHolders#keepEachArrayOnce}: the same array
   * objects, without the duplicate SameDiff's default holder keeps of each).
   *
   * @throws IllegalStateException naming the ND4J backend artifacts to add, if none is on the classpath
   *     ({@link BackendCheck})
   */
  public static PeftModel wrap(SameDiff sameDiff) {
    checkArgument(sameDiff != null, "sameDiff must not be null");
    BackendCheck.requireBackend();
    return new PeftModel(ArrayHolders.keepEachArrayOnce(sameDiff));
  }

  /**
   * Applies {@code config} as a new adapter called {@code name} and freezes every base variable. As in Hugging Face
   * PEFT, the first adapter is active and later ones are added inactive ({@link #setAdapter} switches); adapters may
   * share modules, since only one is active at a time.
   *
   * @throws IllegalArgumentException if the name cannot name a directory of a save ({@link
   *     AdapterFiles#checkAdapterName}: blank, '.' or '..', a '/' or '\\', a control character, too long), is
   *     taken, or the config does not fit the graph; the graph is then untouched
   */
  public PeftModel addAdapter(String name, AdapterConfig config) {
    lock.writeLock().lock();
    try {
      return addAdapterLocked(name, config);
    } finally {
      lock.writeLock().unlock();
    }
  }

  private PeftModel addAdapterLocked(String name, AdapterConfig config) {
    AdapterFiles.checkAdapterName(name); // before anything is rewired: the name becomes a directory when saved
    checkArgument(config != null, "config must not be null");
    checkArgument(!adapters.containsKey(name), "an adapter named '%s' exists already; adapters: %s", name,
        adapters.keySet());
    Set<String> adapterParameters = new HashSet<>();
    adapters.values().forEach(a -> adapterParameters.addAll(a.trainableParameters().names()));
    List<String> base = new ArrayList<>(graph.trainableVariables());
    base.removeAll(adapterParameters);

    Adapter adapter = config.newAdapter(name);
    List<Adapter> active = adapters.values().stream()
        .filter(PeftModel::isActive).toList();
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
    lock.writeLock().lock(); // no other thread sees the adapter before its tensors are in
    try {
      addAdapter(name, config);
      try {
        adapters.get(name).loadStateDict(tensors);
      } catch (RuntimeException e) {
        deleteAdapter(name);
        throw e;
      }
      return this;
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * Removes adapter {@code name} (unmerging it if merged); when it was the last one, base variables train again.
   *
   * @throws IllegalArgumentException if no adapter has that name
   * @throws IllegalStateException if it is the active adapter while others exist (switch with {@link #setAdapter}
   *     first)
   */
  public void deleteAdapter(String name) {
    lock.writeLock().lock();
    try {
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
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * Saves every adapter in Hugging Face PEFT's layout: the adapter {@value #DEFAULT_ADAPTER} in {@code dir}, any
   * other in {@code dir/<name>}, each as {@code adapter_config.json} and {@code adapter_model.safetensors}. The save
   * replaces the previous one in {@code dir} as a whole ({@link AdapterFiles#writeAll}): a reader sees the previous
   * save or this one, or is refused while it is swapped in; concurrent saves into one directory run one after
   * another; adapters of an earlier peft4j save that this model no longer has are removed.
   *
   * @throws IllegalStateException if the model has no adapter
   */
  public void save(Path dir) throws IOException {
    lock.readLock().lock(); // the adapters and their weights stay as they are while they are written
    try {
      checkState(!adapters.isEmpty(), "the model has no adapter to save");
      Map<String, AdapterFiles.Contents> contents = new LinkedHashMap<>();
      for (Adapter a : adapters.values()) {
        Map<String, Object> config = new LinkedHashMap<>(a.config().toHfConfig());
        config.put("base_model_name_or_path", baseModelNameOrPath);
        config.put("task_type", taskType == null ? null : taskType.name());
        contents.put(a.name(), new AdapterFiles.Contents(config, a.stateDict()));
      }
      AdapterFiles.writeAll(dir, contents);
    } finally {
      lock.readLock().unlock();
    }
  }

  /** The adapted graph (the same instance that was wrapped). */
  public SameDiff sameDiff() {
    return sd;
  }

  /**
   * Makes {@code name} the one active adapter: every other adapter is disabled (its weights kept) and {@code name}
   * is enabled. Training then touches only its parameters. The same as {@code setAdapter(List.of(name))}.
   *
   * @throws IllegalArgumentException if no adapter has that name
   * @throws IllegalStateException if another adapter is merged into the base weights (unmerge it first)
   */
  public void setAdapter(String name) {
    checkArgument(name != null, "adapter name must not be null; adapters: %s", adapterNames());
    setAdapter(List.of(name));
  }

  /**
   * Makes exactly {@code names} the active adapters (Hugging Face's {@code set_adapter([..])}): every other adapter is
   * disabled (its weights kept) and these are enabled; training then touches the parameters of all of them.
   *
   * <p>In Hugging Face PEFT two active adapters on one module both apply, their updates summed. peft4j splices each
   * adapter's branch in after the module it adapts, and two branches spliced at one place do not sum for every
   * method (IA³ scales, DoRA renormalises, prompt tuning prepends). So several adapters are activated together only
   * when no two of them adapt the same module; otherwise this refuses, naming both and the shared ops, and the
   * active adapters stay as they were.
   *
   * @throws IllegalArgumentException if the list is empty, names an adapter twice, or names one that does not exist
   * @throws IllegalStateException if an adapter not in the list is merged into the base weights (unmerge it first),
   *     or two listed adapters adapt the same module
   */
  public void setAdapter(List<String> names) {
    checkArgument(names != null && !names.isEmpty(), "name at least one adapter to activate, got %s", names);
    checkArgument(new HashSet<>(names).size() == names.size(), "an adapter is named twice in %s", names);
    lock.writeLock().lock();
    try {
      Set<Adapter> targets = new HashSet<>();
      names.forEach(n -> targets.add(adapter(n)));
      String wanted = names.size() == 1 ? "'" + names.get(0) + "'" : names.toString();
      for (Adapter a : adapters.values()) {
        if (!targets.contains(a)) {
          checkState(!isMerged(a), "adapter '%s' is merged into the base weights; unmerge it before switching to %s",
              a.name(), wanted);
        }
      }
      List<Adapter> wasActive = adapters.values().stream().filter(PeftModel::isActive).toList();
      disable(wasActive);
      List<Adapter> enable = adapters.values().stream().filter(targets::contains).toList(); // in the order added
      try {
        requireDisjointModules(enable);
      } catch (RuntimeException e) {
        wasActive.forEach(Adapter::enable);
        throw e;
      }
      enable.forEach(Adapter::enable);
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * Refuses adapters that would be spliced in at one place: each one's footprint is the set of ops whose wiring it
   * changes when enabled alone (the ops producing or reading what it adapts, and its own branch), found by enabling
   * it on the graph with every other adapter out. Called with {@code candidates} all disabled, and leaves them so.
   */
  private void requireDisjointModules(List<Adapter> candidates) {
    List<Adapter> unmerged = candidates.stream().filter(a -> !isMerged(a)).toList();
    if (unmerged.size() < 2) {
      return;
    }
    Map<Adapter, Set<String>> footprints = new LinkedHashMap<>();
    Map<String, List<String>> base = graph.wiring();
    for (Adapter a : unmerged) {
      a.enable();
      try {
        Map<String, List<String>> wired = graph.wiring();
        Set<String> changed = new java.util.TreeSet<>();
        wired.forEach((op, w) -> {
          if (!w.equals(base.get(op))) {
            changed.add(op);
          }
        });
        footprints.put(a, changed);
      } finally {
        a.disable();
      }
    }
    List<Adapter> seen = new ArrayList<>();
    for (Map.Entry<Adapter, Set<String>> e : footprints.entrySet()) {
      for (Adapter earlier : seen) {
        Set<String> shared = new java.util.TreeSet<>(footprints.get(earlier));
        shared.retainAll(e.getValue());
        checkState(shared.isEmpty(), "adapters '%s' and '%s' adapt the same module (both rewire ops %s); several "
            + "adapters can be active together only on different modules", earlier.name(), e.getKey().name(),
            shared.stream().limit(4).toList());
      }
      seen.add(e.getKey());
    }
  }

  /**
   * Freezes adapter {@code name} for inference, as Hugging Face's {@code is_trainable=False} loads one: its
   * parameters become constants and {@link #trainableParameters()} leaves it out; it still acts on outputs, merges
   * and unloads. {@link #unfreezeAdapter} undoes it.
   *
   * @throws IllegalArgumentException if no adapter has that name
   */
  public void freezeAdapter(String name) {
    lock.writeLock().lock();
    try {
      Adapter a = adapter(name);
      if (frozenAdapters.add(name)) {
        graph.freeze(a.trainableParameters().names());
      }
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** Makes a {@link #freezeAdapter frozen} adapter's parameters train again. */
  public void unfreezeAdapter(String name) {
    lock.writeLock().lock();
    try {
      Adapter a = adapter(name);
      if (frozenAdapters.remove(name)) {
        graph.unfreeze(a.trainableParameters().names());
      }
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** Names of the enabled adapters (merged ones included), in the order they were added. */
  public List<String> activeAdapters() {
    lock.readLock().lock();
    try {
      return adapters.values().stream().filter(Adapter::isEnabled).map(Adapter::name).toList();
    } finally {
      lock.readLock().unlock();
    }
  }

  /**
   * The adapter called {@code name}. Changing it directly ({@code enable}, {@code merge}, …) is outside this model's
   * thread-safety contract unless done inside {@link #exclusive()}.
   *
   * @throws IllegalArgumentException if no adapter has that name
   */
  public Adapter adapter(String name) {
    lock.readLock().lock();
    try {
      Adapter a = adapters.get(name);
      checkArgument(a != null, "no adapter named '%s'; adapters: %s", name, adapters.keySet());
      return a;
    } finally {
      lock.readLock().unlock();
    }
  }

  /** Adapter names in the order they were added (an unmodifiable copy). */
  public Set<String> adapterNames() {
    lock.readLock().lock();
    try {
      return java.util.Collections.unmodifiableSet(new LinkedHashSet<>(adapters.keySet()));
    } finally {
      lock.readLock().unlock();
    }
  }

  /**
   * The parameters that train: those of every adapter that is enabled and not merged. Prints like Hugging Face's
   * {@code print_trainable_parameters()}.
   */
  public TrainableParameterSet trainableParameters() {
    lock.readLock().lock();
    try {
      TrainableParameterSet set = TrainableParameterSet.empty(TrainableParameterSet.parameterCount(sd));
      for (Adapter a : adapters.values()) {
        if (isActive(a) && !frozenAdapters.contains(a.name())) {
          set = set.union(a.trainableParameters());
        }
      }
      return set;
    } finally {
      lock.readLock().unlock();
    }
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
    lock.writeLock().lock(); // a mode switch rewires dropout: not while another thread runs the graph
    try {
      training = on;
      adapters.values().forEach(a -> a.setTraining(on));
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * Disables every enabled adapter until the returned scope is closed, which re-enables exactly those. Weights are
   * untouched. Merged adapters stay merged. The calling thread holds this model's write lock until it closes the
   * scope, which it must do itself: meanwhile other threads' calls wait, so they never see the base model by
   * accident.
   * <pre>{@code try (var base = model.disableAdapters()) { baseOutput = model.output(...); } }</pre>
   */
  public AdapterScope disableAdapters() {
    lock.writeLock().lock();
    List<Adapter> disabled;
    try {
      disabled = adapters.values().stream().filter(PeftModel::isActive).toList();
      disable(disabled);
    } catch (RuntimeException e) {
      lock.writeLock().unlock();
      throw e;
    }
    return heldUntilClosed(() -> disabled.forEach(Adapter::enable));
  }

  /**
   * Exclusive access to the model until the returned scope is closed: the calling thread holds the write lock, so
   * no other thread runs or changes the model meanwhile. For work that changes the graph or an adapter other than
   * through this class (training, rewriting, an {@link Adapter} changed directly); {@code Trainer.fit} takes it for
   * its whole run. Close the scope on the thread that opened it.
   * <pre>{@code try (var only = model.exclusive()) { model.adapter("a").setTraining(true); ... } }</pre>
   */
  public AdapterScope exclusive() {
    lock.writeLock().lock();
    return heldUntilClosed(() -> {});
  }

  /**
   * Shared access until the returned scope is closed: the calling thread holds the read lock, as {@link #output} does
   * while it runs, so other threads may run the model but none changes it. Opened while holding
   * {@link #exclusive()}, it outlasts that scope's close (the lock is downgraded), for work that prepares under the
   * write lock and then only reads (generation on copies of the graph that share its weights).
   */
  public AdapterScope shared() {
    lock.readLock().lock();
    boolean[] closed = {false};
    return () -> {
      if (!closed[0]) {
        closed[0] = true;
        lock.readLock().unlock();
      }
    };
  }

  /** A scope that runs {@code undo} and releases the write lock (which the caller holds) when first closed. */
  private AdapterScope heldUntilClosed(Runnable undo) {
    boolean[] closed = {false};
    return () -> {
      if (closed[0]) {
        return;
      }
      checkState(lock.isWriteLockedByCurrentThread(),
          "the scope was opened by another thread; close it on the thread that opened it");
      closed[0] = true;
      try {
        undo.run();
      } finally {
        lock.writeLock().unlock();
      }
    };
  }

  /** A scope that undoes a temporary change when closed. */
  @FunctionalInterface
  public interface AdapterScope extends AutoCloseable {
    @Override
    void close();
  }

  /**
   * Folds every active adapter into the base weights (Hugging Face's {@code merge_adapter()}): outputs stay the same
   * (to float rounding) and inference no longer pays for the adapters' branches. The adapters are kept and
   * {@link #unmerge()} takes them out again; while merged they do not train. Adapters merged already are skipped.
   *
   * @throws IllegalStateException naming the adapter, if an active adapter cannot be merged; nothing is merged then
   */
  public void merge() {
    lock.writeLock().lock();
    try {
      List<Adapter> active = adapters.values().stream().filter(PeftModel::isActive).toList();
      for (Adapter a : active) {
        checkState(a instanceof MergeableAdapter, "adapter '%s' cannot be merged into the base weights (%s is not "
            + "mergeable); nothing was merged", a.name(), a.getClass().getSimpleName());
      }
      List<MergeableAdapter> merged = new ArrayList<>();
      try {
        for (Adapter a : active) {
          ((MergeableAdapter) a).merge();
          merged.add((MergeableAdapter) a);
        }
      } catch (RuntimeException e) {
        for (int i = merged.size() - 1; i >= 0; i--) {
          merged.get(i).unmerge();
        }
        throw e;
      }
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * Takes every merged adapter back out of the base weights (Hugging Face's {@code unmerge_adapter()}), last merged
   * first, and wires its branch in again; the base weights are what they were before merging, to float rounding.
   * Does nothing when no adapter is merged.
   */
  public void unmerge() {
    lock.writeLock().lock();
    try {
      List<Adapter> merged = adapters.values().stream().filter(PeftModel::isMerged).toList();
      for (int i = merged.size() - 1; i >= 0; i--) {
        ((MergeableAdapter) merged.get(i)).unmerge();
      }
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * Merges every enabled adapter into the base weights and returns the base graph with no adapter op or variable
   * left; base variables are trainable again.
   *
   * @throws IllegalStateException if an adapter cannot be merged; nothing is changed then
   */
  public SameDiff mergeAndUnload() {
    lock.writeLock().lock();
    try {
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
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** Removes every adapter without merging and returns the base graph as it was; base variables train again. */
  public SameDiff unload() {
    lock.writeLock().lock();
    try {
      adapters.values().forEach(Adapter::unload);
      return release();
    } finally {
      lock.writeLock().unlock();
    }
  }

  private SameDiff release() {
    adapters.clear();
    mixedGraph = null;
    frozenBase.removeIf(v -> !sd.hasVariable(v));
    graph.unfreeze(new ArrayList<>(frozenBase));
    frozenBase.clear();
    return sd;
  }

  /** Disables {@code active} last added first, the reverse of the order in which they were spliced in. */
  private static void disable(List<Adapter> active) {
    for (int i = active.size() - 1; i >= 0; i--) {
      active.get(i).disable();
    }
  }

  /**
   * Inference on a batch whose rows name their adapter: row i runs with adapter {@code adapterPerRow.get(i)}, or with
   * the base model where that is {@code null}. The result equals running each row alone with its adapter. Every input
   * and every requested output must have the batch as its leading dimension. The active adapters are as before
   * afterwards.
   *
   * <p>When every adapter the rows name is plain LoRA ({@link LowRankAdapter}: not DoRA, no modules to save) and the
   * model is in eval mode, the batch runs once on a graph variant ({@link MixedLoraGraph}): the base once for all
   * rows, each row's own low-rank update beside it, under the read lock, so concurrent mixed batches and outputs run
   * in parallel; equal to the per-row result to float rounding. The variant is built on first use and rebuilt after
   * adapters are added or removed (under the write lock, once). Otherwise (another method, or training mode) rows are
   * grouped by adapter, each group runs once with its adapter switched on, and the rows are put back in order, under
   * the write lock for the whole call: mixed batches then run one at a time; see the class Javadoc.
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
    lock.readLock().lock();
    try {
      Map<String, List<LowRankAdapter.LowRankUpdate>> updates = lowRankUpdatesFor(adapterPerRow);
      MixedLoraGraph variant = mixedGraph;
      if (updates != null && variant != null && variant.isCurrent(updates)) {
        return variant.output(inputs, adapterPerRow, updates, outputs);
      }
    } finally {
      lock.readLock().unlock();
    }
    lock.writeLock().lock();
    Map<String, List<LowRankAdapter.LowRankUpdate>> updates;
    try {
      updates = lowRankUpdatesFor(adapterPerRow);
      if (updates == null) {
        return outputMixedLocked(inputs, adapterPerRow, rows, outputs);
      }
      if (mixedGraph == null || !mixedGraph.isCurrent(updates)) {
        List<Adapter> wasActive = adapters.values().stream().filter(Adapter::isEnabled).toList();
        disable(wasActive); // the variant is the base plus its own branches
        try {
          mixedGraph = MixedLoraGraph.build(sd, updates);
        } finally {
          wasActive.forEach(Adapter::enable);
        }
      }
      lock.readLock().lock(); // downgrade: the batch itself runs beside other readers
    } finally {
      lock.writeLock().unlock();
    }
    try {
      return mixedGraph.output(inputs, adapterPerRow, updates, outputs);
    } finally {
      lock.readLock().unlock();
    }
  }

  /**
   * The updates of every LoRA-only adapter of the model, by name, when {@link MixedLoraGraph} can run this batch: eval
   * mode, no adapter merged, and every adapter a row names LoRA-only; otherwise null. Call under the lock.
   *
   * @throws IllegalArgumentException naming an unknown adapter
   */
  private Map<String, List<LowRankAdapter.LowRankUpdate>> lowRankUpdatesFor(List<String> adapterPerRow) {
    Set<String> named = new LinkedHashSet<>(adapterPerRow);
    named.remove(null);
    named.forEach(this::adapter);
    if (training || adapters.values().stream().anyMatch(PeftModel::isMerged)) {
      return null;
    }
    Map<String, List<LowRankAdapter.LowRankUpdate>> updates = new LinkedHashMap<>();
    for (Adapter a : adapters.values()) {
      if (a instanceof LowRankAdapter l) {
        l.lowRankUpdates().ifPresent(u -> updates.put(a.name(), u));
      }
    }
    return updates.keySet().containsAll(named) ? updates : null;
  }

  private Map<String, INDArray> outputMixedLocked(Map<String, INDArray> inputs, List<String> adapterPerRow, long rows,
      String... outputs) {
    for (String name : new LinkedHashSet<>(adapterPerRow)) {
      if (name != null) {
        adapter(name);
      }
    }
    for (Adapter a : adapters.values()) {
      checkState(!isMerged(a), "adapter '%s' is merged into the base weights; unmerge it for mixed batches",
          a.name());
    }
    List<Adapter> wasActive = adapters.values().stream().filter(Adapter::isEnabled).toList();
    Map<String, INDArray> result = new LinkedHashMap<>();
    try {
      for (String group : new LinkedHashSet<>(adapterPerRow)) {
        long[] members = java.util.stream.IntStream.range(0, adapterPerRow.size())
            .filter(i -> java.util.Objects.equals(adapterPerRow.get(i), group)).asLongStream().toArray();
        Map<String, INDArray> groupInputs = new LinkedHashMap<>();
        inputs.forEach((k, v) -> groupInputs.put(k, rowsOf(v, members)));
        disable(List.copyOf(adapters.values()));
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
      disable(List.copyOf(adapters.values()));
      wasActive.forEach(Adapter::enable);
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
   * ({@link ModelInputs}). Safe to call from several threads at once, also while others change the model (see the
   * class Javadoc).
   *
   * @throws IllegalArgumentException naming both numbers, if {@code input_ids} is longer than the model's positions
   */
  public Map<String, INDArray> output(Map<String, INDArray> inputs, String... outputs) {
    lock.readLock().lock();
    try {
      RowMajorArrayCache.install(sd); // the calling thread's own session: SameDiff keeps one per thread
      BatchedMatmulBlasThreads.install(sd);
      Map<String, INDArray> values = sd.output(ModelInputs.complete(sd, inputs), outputs);
      RowMajorArrayCache.reclaim(sd, values.values()); // the next run reuses what this one left in the session
      return values;
    } finally {
      lock.readLock().unlock();
    }
  }

  private static boolean isActive(Adapter a) {
    return a.isEnabled() && !isMerged(a);
  }

  private static boolean isMerged(Adapter a) {
    return a instanceof MergeableAdapter m && m.isMerged();
  }

  @Override
  public String toString() {
    lock.readLock().lock();
    try {
      return "PeftModel" + adapters.keySet() + " " + trainableParameters();
    } finally {
      lock.readLock().unlock();
    }
  }
}
