package dev.peft4j;

import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.graph.Branches;
import dev.peft4j.graph.GraphRewriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The life cycle every adapter shares, so that a method only says how its branch is built, wired in, taken out and
 * saved. States: {@code NEW → ENABLED ⇄ DISABLED → UNLOADED} (and {@code ENABLED ⇄ MERGED} for
 * {@link AbstractMergeableAdapter}). This class owns the state, the checks and the adapter's {@link ModulesToSave}.
 *
 * <p>A method implements:
 * <ul>
 *   <li>{@link #build}: validate (before touching anything), then create and wire in the branch, recording each piece
 *       as soon as it is wired so that {@link #detach()} and {@link #remove()} can undo a build that fails half-way;
 *   <li>{@link #attach()} / {@link #detach()}: wire the (already built) branch in or out, keeping its weights;
 *   <li>{@link #remove()}: delete the branch's ops and variables (called detached);
 *       branches spliced in per module and kept in a {@link #branches()} list need none of these three: the
 *       defaults handle them, and an override calls {@code super} for them;
 *   <li>{@link #parameters()}, {@link #ownStateDict()}, {@link #loadOwnStateDict}.
 * </ul>
 *
 * @param <C> the method's config type
 */
public abstract class AbstractAdapter<C extends AdapterConfig> implements Adapter {

  /** Where the adapter is in its life cycle. */
  protected enum State { NEW, ENABLED, DISABLED, MERGED, UNLOADED }

  private final String name;
  private C config;
  private SameDiff sd;
  private GraphRewriter graph;
  private ModulesToSave saved;
  private State state = State.NEW;
  private boolean training;
  private final List<Branches<?>> branchLists = new ArrayList<>();

  protected AbstractAdapter(String name, C config) {
    this.name = name;
    this.config = config;
  }

  @Override
  public final String name() {
    return name;
  }

  @Override
  public final C config() {
    return config;
  }

  /**
   * Replaces the config by one that records what training decided, so that it is saved with the adapter (AdaLoRA's
   * rank pattern, which Hugging Face PEFT writes into the adapter's config the same way).
   */
  protected final void updateConfig(C updated) {
    this.config = updated;
  }

  /** The graph this adapter was applied to. */
  protected final SameDiff sd() {
    return sd;
  }

  /** The rewriter of {@link #sd()}. */
  protected final GraphRewriter graph() {
    return graph;
  }

  protected final State state() {
    return state;
  }

  protected final void setState(State state) {
    this.state = state;
  }

  /** Whether the adapter is in training mode (dropout active); see {@link #setTraining}. */
  protected final boolean training() {
    return training;
  }

  /** The name scope of this adapter's variables for {@code method}: {@code peft/<adapter>/<method>/}. */
  protected final String scope(String method) {
    return "peft/" + name + "/" + method + "/";
  }

  @Override
  public final void apply(SameDiff sameDiff) {
    checkState(state == State.NEW, "adapter '%s' was applied already", name);
    String prefix = "peft/" + name + "/";
    for (String v : sameDiff.variableMap().keySet()) {
      checkState(!v.startsWith(prefix), "the graph already holds variables of an adapter named '%s' (%s)", name, v);
    }
    sd = sameDiff;
    graph = GraphRewriter.of(sameDiff);
    try {
      build(sameDiff, graph);
      saved = ModulesToSave.apply(sameDiff, name, config.modulesToSave());
    } catch (RuntimeException e) {
      detach();
      remove();
      sd = null;
      graph = null;
      throw e;
    }
    state = State.ENABLED;
  }

  /**
   * Validates the config against {@code sameDiff}, then creates and wires in this adapter's branch. Throws before
   * touching the graph when the config does not fit; if it fails later, {@link #detach()} and {@link #remove()}
   * undo what was recorded.
   */
  protected abstract void build(SameDiff sameDiff, GraphRewriter g);

  /**
   * A new, empty list of spliced branches that the default {@link #attach()}, {@link #detach()} and {@link #remove()}
   * wire in, wire out and delete; for a field: {@code private final Branches<Layer> layers = branches();}.
   */
  protected final <T> Branches<T> branches() {
    Branches<T> b = new Branches<>();
    branchLists.add(b);
    return b;
  }

  /** Wires the built branch back in. By default: every {@link #branches()} list's branches, in build order. */
  protected void attach() {
    branchLists.forEach(b -> b.attach(graph));
  }

  /**
   * Wires the branch out; its variables keep their values. Must tolerate a branch built only in part. By default:
   * every {@link #branches()} list's branches, in build order.
   */
  protected void detach() {
    branchLists.forEach(b -> b.detach(graph));
  }

  /**
   * Deletes every op and variable of the (detached) branch. Must tolerate a branch built only in part. By default:
   * every {@link #branches()} list's branches, which the lists then forget.
   */
  protected void remove() {
    branchLists.forEach(b -> b.remove(graph));
  }

  /** The variables this method trains, excluding {@code modules_to_save} copies. */
  protected abstract List<String> parameters();

  /** This method's tensors in Hugging Face PEFT's keys and layout, excluding {@code modules_to_save}. */
  protected abstract Map<String, INDArray> ownStateDict();

  /** Assigns {@code tensors}, already checked to have exactly the keys and shapes of {@link #stateDict()}. */
  protected abstract void loadOwnStateDict(Map<String, INDArray> tensors);

  /** Switches dropout and other training-only behaviour; {@link #training()} already holds the new value. */
  protected void trainingChanged() {}

  @Override
  public final TrainableParameterSet trainableParameters() {
    requireApplied();
    List<String> names = new ArrayList<>(parameters());
    names.addAll(saved.parameters());
    return TrainableParameterSet.of(sd, names);
  }

  @Override
  public final Map<String, INDArray> stateDict() {
    requireApplied();
    Map<String, INDArray> out = new LinkedHashMap<>(ownStateDict());
    out.putAll(saved.stateDict());
    return out;
  }

  @Override
  public final void loadStateDict(Map<String, INDArray> tensors) {
    StateDicts.requireFits(name, stateDict(), tensors);
    loadOwnStateDict(tensors);
    saved.load(tensors);
  }

  @Override
  public final boolean isEnabled() {
    return state == State.ENABLED || state == State.MERGED;
  }

  @Override
  public final void enable() {
    requireApplied();
    if (state == State.DISABLED) {
      attach();
      saved.enable();
      state = State.ENABLED;
    }
  }

  @Override
  public final void disable() {
    requireApplied();
    checkState(state != State.MERGED, "adapter '%s' is merged; unmerge it before disabling", name);
    if (state == State.ENABLED) {
      detach();
      saved.disable();
      state = State.DISABLED;
    }
  }

  @Override
  public final void setTraining(boolean training) {
    if (this.training != training) {
      this.training = training;
      if (state != State.NEW && state != State.UNLOADED) {
        trainingChanged();
      }
    }
  }

  @Override
  public void unload() {
    requireApplied();
    if (state == State.ENABLED) {
      detach();
    }
    saved.unload();
    removeBranch();
  }

  /** Removes the (detached) branch and ends the life cycle. */
  protected final void removeBranch() {
    remove();
    state = State.UNLOADED;
  }

  /** The adapter's {@code modules_to_save} copies. */
  protected final ModulesToSave modulesToSave() {
    return saved;
  }

  protected final void requireApplied() {
    checkState(state != State.NEW, "adapter '%s' has not been applied", name);
    checkState(state != State.UNLOADED, "adapter '%s' was unloaded", name);
  }

  @Override
  public String toString() {
    return getClass().getSimpleName() + "[" + name + ", " + state + ", " + config + "]";
  }
}
