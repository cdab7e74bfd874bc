package dev.peft4j;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.model.BertConfig;
import dev.peft4j.model.LlamaConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
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
   */
  public record Shape(Architecture architecture, int hidden, int layers, int ffn, int heads, int kvHeads,
      int headDim, int vocab, int maxPositions, int typeVocab, boolean biases, boolean qkvBias, NormKind norm,
      boolean qkNorm, boolean tiedHead, int labels) {

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
    }

    /** A BERT encoder without a head, as {@code Bert.encoder} builds it. */
    public static Shape of(BertConfig c) {
      return new Shape(Architecture.BERT, c.hiddenSize(), c.numLayers(), c.intermediateSize(), c.numHeads(),
          c.numHeads(), c.hiddenSize() / c.numHeads(), c.vocabSize(), c.maxPositions(), c.typeVocabSize(), true, true,
          NormKind.LAYER_NORM, false, false, 0);
    }

    /** A Llama-family decoder, as {@code Llama.causalLm} builds it. */
    public static Shape of(LlamaConfig c) {
      return new Shape(Architecture.LLAMA, c.hiddenSize(), c.numLayers(), c.intermediateSize(), c.numHeads(),
          c.numKvHeads(), c.headDim(), c.vocabSize(), c.maxPositions(), 0, c.mlpBias(), c.qkvBias(),
          NormKind.RMS_NORM, c.qkNorm(), c.tieWordEmbeddings(), 0);
    }

    /** A Llama decoder by hand: no biases, RMSNorm, an untied lm_head, headDim = hidden / heads. */
    public static Shape llama(int hidden, int layers, int ffn, int heads, int kvHeads, int vocab, int maxPositions) {
      checkArgument(heads > 0 && hidden % heads == 0, "hidden (%s) must be a multiple of heads (%s)", hidden, heads);
      return new Shape(Architecture.LLAMA, hidden, layers, ffn, heads, kvHeads, hidden / heads, vocab, maxPositions,
          0, false, false, NormKind.RMS_NORM, false, false, 0);
    }

    /** A BERT encoder by hand: biases everywhere, LayerNorm, 2 token types, no head. */
    public static Shape bert(int hidden, int layers, int ffn, int heads, int vocab, int maxPositions) {
      checkArgument(heads > 0 && hidden % heads == 0, "hidden (%s) must be a multiple of heads (%s)", hidden, heads);
      return new Shape(Architecture.BERT, hidden, layers, ffn, heads, heads, hidden / heads, vocab, maxPositions, 2,
          true, true, NormKind.LAYER_NORM, false, false, 0);
    }

    /** This shape with a {@code classifier} head of {@code labels} labels (as {@code Heads.sequenceClassification}). */
    public Shape withClassifier(int labels) {
      checkArgument(labels >= 2, "a classifier needs at least 2 labels, got %s", labels);
      return new Shape(architecture, hidden, layers, ffn, heads, kvHeads, headDim, vocab, maxPositions, typeVocab,
          biases, qkvBias, norm, qkNorm, tiedHead, labels);
    }
  }

  /** One linear layer of the model. */
  private record Linear(String name, long in, long out, boolean bias) {
    long parameters() {
      return in * out + (bias ? out : 0);
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

  private static final Pattern LAYER = Pattern.compile("\\.(?:layer|layers)\\.(\\d+)\\.");

  private final Shape shape;
  private final List<Linear> linears;  // every linear layer, head last
  private final String head;           // the head module, or null

  private ParameterBudget(Shape shape) {
    this.shape = shape;
    this.linears = new ArrayList<>();
    long h = shape.hidden();
    long q = (long) shape.heads() * shape.headDim();
    long kv = (long) shape.kvHeads() * shape.headDim();
    for (int i = 0; i < shape.layers(); i++) {
      if (shape.architecture() == Architecture.BERT) {
        String p = "encoder.layer." + i + ".";
        linears.add(new Linear(p + "attention.self.query", h, h, shape.qkvBias()));
        linears.add(new Linear(p + "attention.self.key", h, h, shape.qkvBias()));
        linears.add(new Linear(p + "attention.self.value", h, h, shape.qkvBias()));
        linears.add(new Linear(p + "attention.output.dense", h, h, shape.biases()));
        linears.add(new Linear(p + "intermediate.dense", h, shape.ffn(), shape.biases()));
        linears.add(new Linear(p + "output.dense", shape.ffn(), h, shape.biases()));
      } else {
        String p = "model.layers." + i + ".";
        linears.add(new Linear(p + "self_attn.q_proj", h, q, shape.qkvBias()));
        linears.add(new Linear(p + "self_attn.k_proj", h, kv, shape.qkvBias()));
        linears.add(new Linear(p + "self_attn.v_proj", h, kv, shape.qkvBias()));
        linears.add(new Linear(p + "self_attn.o_proj", q, h, false));
        linears.add(new Linear(p + "mlp.gate_proj", h, shape.ffn(), shape.biases()));
        linears.add(new Linear(p + "mlp.up_proj", h, shape.ffn(), shape.biases()));
        linears.add(new Linear(p + "mlp.down_proj", shape.ffn(), h, shape.biases()));
      }
    }
    if (shape.labels() > 0) {
      head = "classifier";
      linears.add(new Linear(head, h, shape.labels(), true));
    } else if (shape.architecture() == Architecture.LLAMA && !shape.tiedHead()) {
      head = "lm_head";
      linears.add(new Linear(head, h, shape.vocab(), false));
    } else {
      head = null;
    }
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
    return embeddingParameters() + positionParameters() + linears.stream().mapToLong(Linear::parameters).sum() + normParameters();
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

  /** LoRA of rank {@code r}: Σ r·(in + out) over the targets. */
  public long lora(int r, String... targets) {
    checkArgument(r > 0, "r must be > 0, got %s", r);
    return select(targets).stream().mapToLong(l -> r * (l.in() + l.out())).sum();
  }

  /** DoRA of rank {@code r}: LoRA plus a magnitude vector of {@code out} per target. */
  public long dora(int r, String... targets) {
    return lora(r, targets) + select(targets).stream().mapToLong(Linear::out).sum();
  }

  /** AdaLoRA of initial rank {@code r}: P, Λ and Q, r·(in + out + 1) per target (before any pruning). */
  public long adaLora(int r, String... targets) {
    return lora(r, targets) + (long) r * select(targets).size();
  }

  /** IA³: a vector of {@code out} per target, of {@code in} for the targets among {@code feedforward}. */
  public long ia3(List<String> targets, List<String> feedforward) {
    Set<String> ff = new LinkedHashSet<>();
    if (!feedforward.isEmpty()) {
      select(feedforward.toArray(String[]::new)).forEach(l -> ff.add(l.name()));
    }
    return select(targets.toArray(String[]::new)).stream().mapToLong(l -> ff.contains(l.name()) ? l.in() : l.out())
        .sum();
  }

  /** VeRA of rank {@code r}: the vectors d ({@code r}) and b ({@code out}) per target; A and B are frozen. */
  public long vera(int r, String... targets) {
    checkArgument(r > 0, "r must be > 0, got %s", r);
    return select(targets).stream().mapToLong(l -> r + l.out()).sum();
  }

  /** FourierFT: {@code nFrequency} spectral coefficients per target. */
  public long fourierFt(int nFrequency, String... targets) {
    checkArgument(nFrequency > 0, "n_frequency must be > 0, got %s", nFrequency);
    return (long) nFrequency * select(targets).size();
  }

  /**
   * Quantum-PEFT of rank {@code k} with {@code circuitLayers} entangling layers: per target A(in) + A(out) + k, where
   * A(n) = (L + 1)·Σ (d_i − 1) over the prime factors d_i of n (the angles of one circuit; see
   * {@code dev.peft4j.quantum}).
   *
   * @throws IllegalArgumentException naming the value: k ≤ 0 or above a target's min(in, out), L &lt; 1, a width with
   *     a prime factor above 64
   */
  public long quantumPeft(int k, int circuitLayers, String... targets) {
    checkArgument(k > 0, "k must be > 0, got %s", k);
    checkArgument(circuitLayers >= 1, "circuit layers must be >= 1, got %s", circuitLayers);
    long total = 0;
    for (Linear l : select(targets)) {
      checkArgument(k <= Math.min(l.in(), l.out()), "k = %s exceeds min(in, out) = %s of %s", k,
          Math.min(l.in(), l.out()), l.name());
      total += circuitAngles(l.in(), circuitLayers) + circuitAngles(l.out(), circuitLayers) + k;
    }
    return total;
  }

  /** (L + 1)·Σ (d_i − 1) over the prime factors of {@code width}, each at most 64. */
  private static long circuitAngles(long width, int layers) {
    long sum = 0;
    long rest = width;
    long largest = 1;
    for (long p = 2; p * p <= rest; p++) {
      while (rest % p == 0) {
        sum += p - 1;
        largest = p;
        rest /= p;
      }
    }
    if (rest > 1) {
      sum += rest - 1;
      largest = rest;
    }
    checkArgument(width >= 2 && largest <= 64, "width %s has the prime factor %s; Quantum-PEFT takes widths >= 2 "
        + "whose prime factors are all <= 64", width, largest);
    return (layers + 1) * sum;
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
    return linears.stream().filter(Linear::bias).mapToLong(Linear::out).sum();
  }

  /** BitFit on the targets: Σ out over those with a bias. */
  public long bitFit(String... targets) {
    return select(targets).stream().filter(Linear::bias).mapToLong(Linear::out).sum();
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
    if (head == null) {
      throw new IllegalStateException("this shape has no trainable head: add a classifier with withClassifier(n), "
          + "or untie the lm_head");
    }
    return linears.get(linears.size() - 1).parameters();
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

  // ------------------------------------------------------------------------------------------------ targets

  /**
   * The linear layers {@code targets} select, HF's way; {@code "all-linear"} is every one but the head.
   *
   * @throws IllegalArgumentException naming the entries that match nothing and listing layer 0's modules
   */
  private List<Linear> select(String... targets) {
    checkArgument(targets != null && targets.length > 0, "at least one target module is needed");
    if (targets.length == 1 && targets[0].equals(Targets.ALL_LINEAR)) {
      return linears.stream().filter(l -> !l.name().equals(head)).toList();
    }
    List<String> unmatched = Arrays.stream(targets)
        .filter(t -> linears.stream().noneMatch(l -> matches(l.name(), t))).toList();
    checkArgument(unmatched.isEmpty(), "target modules %s match no linear layer of this %s shape; layer 0 and "
        + "the head have: %s", unmatched, shape.architecture(), linears.stream().map(Linear::name)
        .filter(n -> !layerIndexAbove0(n)).toList());
    return linears.stream().filter(l -> Arrays.stream(targets).anyMatch(t -> matches(l.name(), t))).toList();
  }

  private static boolean layerIndexAbove0(String name) {
    Matcher m = LAYER.matcher(name);
    return m.find() && Integer.parseInt(m.group(1)) > 0;
  }

  private static boolean matches(String module, String entry) {
    return module.equals(entry) || module.endsWith("." + entry);
  }
}
