package dev.peft4j.methods;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.AdapterConfig;
import dev.peft4j.model.BertConfig;
import dev.peft4j.model.LlamaConfig;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.LongBinaryOperator;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Trainable-parameter counts and a training-memory estimate for every method, in closed form from a model's shape
 * alone: nothing is built and no weight is read, so it answers "what would LoRA r=16 on q,k,v,o cost on a 7B model?"
 * on any machine.
 *
 * <pre>{@code
 * ParameterBudget b = ParameterBudget.of(ParameterBudget.Shape.llama(4096, 32, 11008, 32, 32, 32000, 4096));
 * long lora = b.lora(16, "q_proj", "k_proj", "v_proj", "o_proj");      // 16,777,216
 * ParameterBudget.Memory m = b.memory(lora, 4, 512, DataType.FLOAT);   // weights + grads + AdamW + activations
 * }</pre>
 *
 * <p>The counts are the ones peft4j's methods create on the graphs of {@code dev.peft4j.model} (a test holds them
 * equal to {@code PeftModel.trainableParameters()} on MiniLM and the tiny fixtures), per method:
 * <pre>
 *   LoRA        Σ r·(in + out)                  over the targets
 *   DoRA        Σ r·(in + out) + out            (the magnitude vector)
 *   IA³         Σ out, or in for feed-forward targets
 *   VeRA        Σ r + out                       (d and b; the shared random A, B are frozen)
 *   FourierFT   Σ n_frequency
 *   Quantum-PEFT Σ A(in) + A(out) + K,  A(n) = (L + 1)·Σ (d_i − 1) over n's prime factors d_i
 *   bottleneck  per adapter 2·H·b + b + H       (Houlsby: 2 per layer, Pfeiffer: 1; weights only: 2·H·b)
 *   prompt      n·H
 *   prefix      n · layers · 2 · kvHeads·headDim   (a key and a value per virtual token and layer)
 *   P-tuning    n·H + (H·e + e) + (e·e + e) + (e·H + H)    (HF's MLP prompt encoder of width e)
 *   BitFit      Σ out over linear layers with a bias
 *   LN tuning   2H per LayerNorm, H per RMSNorm (headDim for Qwen3's q_norm/k_norm)
 *   head only   H·labels + labels (classifier) or H·V (untied lm_head)
 *   full FT     every parameter but the embedding tables (ND4J 1.0.0-M2.1 cannot train a gather)
 * </pre>
 * Targets are module names matched as Hugging Face PEFT matches {@code target_modules} (the full name equals an
 * entry or ends with {@code "." + entry}), or {@code "all-linear"} (every linear layer but the head).
 *
 * <p>The parameter inputs are the methods' own numbers ({@code lora(16, ...)}, {@code prefix(20)}), not their
 * config classes, so the budget depends on no method's code.
 */
public final class ParameterBudget {

  /** The model families whose module layout the budget knows (those of {@code dev.peft4j.model}). */
  public enum Architecture {
    /** BERT encoders: query/key/value, attention.output.dense, intermediate.dense, output.dense; LayerNorm. */
    BERT,
    /** Llama-family decoders: q/k/v/o_proj, gate/up/down_proj (SwiGLU); RMSNorm; an lm_head unless tied. */
    LLAMA
  }

  /** How the model normalises. */
  public enum NormKind {
    /** γ and β per norm layer: 2H. */
    LAYER_NORM,
    /** γ only: H. */
    RMS_NORM
  }

  /** Where bottleneck adapters go. */
  public enum Placement {
    /** After the attention and the feed-forward output: 2 per layer. */
    HOULSBY,
    /** After the feed-forward output only: 1 per layer. */
    PFEIFFER
  }

  /**
   * The shape of a model: everything the counts need.
   *
   * @param architecture the module layout
   * @param hidden       H
   * @param layers       transformer layers
   * @param ffn          feed-forward width
   * @param heads        attention heads
   * @param kvHeads      key/value heads (grouped-query attention; = heads for BERT)
   * @param headDim      per-head width (H / heads unless the config says otherwise)
   * @param vocab        vocabulary size V
   * @param maxPositions learned position embeddings (BERT) or the context limit (Llama)
   * @param typeVocab    BERT's token-type embeddings (0 for Llama)
   * @param biases       every linear layer has a bias (BERT); for Llama the MLP's {@code mlp_bias}
   * @param qkvBias      q, k and v have biases (BERT; Qwen2; Llama's {@code attention_bias})
   * @param norm         LayerNorm or RMSNorm
   * @param qkNorm       Qwen3's per-head q_norm/k_norm
   * @param tiedHead     the LM head reuses the embedding matrix (no lm_head parameters)
   * @param labels       a classification head {@code classifier} of this many labels, or 0 for none
   * @param pooler       BERT's {@code pooler.dense} (H → H with bias), built when the checkpoint has one; all-linear
   *                     adapts it, as Hugging Face PEFT does
   */
  public record Shape(Architecture architecture, int hidden, int layers, int ffn, int heads, int kvHeads,
      int headDim, int vocab, int maxPositions, int typeVocab, boolean biases, boolean qkvBias, NormKind norm,
      boolean qkNorm, boolean tiedHead, int labels, boolean pooler) {

    /** @throws IllegalArgumentException naming the value, if a size is not positive or heads do not divide */
    public Shape {
      checkArgument(architecture != null && norm != null, "architecture and norm must be given");
      for (int v : new int[] {hidden, layers, ffn, heads, kvHeads, headDim, vocab, maxPositions}) {
        checkArgument(v > 0, "every size must be > 0: hidden %s, layers %s, ffn %s, heads %s, kvHeads %s, "
            + "headDim %s, vocab %s, maxPositions %s", hidden, layers, ffn, heads, kvHeads, headDim, vocab,
            maxPositions);
      }
      checkArgument(heads % kvHeads == 0, "heads (%s) must be a multiple of kvHeads (%s)", heads, kvHeads);
      checkArgument(typeVocab >= 0 && labels >= 0, "typeVocab (%s) and labels (%s) must be >= 0", typeVocab, labels);
      checkArgument(!pooler || architecture == Architecture.BERT, "only BERT has a pooler");
    }

    /** A BERT encoder without a head, as {@code Bert.encoder} builds it. */
    public static Shape of(BertConfig c) {
      return new Shape(Architecture.BERT, c.hiddenSize(), c.numLayers(), c.intermediateSize(), c.numHeads(),
          c.numHeads(), c.hiddenSize() / c.numHeads(), c.vocabSize(), c.maxPositions(), c.typeVocabSize(), true, true,
          NormKind.LAYER_NORM, false, false, 0, false);
    }

    /** A Llama-family decoder, as {@code Llama.causalLm} builds it. */
    public static Shape of(LlamaConfig c) {
      return new Shape(Architecture.LLAMA, c.hiddenSize(), c.numLayers(), c.intermediateSize(), c.numHeads(),
          c.numKvHeads(), c.headDim(), c.vocabSize(), c.maxPositions(), 0, c.mlpBias(), c.qkvBias(),
          NormKind.RMS_NORM, c.qkNorm(), c.tieWordEmbeddings(), 0, false);
    }

    /** A Llama decoder by hand: no biases, RMSNorm, an untied lm_head, headDim = hidden / heads. */
    public static Shape llama(int hidden, int layers, int ffn, int heads, int kvHeads, int vocab, int maxPositions) {
      checkArgument(heads > 0 && hidden % heads == 0, "hidden (%s) must be a multiple of heads (%s)", hidden, heads);
      return new Shape(Architecture.LLAMA, hidden, layers, ffn, heads, kvHeads, hidden / heads, vocab, maxPositions,
          0, false, false, NormKind.RMS_NORM, false, false, 0, false);
    }

    /** A BERT encoder by hand: biases everywhere, LayerNorm, 2 token types, no head. */
    public static Shape bert(int hidden, int layers, int ffn, int heads, int vocab, int maxPositions) {
      checkArgument(heads > 0 && hidden % heads == 0, "hidden (%s) must be a multiple of heads (%s)", hidden, heads);
      return new Shape(Architecture.BERT, hidden, layers, ffn, heads, heads, hidden / heads, vocab, maxPositions, 2,
          true, true, NormKind.LAYER_NORM, false, false, 0, false);
    }

    /** This shape with a {@code classifier} head of {@code labels} labels (as {@code Heads.sequenceClassification}). */
    public Shape withClassifier(int labels) {
      checkArgument(labels >= 2, "a classifier needs at least 2 labels, got %s", labels);
      return new Shape(architecture, hidden, layers, ffn, heads, kvHeads, headDim, vocab, maxPositions, typeVocab,
          biases, qkvBias, norm, qkNorm, tiedHead, labels, pooler);
    }

    /**
     * This BERT shape with its {@code pooler.dense}, as {@code Bert.encoder} builds it for a checkpoint that has one
     * ({@code Shape.of(BertConfig)} cannot know: the config does not say).
     */
    public Shape withPooler() {
      return new Shape(architecture, hidden, layers, ffn, heads, kvHeads, headDim, vocab, maxPositions, typeVocab,
          biases, qkvBias, norm, qkNorm, tiedHead, labels, true);
    }
  }


  /**
   * A training-memory estimate in bytes.
   *
   * @param weightBytes     every weight of the base model, frozen or not (peft4j keeps the originals)
   * @param trainableBytes  the trainable tensors (adapter weights, or the trained copies of selected weights)
   * @param gradientBytes   one gradient per trainable scalar
   * @param optimizerBytes  AdamW's two moments per trainable scalar
   * @param activationBytes activations kept for the backward pass at the given batch × sequence
   */
  public record Memory(long weightBytes, long trainableBytes, long gradientBytes, long optimizerBytes,
      long activationBytes) {

    public long totalBytes() {
      return weightBytes + trainableBytes + gradientBytes + optimizerBytes + activationBytes;
    }

    @Override
    public String toString() {
      return String.format(Locale.ROOT, "weights %s + trainable %s + gradients %s + AdamW %s + activations %s = %s",
          mib(weightBytes), mib(trainableBytes), mib(gradientBytes), mib(optimizerBytes), mib(activationBytes),
          mib(totalBytes()));
    }

    private static String mib(long bytes) {
      return String.format(Locale.ROOT, "%.1f MiB", bytes / (1024.0 * 1024.0));
    }
  }

  private final Shape shape;
  private final LinearLayers linears;

  private ParameterBudget(Shape shape) {
    this.shape = shape;
    this.linears = new LinearLayers(shape);
  }

  /** The budget of a model of shape {@code shape}. */
  public static ParameterBudget of(Shape shape) {
    checkArgument(shape != null, "shape must not be null");
    return new ParameterBudget(shape);
  }

  public Shape shape() {
    return shape;
  }

  // ------------------------------------------------------------------------------------------------ the base model

  /** Every parameter of the model: embeddings, linear layers, norms and head. */
  public long totalParameters() {
    return embeddingParameters() + positionParameters() + linears.parameters() + normParameters();
  }

  /** The embedding tables an embedding lookup reads (word and token-type tables; Llama's embed_tokens). */
  private long embeddingParameters() {
    return (long) shape.vocab() * shape.hidden() + (long) shape.typeVocab() * shape.hidden();
  }

  /** BERT's learned position embeddings (sliced, not gathered: they train with full fine-tuning). */
  private long positionParameters() {
    return shape.architecture() == Architecture.BERT ? (long) shape.maxPositions() * shape.hidden() : 0;
  }

  private long normParameters() {
    long h = shape.hidden();
    if (shape.norm() == NormKind.LAYER_NORM) {
      return 2 * h * (1 + 2L * shape.layers()); // BERT: embeddings + 2 per layer
    }
    long perLayer = 2 * h + (shape.qkNorm() ? 2L * shape.headDim() : 0);
    return perLayer * shape.layers() + h; // + the final norm
  }

  // ------------------------------------------------------------------------------------------------ methods

  /**
   * The closed-form trainable count of {@code config} on this shape: its method's formula (registered in
   * {@link PeftMethods}) plus its modules to save.
   *
   * @throws IllegalArgumentException if the closed form cannot express the config (regex targets, a custom placement,
   *     a module to save other than the head), naming what it cannot
   */
  public long count(AdapterConfig config) {
    return PeftMethods.of(config).count(this, config) + modulesToSave(config.modulesToSave());
  }

  /**
   * Modules trained in full beside an adapter: the head ({@code classifier} or the untied {@code lm_head}) is the
   * one module the budget knows.
   *
   * @throws IllegalArgumentException naming a module that is not this shape's head
   */
  public long modulesToSave(List<String> modules) {
    if (modules.isEmpty()) {
      return 0;
    }
    String head = linears.head();
    checkArgument(head != null && modules.stream().allMatch(m -> LinearLayers.matches(head, m)),
        "the budget knows the head (%s) as a module to save, not %s", head, modules);
    return headOnly();
  }

  /** LoRA of rank {@code r}: Σ r·(in + out) over the targets. */
  public long lora(int r, String... targets) {
    checkArgument(r > 0, "r must be > 0, got %s", r);
    return linears.select(targets).stream().mapToLong(l -> r * (l.in() + l.out())).sum();
  }

  /** DoRA of rank {@code r}: LoRA plus a magnitude vector of {@code out} per target. */
  public long dora(int r, String... targets) {
    return lora(r, targets) + linears.select(targets).stream().mapToLong(LinearLayers.Linear::out).sum();
  }

  /** AdaLoRA of initial rank {@code r}: P, Λ and Q, r·(in + out + 1) per target (before any pruning). */
  public long adaLora(int r, String... targets) {
    return lora(r, targets) + (long) r * linears.select(targets).size();
  }

  /** IA³: a vector of {@code out} per target, of {@code in} for the targets among {@code feedforward}. */
  public long ia3(List<String> targets, List<String> feedforward) {
    Set<String> ff = new LinkedHashSet<>();
    if (!feedforward.isEmpty()) {
      linears.select(feedforward.toArray(String[]::new)).forEach(l -> ff.add(l.name()));
    }
    return linears.select(targets.toArray(String[]::new)).stream()
        .mapToLong(l -> ff.contains(l.name()) ? l.in() : l.out()).sum();
  }

  /** VeRA of rank {@code r}: the vectors d ({@code r}) and b ({@code out}) per target; A and B are frozen. */
  public long vera(int r, String... targets) {
    checkArgument(r > 0, "r must be > 0, got %s", r);
    return linears.select(targets).stream().mapToLong(l -> r + l.out()).sum();
  }

  /** FourierFT: {@code nFrequency} spectral coefficients per target. */
  public long fourierFt(int nFrequency, String... targets) {
    checkArgument(nFrequency > 0, "n_frequency must be > 0, got %s", nFrequency);
    return (long) nFrequency * linears.select(targets).size();
  }

  /**
   * Σ {@code count(in, out)} over the linear layers {@code targets} select: the closed form of a method whose count
   * per target is its own (Quantum-PEFT's circuits; see {@link PeftMethods}).
   */
  long perTarget(LongBinaryOperator count, String... targets) {
    return linears.select(targets).stream().mapToLong(l -> count.applyAsLong(l.in(), l.out())).sum();
  }

  /** Bottleneck adapters of width {@code size} with biases: (2·H·b + b + H) per adapter. */
  public long bottleneck(int size, Placement placement) {
    long h = shape.hidden();
    return adapters(size, placement) * (2 * h * size + size + h);
  }

  /** Bottleneck adapters' weight matrices only, 2·H·b per adapter (the figure papers usually quote). */
  public long bottleneckWeightsOnly(int size, Placement placement) {
    return adapters(size, placement) * 2L * shape.hidden() * size;
  }

  private long adapters(int size, Placement placement) {
    checkArgument(size > 0, "size must be > 0, got %s", size);
    checkArgument(placement != null, "placement must be given");
    return (placement == Placement.HOULSBY ? 2L : 1L) * shape.layers();
  }

  /** Prompt tuning: {@code tokens} virtual token embeddings of H. */
  public long prompt(int tokens) {
    checkArgument(tokens > 0, "tokens must be > 0, got %s", tokens);
    return (long) tokens * shape.hidden();
  }

  /** Prefix tuning: a key and a value of kvHeads·headDim per virtual token and layer. */
  public long prefix(int tokens) {
    checkArgument(tokens > 0, "tokens must be > 0, got %s", tokens);
    return (long) tokens * shape.layers() * 2 * shape.kvHeads() * shape.headDim();
  }

  /** P-tuning: the virtual token embeddings and HF's MLP encoder H → e → e → H, with biases. */
  public long pTuning(int tokens, int encoderHidden) {
    checkArgument(encoderHidden > 0, "encoder hidden size must be > 0, got %s", encoderHidden);
    long h = shape.hidden();
    long e = encoderHidden;
    return prompt(tokens) + (h * e + e) + (e * e + e) + (e * h + h);
  }

  /** BitFit on every linear layer: Σ out over those with a bias. */
  public long bitFit() {
    return linears.all().stream().filter(LinearLayers.Linear::bias)
        .mapToLong(LinearLayers.Linear::out).sum();
  }

  /** BitFit on the targets: Σ out over those with a bias. */
  public long bitFit(String... targets) {
    return linears.select(targets).stream().filter(LinearLayers.Linear::bias)
        .mapToLong(LinearLayers.Linear::out).sum();
  }

  /** LN tuning on every norm layer: 2H per LayerNorm, H per RMSNorm (headDim for q_norm/k_norm). */
  public long lnTuning() {
    return normParameters();
  }

  /**
   * Linear probing: the classifier's H·labels + labels, or the untied lm_head's H·V.
   *
   * @throws IllegalStateException if the shape has no head (an encoder without classifier, a tied lm_head)
   */
  public long headOnly() {
    if (linears.head() == null) {
      throw new IllegalStateException("this shape has no trainable head: add a classifier with withClassifier(n), "
          + "or untie the lm_head");
    }
    return linears.all().get(linears.all().size() - 1).parameters();
  }

  /** Full fine-tuning: every parameter but the embedding tables (word and token-type; Llama's embed_tokens). */
  public long fullFineTuning() {
    return totalParameters() - embeddingParameters();
  }

  // ------------------------------------------------------------------------------------------------ memory

  /**
   * Training memory for {@code trainable} trainable scalars at {@code batch × seq} tokens, with {@code dataType}'s
   * bytes per element for weights, gradients, AdamW's two moments and activations.
   *
   * <p>Activations are an estimate of what the backward pass keeps per token and layer, without recomputation:
   * BERT {@code 10·H + 2·ffn + 2·heads·seq} (inputs of q/k/v, q, k, v, context, attention output, two LayerNorms'
   * inputs and outputs, the feed-forward's pre- and post-activation, attention scores and probabilities), Llama
   * {@code 10·H + 4·ffn + 2·heads·seq} (gate, up, their product, the activation), plus {@code 2·V} per token for the
   * logits and their softmax of a language-model head. Frozen weights are kept once, trainable tensors in addition.
   *
   * @throws IllegalArgumentException if a count is negative or a size not positive, or {@code seq} exceeds
   *     the shape's {@code maxPositions}
   */
  public Memory memory(long trainable, int batch, int seq, DataType dataType) {
    checkArgument(trainable >= 0, "trainable must be >= 0, got %s", trainable);
    checkArgument(batch > 0 && seq > 0, "batch (%s) and seq (%s) must be > 0", batch, seq);
    checkArgument(seq <= shape.maxPositions(), "seq %s exceeds the model's %s positions", seq, shape.maxPositions());
    checkArgument(dataType != null && dataType.isFPType(), "a floating-point data type is needed, got %s", dataType);
    long bytes = dataType.width();
    long h = shape.hidden();
    long perTokenPerLayer = 10 * h + (shape.architecture() == Architecture.BERT ? 2L : 4L) * shape.ffn()
        + 2L * shape.heads() * seq;
    long logits = shape.architecture() == Architecture.LLAMA && shape.labels() == 0 ? 2L * shape.vocab() : 0;
    long tokens = (long) batch * seq;
    long activations = tokens * (perTokenPerLayer * shape.layers() + logits);
    return new Memory(totalParameters() * bytes, trainable * bytes, trainable * bytes, 2 * trainable * bytes,
        activations * bytes);
  }
}
