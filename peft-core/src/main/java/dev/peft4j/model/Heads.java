package dev.peft4j.model;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.TaskType;
import dev.peft4j.graph.ArrayHolders;
import java.util.Random;
import org.nd4j.autodiff.samediff.NameScope;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.Assert;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Task models: Hugging Face's, module names included, so that their checkpoints and SEQ_CLS / TOKEN_CLS adapters load
 * ({@link #bertForSequenceClassification}, {@link #bertForTokenClassification},
 * {@link #llamaForSequenceClassification}; one method per transformers class, another architecture's head is one more
 * method), and peft4j's own pooled head on any encoder graph ({@link #sequenceClassification}). A head's module
 * ({@code classifier}, {@code score}) is meant to be trained in full beside an adapter: pass it to
 * {@code modulesToSave(...)}, as Hugging Face PEFT's task types do.
 */
public final class Heads {

  /** The labels placeholder, logits and loss names every head uses. */
  public static final String LABELS = "labels";
  public static final String LOGITS = "logits";
  public static final String PROBABILITIES = "probabilities";
  public static final String LOSS = "loss";
  /** The classification head's module name, as in {@code BertForSequenceClassification}. */
  public static final String CLASSIFIER = "classifier";
  /** The decoders' classification head, as in {@code LlamaForSequenceClassification}; no bias. */
  public static final String SCORE = "score";
  /** The encoder's module prefix in Hugging Face's BERT task models. */
  public static final String BERT = "bert.";
  /** The encoder's module prefix in Hugging Face's RoBERTa task models. */
  public static final String ROBERTA = "roberta.";
  /**
   * The name scope of the assertion a decoder head without {@code pad_token_id} fails on a batch of several rows
   * (transformers raises "Cannot handle batch sizes > 1 if no padding token is defined.").
   */
  public static final String NO_PAD_TOKEN_SCOPE = "config_has_no_pad_token_id_so_batches_must_have_one_row";
  private static final String ROBERTA_DENSE = CLASSIFIER + ".dense";
  private static final String ROBERTA_OUT = CLASSIFIER + ".out_proj";

  /** How a sequence becomes one vector. */
  public enum Pooling {
    /** The first token's hidden state ({@code [CLS]}). */
    CLS,
    /** The mean of the real tokens' hidden states (sentence-transformers' pooling for MiniLM). */
    MEAN
  }

  private Heads() {}

  /**
   * Adds sequence classification to a {@link Bert} encoder graph.
   * <pre>
   *   pooled = CLS: h[:, 0]  or  MEAN: Σₜ h[:, t]·mask[:, t] / Σₜ mask[:, t]      [b, H]
   *   logits = pooled · W + b      module "classifier", W: [H, labels]             [b, labels]
   *   loss   = mean cross-entropy(softmax(logits), labels)                         labels: [b] INT64 placeholder
   * </pre>
   * W starts normal(0, 0.02) and b at zero, as transformers initialises a new head.
   *
   * @return the same graph, with {@value #LOSS} as its loss variable
   */
  public static SameDiff sequenceClassification(SameDiff encoder, int hiddenSize, int numLabels, Pooling pooling,
      long seed) {
    checkArgument(numLabels >= 2, "a classifier needs at least 2 labels, got %s", numLabels);
    checkArgument(encoder.hasVariable(Bert.LAST_HIDDEN_STATE), "not an encoder graph: no '%s'",
        Bert.LAST_HIDDEN_STATE);
    SameDiff sd = encoder;
    SDVariable hidden = sd.getVariable(Bert.LAST_HIDDEN_STATE);                         // [b, s, H]
    SDVariable pooled = switch (pooling) {
      // a strided slice, not gather: M2.1's gather gradient with constant indices fails on its rank-1 index array
      // ("cannot get size of dimension 1 for rank 1 NDArray")
      case CLS -> firstToken(sd, hidden, hiddenSize);                                 // [b, H]
      case MEAN -> {
        SDVariable mask = sd.getVariable(Bert.ATTENTION_MASK).castTo(DataType.FLOAT);    // [b, s]
        // Σₜ as a batched matmul [b, 1, s]·[b, s, H]: ND4J M2.1's gradient of the broadcast multiply h·mask[b, s, 1]
        // cost ~15 ms a MiniLM step, the matmul's well under that
        SDVariable summed = sd.reshape(sd.mmul(sd.expandDims(mask, 1), hidden), -1, hiddenSize); // [b, H]
        yield summed.div(mask.sum(true, 1));                                           // [b, H]
      }
    };
    Random random = new Random(seed);
    SDVariable w = sd.var(CLASSIFIER + ".weight", normal(random, 0.02, hiddenSize, numLabels));
    SDVariable b = sd.var(CLASSIFIER + ".bias", Nd4j.zeros(DataType.FLOAT, numLabels));
    SDVariable logits = pooled.mmul(w).add(b).rename(LOGITS);                          // [b, labels]
    // not a transformers task model: no task_type, so HF does not rebuild a head whose names differ from this one's
    ModelOrigin.of(sd).ifPresent(o -> ModelOrigin.record(sd, o.nameOrPath(), null));
    return classificationLoss(sd, logits, numLabels);
  }

  /**
   * Hugging Face's {@code BertForSequenceClassification}, module names included: the encoder under {@code bert.},
   * its pooler and a {@code classifier}.
   * <pre>
   *   pooled = tanh(h[:, 0] · Wp + bp)        module "bert.pooler.dense"      [b, H]
   *   logits = pooled · Wc + bc               module "classifier"             [b, labels]
   *   loss   = mean cross-entropy(logits, labels)                             labels: [b] INT64 placeholder
   * </pre>
   * Weights come from {@code weights} (a task checkpoint, or a bare {@code BertModel} one: names are looked up with
   * and without {@code bert.}); a pooler or classifier the checkpoint lacks starts as transformers initialises it,
   * W normal(0, 0.02) drawn from {@code seed} and b zero. The classifier's dropout is left out: peft4j's heads run
   * deterministically, and at inference (where HF's logits are compared) dropout is the identity.
   *
   * @throws IllegalArgumentException naming both label counts, if the checkpoint's classifier has another
   */
  public static SameDiff bertForSequenceClassification(BertConfig config, Weights weights, int numLabels, long seed) {
    checkArgument(numLabels >= 1, "num_labels must be at least 1, got %s", numLabels);
    InitialisedWeights w = new InitialisedWeights(new PrefixedWeights(BERT, weights), new Random(seed));
    SameDiff sd = Bert.encoder(config, w.withDefault(BERT + Bert.POOLER, config.hiddenSize(), config.hiddenSize()),
        BERT, true);
    SDVariable pooled = sd.getVariable(Bert.POOLER_OUTPUT);                            // [b, H]
    requireLabels(w, CLASSIFIER, numLabels);
    int h = config.hiddenSize();
    SDVariable logits = Layers.linear(sd, w.withDefault(CLASSIFIER, h, numLabels), CLASSIFIER, pooled, h, numLabels,
        true).rename(LOGITS);                             // [b, labels]
    ModelOrigin.record(sd, null, TaskType.SEQ_CLS);
    return classificationLoss(sd, logits, numLabels);
  }

  /**
   * Hugging Face's {@code BertForTokenClassification}: the encoder under {@code bert.} (no pooler, as transformers
   * builds this task model) and a {@code classifier} on every token.
   * <pre>
   *   logits = h · Wc + bc                    module "classifier"             [b, s, labels]
   *   loss   = mean cross-entropy over tokens whose label is not −100         labels: [b, s] INT64 placeholder
   * </pre>
   * Weights as in {@link #bertForSequenceClassification}; a pooler in the checkpoint is not used.
   *
   * @throws IllegalArgumentException naming both label counts, if the checkpoint's classifier has another
   */
  public static SameDiff bertForTokenClassification(BertConfig config, Weights weights, int numLabels, long seed) {
    checkArgument(numLabels >= 1, "num_labels must be at least 1, got %s", numLabels);
    InitialisedWeights w = new InitialisedWeights(new PrefixedWeights(BERT, weights), new Random(seed));
    SameDiff sd = Bert.encoder(config, w, BERT, false);
    requireLabels(w, CLASSIFIER, numLabels);
    int h = config.hiddenSize();
    SDVariable rows = Layers.linear(sd, w.withDefault(CLASSIFIER, h, numLabels), CLASSIFIER,
        sd.getVariable(Bert.HIDDEN_ROWS), h, numLabels, true);                                                           // [b·s, labels]
    SDVariable seq = sd.getVariable(Hooks.SEQ_LEN);
    sd.reshape(LOGITS, rows, sd.concat(0, Layers.longs(sd, -1), seq, Layers.longs(sd, numLabels))); // [b, s, labels]
    SDVariable labels = sd.reshape(sd.placeHolder(LABELS, DataType.INT64, -1, -1), -1); // [b·s]
    SDVariable counted = sd.neq(labels, Llama.IGNORE_INDEX).castTo(DataType.FLOAT);    // [b·s]
    SDVariable safe = labels.mul(counted.castTo(DataType.INT64));                      // −100 → 0
    SDVariable picked = logSoftmax(sd, rows).mul(sd.oneHot(safe, numLabels, -1, 1.0, 0.0, DataType.FLOAT)).sum(1);
    picked.mul(counted).sum().div(counted.sum()).neg(LOSS);
    sd.setLossVariables(LOSS);
    sd.setOutputs(LOGITS, LOSS);
    ModelOrigin.record(sd, null, TaskType.TOKEN_CLS);
    return sd;
  }

  /**
   * Hugging Face's {@code LlamaForSequenceClassification} (and Mistral's, Qwen2's, Qwen3's, Gemma's): the decoder under
   * {@code model.} and a bias-free {@code score} read at each row's last non-padding token, found as transformers
   * 5.x finds it.
   * <pre>
   *   rows   = RMSNorm(decoder(x)) · Ws         module "score", no bias        [b·s, labels]
   *   t*     = argmaxₜ t · [input_ids[:, t] ≠ pad_token_id]   (the rightmost non-pad token; left or right padding)
   *   logits = rows[:, t*]                                                     [b, labels]
   *   loss   = mean cross-entropy(logits, labels)                              labels: [b] INT64 placeholder
   * </pre>
   * Without a {@code pad_token_id} transformers 5.18 takes the last position and refuses a batch of more than one
   * row ("Cannot handle batch sizes > 1 if no padding token is defined."); so does this graph: running it on such a
   * batch fails in an assertion op named {@value #NO_PAD_TOKEN_SCOPE}{@code /Assert}. A {@code score} the checkpoint
   * lacks starts normal(0, 0.02) from {@code seed}.
   *
   * @param padTokenId {@code config.json}'s {@code pad_token_id}, or null
   * @throws IllegalArgumentException naming both label counts, if the checkpoint's score has another
   */
  public static SameDiff llamaForSequenceClassification(LlamaConfig config, Weights weights, int numLabels,
      Long padTokenId, long seed) {
    checkArgument(numLabels >= 1, "num_labels must be at least 1, got %s", numLabels);
    InitialisedWeights w = new InitialisedWeights(weights, new Random(seed));
    requireLabels(w, SCORE, numLabels);
    SameDiff sd = ArrayHolders.keepEachArrayOnce(SameDiff.create()); // no hidden second copy of each weight
    int h = config.hiddenSize();
    SDVariable normed = Llama.decoder(sd, config, w);                                  // [b·s, H]
    SDVariable rows = Layers.linear(sd, w.withDefault(SCORE, h, numLabels), SCORE, normed, h, numLabels,
        false);                                                                        // [b·s, labels]
    SDVariable ids = sd.getVariable(Llama.INPUT_IDS);                                  // [b, s]
    SDVariable seq = sd.getVariable(Hooks.SEQ_LEN);
    // positions as floats: M2.1's cumsum fails on INT64 (exact up to 2^24 positions)
    SDVariable positions = sd.cumsum(sd.onesLike(ids).castTo(DataType.FLOAT), false, false, 1).sub(1.0); // [b, s]
    SDVariable candidates = padTokenId == null ? batchOfOne(sd, positions)
        : positions.mul(sd.neq(ids, padTokenId.longValue()).castTo(DataType.FLOAT));   // [b, s]
    SDVariable last = sd.argmax(candidates, 1).castTo(DataType.FLOAT);                 // [b] = t*
    SDVariable chosen = sd.eq(positions, sd.expandDims(last, 1)).castTo(DataType.FLOAT); // [b, s] one-hot of t*
    // a multiply and a sum rather than a matmul, so that "score" stays an output head (all-linear skips it)
    SDVariable perToken = sd.reshape(rows, sd.concat(0, Layers.longs(sd, -1), seq, Layers.longs(sd, numLabels)));
    SDVariable logits = perToken.mul(sd.expandDims(chosen, 2)).sum(1).rename(LOGITS);  // [b, labels]
    ModelOrigin.record(sd, null, TaskType.SEQ_CLS);
    return classificationLoss(sd, logits, numLabels);
  }

  /**
   * {@code positions} {@code [b, s]}, computed only after an assertion that b is 1: ND4J's error names the failing op
   * only, so the op's scope says why.
   */
  private static SDVariable batchOfOne(SameDiff sd, SDVariable positions) {
    SDVariable rows = sd.stridedSlice(sd.shape(positions), new long[] {0}, new long[] {1}, new long[] {1}); // [1] = b
    SDVariable passed;
    try (NameScope ignored = sd.withNameScope(NO_PAD_TOKEN_SCOPE)) {
      passed = new Assert(sd, rows.lte(1L)).outputVariables()[0];
    }
    return positions.add(passed.castTo(DataType.FLOAT).mul(0));                        // positions, after the check
  }

  /** Softmax, the labels placeholder {@code [b]} and the mean cross-entropy of {@code [b, labels]} logits. */
  private static SameDiff classificationLoss(SameDiff sd, SDVariable logits, int numLabels) {
    sd.nn.softmax(PROBABILITIES, logits, 1);
    SDVariable labels = sd.placeHolder(LABELS, DataType.INT64, -1);                     // [b]
    SDVariable picked = logSoftmax(sd, logits).mul(sd.oneHot(labels, numLabels, -1, 1.0, 0.0, DataType.FLOAT))
        .sum(1);                                                                       // [b]
    picked.mean().neg(LOSS);
    sd.setLossVariables(LOSS);
    sd.setOutputs(LOGITS, PROBABILITIES, LOSS);
    return sd;
  }

  /** {@code hidden[:, 0]} of {@code [b, s, H]} as {@code [b, H]}. */
  static SDVariable firstToken(SameDiff sd, SDVariable hidden, int hiddenSize) {
    return sd.reshape(sd.stridedSlice(hidden, new long[] {0, 0, 0}, new long[] {0, 1, 0}, new long[] {1, 1, 1},
        5, 5, 0, 0, 0), -1, hiddenSize);
  }

  /** Refuses a checkpoint head of another label count than asked for, naming both. */
  private static void requireLabels(Weights w, String module, int numLabels) {
    if (w.has(module + ".weight")) {
      long found = w.tensor(module + ".weight").shape()[0];
      checkArgument(found == numLabels, "the checkpoint's '%s' has %s labels; %s were asked for", module, found,
          numLabels);
    }
  }

  /**
   * Hugging Face's {@code RobertaForSequenceClassification} / {@code XLMRobertaForSequenceClassification}: the encoder
   * under {@code roberta.} ({@link Roberta#encoder}) and its two-linear head on the first ({@code <s>}) token.
   * <pre>
   *   logits = tanh(h[:, 0] · Wd + bd) · Wo + bo     modules "classifier.dense" [H, H], "classifier.out_proj"
   *                                                  [H, labels]                                      [b, labels]
   *   loss = mean over the batch of −log softmax(logits)[labels]                                          scalar
   * </pre>
   * Checkpoint names are matched with and without {@code roberta.}; a head the checkpoint lacks (a bare
   * {@code RobertaModel}) starts as transformers initialises it, W normal(0, 0.02) drawn from {@code seed}, b zero.
   *
   * @throws IllegalArgumentException naming both label counts, if the checkpoint's {@code classifier.out_proj} has
   *     another
   */
  public static SameDiff robertaForSequenceClassification(RobertaConfig config, Weights weights, int numLabels,
      long seed) {
    checkArgument(numLabels >= 1, "num_labels must be at least 1, got %s", numLabels);
    int h = config.hiddenSize();
    InitialisedWeights w = new InitialisedWeights(new PrefixedWeights(ROBERTA, weights), new Random(seed));
    requireLabels(w, ROBERTA_OUT, numLabels);
    w = w.withDefault(ROBERTA_DENSE, h, h).withDefault(ROBERTA_OUT, h, numLabels);
    RobertaConfig withHead = new RobertaConfig(config.modelType(), config.vocabSize(), h, config.numLayers(),
        config.numHeads(), config.intermediateSize(), config.maxPositions(), config.typeVocabSize(),
        config.layerNormEps(), config.padTokenId(), numLabels);
    SameDiff sd = Roberta.encoder(withHead, w, ROBERTA);
    ModelOrigin.record(sd, null, TaskType.SEQ_CLS);
    return classificationLoss(sd, sd.getVariable(LOGITS), numLabels);
  }

  /**
   * {@code x − max − log Σ exp(x − max)} over axis 1 of {@code [n, c]}; SameDiff M2.1's own log_softmax cannot be
   * differentiated (its dimension property fails to deserialise when the gradient graph is built).
   */
  static SDVariable logSoftmax(SameDiff sd, SDVariable x) {
    SDVariable shifted = x.sub(x.max(true, 1));                                        // [n, c]
    return shifted.sub(sd.math.log(sd.math.exp(shifted).sum(true, 1)));
  }

  static INDArray normal(Random random, double std, long rows, long cols) {
    float[] values = new float[Math.toIntExact(rows * cols)];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) (random.nextGaussian() * std);
    }
    return Nd4j.create(values, new long[] {rows, cols}, 'c');
  }
}
