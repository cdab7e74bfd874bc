package dev.peft4j.generate;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.Adapter;
import dev.peft4j.MergeableAdapter;
import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphCopies;
import dev.peft4j.model.Hooks;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.ObjIntConsumer;
import java.util.function.Supplier;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Text generation with a Llama-family decoder ({@code Llama.causalLm}) and whatever adapters are active on it: LoRA
 * and the other weight-side methods, a merged or unloaded model, prompt tuning and prefix tuning (whose virtual tokens
 * occupy the first cache positions, as in transformers), or a different adapter per row.
 * <pre>
 *   prompts (any lengths) → left-padded [b, s] with pad_token_id, attention_mask 0 on the pads
 *   prefill: the whole prompt once → the first token and the KV cache (see {@code DecoderGraphs})
 *   decode:  one position per step, reading and growing the cache, until every row has emitted an EOS id or
 *            max_new_tokens tokens; rows that finished early are fed pad_token_id, as transformers does
 *   positions follow the attention mask per row (cumsum − 1), as transformers' generate computes them
 * </pre>
 * Greedy decoding gives transformers' {@code model.generate(do_sample=False)} tokens (checked on tiny Llama, Qwen2
 * and Qwen3 checkpoints, with and without a LoRA adapter saved by PEFT, batched with left padding). Sampling is
 * reproducible from {@link GenerationConfig#seed()} but draws from Java's {@code SplittableRandom}, not torch's
 * generator, so its tokens are not transformers' for the same seed.
 * <pre>{@code
 * PeftModel model = Peft.load(HfModels.loadDecoder(checkpoint), adapterDir);
 * List<long[]> out = Generator.of(model).generate(List.of(promptIds),
 *     GenerationConfig.fromCheckpoint(checkpoint, 32));          // out.get(0): the new tokens only
 * }</pre>
 * The prefill and decode graphs are copies of the model's graph (adapters included, weights shared, not copied),
 * built on the first call and kept while the graph's ops, its trainable variables, the adapters' enabled and merged
 * states and the training mode stay as they were; a change to any of them rebuilds them on the next call, so a
 * generator follows the model's later changes. Reuse one generator: building costs about a forward pass of the
 * prompt and more (13 s for Qwen3-0.6B on 2 cores).
 */
public final class Generator {

  private final PeftModel model;    // null for a bare graph
  private final SameDiff graph;
  private final boolean cached;
  /** The graphs of the last call and what they were built from (guarded by this). */
  private DecoderGraphs built;
  private BuiltFrom builtFrom;

  /** What the decode graphs depend on besides weight values: rebuilt when it changes. */
  private record BuiltFrom(GraphCopies.Structure structure, List<String> adapterStates, boolean training) {
    static BuiltFrom of(SameDiff sd, PeftModel model) {
      List<String> states = new ArrayList<>();
      if (model != null) {
        for (String name : model.adapterNames()) {
          Adapter a = model.adapter(name);
          states.add(name + (a.isEnabled() ? ":enabled" : ":disabled")
              + (a instanceof MergeableAdapter m && m.isMerged() ? ":merged" : ""));
        }
      }
      return new BuiltFrom(GraphCopies.Structure.of(sd, null), states, model != null && model.isTraining());
    }
  }

  private Generator(PeftModel model, SameDiff graph, boolean cached) {
    this.model = model;
    this.graph = graph;
    this.cached = cached;
  }

  /** Generates with {@code model} and its active adapters. */
  public static Generator of(PeftModel model) {
    return new Generator(Objects.requireNonNull(model, "model"), model.sameDiff(), true);
  }

  /**
   * Generates with a decoder graph without a {@link PeftModel} (a base model, or the result of
   * {@code mergeAndUnload}).
   *
   * @throws IllegalArgumentException if it is not a Llama-family decoder, or carries a prompt-learning adapter
   *     (generate through its {@code PeftModel}, which knows its virtual tokens and takes prompt tuning out for the
   *     decode steps)
   */
  public static Generator of(SameDiff decoder) {
    DecoderGraphs.requireDecoder(decoder);
    checkArgument(promptLearningAdapter(decoder) == null, "this graph carries prompt-learning adapter '%s': generate "
        + "through its PeftModel (Generator.of(peftModel))", promptLearningAdapter(decoder));
    return new Generator(null, decoder, true);
  }

  /**
   * The same generator without the KV cache: every step runs the whole sequence again (for comparison and
   * measurement; the tokens are the same).
   */
  public Generator withoutCache() {
    return new Generator(model, graph, false);
  }

  /**
   * The new tokens of each prompt (at most {@code maxNewTokens}, ending with the EOS id when one was generated).
   *
   * @throws IllegalArgumentException before any work, if there is no prompt, a prompt is empty, a token id is not in
   *     the vocabulary, or the longest prompt (with the virtual tokens of prompt learning) plus {@code maxNewTokens}
   *     exceeds the model's positions
   */
  public List<long[]> generate(List<long[]> prompts, GenerationConfig config) {
    return generate(prompts, config, null);
  }

  /**
   * As {@link #generate(List, GenerationConfig)} with row i generated by adapter {@code adapterPerRow.get(i)} (or the
   * base model where it is {@code null}), as {@link PeftModel#outputMixed} runs a mixed batch over methods other than
   * plain LoRA: rows are grouped by adapter, each group generates on its own, and the active adapters are as before afterwards. Sampling draws each
   * group from the seed.
   *
   * @throws IllegalArgumentException as {@link #generate(List, GenerationConfig)}, or if the list's size differs from
   *     the prompts' or names an unknown adapter
   * @throws IllegalStateException for a bare graph (no adapters to choose from), or if an adapter is merged
   */
  public List<long[]> generate(List<long[]> prompts, List<String> adapterPerRow, GenerationConfig config) {
    checkState(model != null, "per-row adapters need a PeftModel (Generator.of(peftModel))");
    checkArgument(adapterPerRow.size() == prompts.size(), "%s adapter names for %s prompts", adapterPerRow.size(),
        prompts.size());
    for (String name : adapterPerRow) {
      if (name != null) {
        model.adapter(name);
      }
    }
    check(prompts, config, 0);
    // every group's graphs built and its prompts checked before any group generates
    Map<String, List<Integer>> rowsOf = new LinkedHashMap<>();
    for (int i = 0; i < prompts.size(); i++) {
      rowsOf.computeIfAbsent(adapterPerRow.get(i), k -> new ArrayList<>()).add(i);
    }
    Map<String, DecoderGraphs> graphsOf = new HashMap<>();
    PeftModel.AdapterScope reading;
    try (var only = model.exclusive()) {
      for (Adapter a : model.adapterNames().stream().map(model::adapter).toList()) {
        checkState(!(a instanceof MergeableAdapter m && m.isMerged()), "adapter '%s' is merged into the base weights; "
            + "unmerge it for per-row adapters", a.name());
      }
      List<Adapter> wasActive = activeAdapters();
      try {
        for (Map.Entry<String, List<Integer>> group : rowsOf.entrySet()) {
          disableAll(activeAdapters());
          if (group.getKey() != null) {
            model.adapter(group.getKey()).enable();
          }
          check(group.getValue().stream().map(prompts::get).toList(), config, virtualTokens());
          graphsOf.put(group.getKey(), build());
        }
      } finally {
        disableAll(activeAdapters());
        wasActive.forEach(Adapter::enable);
      }
      reading = model.shared();
    }
    long[][] out = new long[prompts.size()][];
    try (reading) {
      for (Map.Entry<String, List<Integer>> group : rowsOf.entrySet()) {
        List<Integer> rows = group.getValue();
        List<long[]> part = new Decoding(graphsOf.get(group.getKey()), cached, config)
            .run(rows.stream().map(prompts::get).toList(), null);
        for (int j = 0; j < rows.size(); j++) {
          out[rows.get(j)] = part.get(j);
        }
      }
    }
    return List.of(out);
  }

  /**
   * The checks {@link #generate(List, GenerationConfig)} makes before any work, without generating: for a caller that
   * generates a long list batch by batch and wants a bad prompt refused before the first batch is written.
   *
   * @throws IllegalArgumentException as {@link #generate(List, GenerationConfig)}
   */
  public void check(List<long[]> prompts, GenerationConfig config) {
    if (model == null) {
      check(prompts, config, 0);
    } else {
      try (var only = model.exclusive()) {
        check(prompts, config, virtualTokens());
      }
    }
  }

  /** As {@link #generate(List, GenerationConfig)}, handing each step's last-position logits [b, V] to a listener. */
  List<long[]> generate(List<long[]> prompts, GenerationConfig config, ObjIntConsumer<INDArray> stepLogits) {
    if (model == null) {
      check(prompts, config, 0);
      return new Decoding(graphs(() -> DecoderGraphs.of(graph)), cached, config).run(prompts, stepLogits);
    }
    DecoderGraphs graphs;
    PeftModel.AdapterScope reading;
    try (var only = model.exclusive()) {
      check(prompts, config, virtualTokens());
      graphs = graphs(this::build);
      reading = model.shared(); // the copies share the model's weights: no merge or load while they run
    }
    try (reading) {
      return new Decoding(graphs, cached, config).run(prompts, stepLogits);
    }
  }

  /** The graphs built before if the model is as it was then (weights re-shared), else newly built ones. */
  private synchronized DecoderGraphs graphs(Supplier<DecoderGraphs> build) {
    BuiltFrom now = BuiltFrom.of(graph, model);
    if (built == null || !now.equals(builtFrom)) {
      built = null; // the old copies can go before the new ones are made
      built = build.get();
      builtFrom = now;
      // copying a graph duplicates its variables' arrays before they are pointed at the originals: collect them
      System.gc();
    } else {
      GraphCopies.shareArrays(graph, built.prefill); // a weight array replaced since (a load) is shared again
      GraphCopies.shareArrays(graph, built.decode);
    }
    return built;
  }

  /** Last enabled first, the reverse of the order their branches were spliced in. */
  private static void disableAll(List<Adapter> enabled) {
    for (int i = enabled.size() - 1; i >= 0; i--) {
      enabled.get(i).disable();
    }
  }

  private List<Adapter> activeAdapters() {
    return model.adapterNames().stream().map(model::adapter).filter(Adapter::isEnabled).toList();
  }

  /**
   * The graphs, the decode graph copied while a prompt-tuning or P-tuning adapter (if any) is taken out; prefix tuning
   * stays in both (see {@code DecoderGraphs}).
   */
  private DecoderGraphs build() {
    if (!model.isTraining()) {
      return buildCopies();
    }
    model.eval(); // generation copies the graph without dropout, whatever mode the model is training in
    try {
      return buildCopies();
    } finally {
      model.train();
    }
  }

  private DecoderGraphs buildCopies() {
    SameDiff sd = model.sameDiff();
    String prompt = promptLearningAdapter(sd);
    // prompt tuning and P-tuning prepend virtual tokens (they compute seq_len); prefix tuning adds keys only
    boolean prepends = prompt != null && sd.getVariableOutputOp(Hooks.SEQ_LEN).getOwnName().startsWith("peft/");
    if (!prepends) {
      return DecoderGraphs.of(sd);
    }
    SameDiff prefill = GraphCopies.copy(sd);
    Adapter a = model.adapter(prompt);
    a.disable();
    try {
      return DecoderGraphs.ofCopies(prefill, GraphCopies.copy(sd), true);
    } finally {
      a.enable();
    }
  }

  /** The virtual tokens of the active prompt-learning adapter ({@code num_virtual_tokens}), 0 without one. */
  private int virtualTokens() {
    String prompt = promptLearningAdapter(model.sameDiff());
    if (prompt == null) {
      return 0;
    }
    Object n = model.adapter(prompt).config().toHfConfig().get("num_virtual_tokens");
    checkState(n instanceof Number, "prompt-learning adapter '%s' has no num_virtual_tokens", prompt);
    return ((Number) n).intValue();
  }

  /** The adapter whose branch computes the key mask (prompt tuning, P-tuning, prefix tuning), or null. */
  static String promptLearningAdapter(SameDiff sd) {
    String producer = sd.getVariableOutputOp(Hooks.KEY_MASK).getOwnName();
    if (!producer.startsWith("peft/")) {
      return null;
    }
    return producer.substring("peft/".length(), producer.indexOf('/', "peft/".length()));
  }

  private void check(List<long[]> prompts, GenerationConfig config, int virtual) {
    checkArgument(config != null, "a GenerationConfig is needed");
    checkArgument(prompts != null && !prompts.isEmpty(), "no prompt to generate from");
    Hooks.Dims dims = DecoderGraphs.requireDecoder(graph);
    long vocab = vocabulary();
    int longest = 0;
    for (int i = 0; i < prompts.size(); i++) {
      long[] p = prompts.get(i);
      checkArgument(p != null && p.length > 0, "prompt %s is empty", i);
      for (int j = 0; j < p.length; j++) {
        checkArgument(p[j] >= 0 && p[j] < vocab, "prompt %s: token %s is id %s, outside the vocabulary of %s ids",
            i, j, p[j], vocab);
      }
      longest = Math.max(longest, p.length);
    }
    checkArgument(config.padTokenId() >= 0 && config.padTokenId() < vocab,
        "pad_token_id %s is outside the vocabulary of %s ids", config.padTokenId(), vocab);
    long needed = (long) longest + virtual + config.maxNewTokens();
    checkArgument(needed <= dims.maxPositions(), "the longest prompt (%s tokens%s) + max_new_tokens %s = %s positions "
        + "exceed the model's %s positions (max_position_embeddings)", longest,
        virtual == 0 ? "" : " + " + virtual + " virtual tokens", config.maxNewTokens(), needed, dims.maxPositions());
  }

  private long vocabulary() {
    String table = "model.embed_tokens.weight";
    checkArgument(graph.hasVariable(table) && graph.getArrForVarName(table) != null,
        "generation needs the word-embedding table '%s'", table);
    return graph.getArrForVarName(table).size(0);
  }
}
