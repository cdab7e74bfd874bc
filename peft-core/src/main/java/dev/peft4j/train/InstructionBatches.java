package dev.peft4j.train;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.model.ChatTemplate;
import dev.peft4j.model.Llama;
import dev.peft4j.model.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Random;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * {@link InstructionData} as token ids with labels for a causal LM's loss ({@link Llama#causalLm}): the label of a
 * token the model must learn to write is its id, every other label is {@link Llama#IGNORE_INDEX} (−100), so the
 * next-token loss counts the response tokens only.
 * <pre>
 *   with a chat template:  text = template(messages); ids = tokens of text (no special tokens added: the template
 *                          writes them); label = id where the token starts inside an assistant turn (its text and
 *                          end-of-turn token, {@link ChatTemplate.Rendered#assistantSpans}), else −100
 *   without one:           ids = tokens(prompt, special tokens added) ++ tokens(response) ++ [eos];
 *                          label = −100 on the prompt's tokens, the id on the response's and on eos
 *                          (only the prompt/response form: messages need a template)
 *   longer than maxLength: the first maxLength tokens are kept (counted in {@link #truncated()})
 *   batches:               [b, s] input_ids, attention_mask (1 real, 0 padding), labels (−100 on padding), padded on
 *                          the right to the longest example of the batch
 *   packed batches:        several examples a row, attention_mask = example number ({@link #packedBatches})
 * </pre>
 */
public final class InstructionBatches {

  /** One example's ids and labels, of equal length. */
  public record Encoded(String source, long[] inputIds, long[] labels) {
    public Encoded {
      checkArgument(inputIds.length == labels.length && inputIds.length > 0, "%s: %s ids and %s labels", source,
          inputIds.length, labels.length);
    }

    /** Tokens whose label counts in the loss. */
    public int learntTokens() {
      return (int) Arrays.stream(labels).filter(l -> l != Llama.IGNORE_INDEX).count();
    }
  }

  private final List<Encoded> examples;
  private final int truncated;

  private InstructionBatches(List<Encoded> examples, int truncated) {
    this.examples = List.copyOf(examples);
    this.truncated = truncated;
  }

  /**
   * Tokenizes every example.
   *
   * @param template the model's chat template; empty to concatenate prompt and response
   * @param eosId the id ending a response without a template (the model's {@code eos_token_id}); empty for none
   * @param maxLength tokens kept per example
   * @throws IllegalArgumentException naming the example ({@code file:line}), if it has messages but there is no
   *     template, or truncation leaves none of its response tokens
   */
  public static InstructionBatches of(InstructionData data, Tokenizer tokenizer, Optional<ChatTemplate> template,
      OptionalLong eosId, int maxLength) {
    checkArgument(maxLength >= 2, "maxLength must be >= 2, got %s", maxLength);
    List<Encoded> encoded = new ArrayList<>();
    int truncated = 0;
    for (InstructionData.Example e : data.examples()) {
      Encoded full = template.isPresent() ? withTemplate(e, tokenizer, template.get())
          : withoutTemplate(e, tokenizer, eosId);
      Encoded kept = full;
      if (full.inputIds().length > maxLength) {
        truncated++;
        kept = new Encoded(e.source(), Arrays.copyOf(full.inputIds(), maxLength),
            Arrays.copyOf(full.labels(), maxLength));
      }
      // the loss reads label t+1 at row t, so a learnt label at position 0 would never count
      checkArgument(Arrays.stream(kept.labels()).skip(1).anyMatch(l -> l != Llama.IGNORE_INDEX),
          "%s: no response token within the first %s tokens (the example has %s; its response starts at token %s)",
          e.source(), maxLength, full.inputIds().length, firstLearnt(full.labels()));
      encoded.add(kept);
    }
    return new InstructionBatches(encoded, truncated);
  }

  /** The encoded examples, in the file's order (unless {@link #shuffled}). */
  public List<Encoded> examples() {
    return examples;
  }

  /** How many examples were longer than {@code maxLength} and cut. */
  public int truncated() {
    return truncated;
  }

  /** The same examples in an order shuffled by {@code seed} (a fixed permutation per seed). */
  public InstructionBatches shuffled(long seed) {
    List<Encoded> order = new ArrayList<>(examples);
    Collections.shuffle(order, new Random(seed));
    return new InstructionBatches(order, truncated);
  }

  /**
   * The examples in order, {@code batchSize} at a time (the last batch may be smaller), right-padded with
   * {@code padId}.
   */
  public List<Batch> batches(int batchSize, long padId) {
    checkArgument(batchSize >= 1, "batchSize must be >= 1, got %s", batchSize);
    checkArgument(padId >= 0, "padId must be >= 0, got %s", padId);
    List<Batch> batches = new ArrayList<>();
    for (int from = 0; from < examples.size(); from += batchSize) {
      batches.add(batch(examples.subList(from, Math.min(from + batchSize, examples.size())), padId));
    }
    return batches;
  }

  /**
   * The examples packed into rows of at most {@code seqLength} tokens, in order, each row taking the next examples
   * while they fit, {@code batchSize} rows a batch, for a packed graph
   * ({@link Llama#causalLm(dev.peft4j.model.LlamaConfig, dev.peft4j.model.Weights, boolean)}):
   * {@code attention_mask} holds each token's example number in its row (1, 2, …; 0 on padding), and the first
   * label of every example is −100, so that no example's last token is asked to predict the next example.
   *
   * @throws IllegalArgumentException if an example is longer than {@code seqLength}
   */
  public List<Batch> packedBatches(int batchSize, int seqLength, long padId) {
    checkArgument(batchSize >= 1, "batchSize must be >= 1, got %s", batchSize);
    checkArgument(padId >= 0, "padId must be >= 0, got %s", padId);
    List<List<Encoded>> rows = new ArrayList<>();
    int used = seqLength;
    for (Encoded e : examples) {
      int n = e.inputIds().length;
      checkArgument(n <= seqLength, "%s: %s tokens, more than the packed rows' %s", e.source(), n, seqLength);
      if (used + n > seqLength) {
        rows.add(new ArrayList<>());
        used = 0;
      }
      rows.get(rows.size() - 1).add(e);
      used += n;
    }
    List<Batch> batches = new ArrayList<>();
    for (int from = 0; from < rows.size(); from += batchSize) {
      batches.add(packedBatch(rows.subList(from, Math.min(from + batchSize, rows.size())), padId));
    }
    return batches;
  }

  private static Batch packedBatch(List<List<Encoded>> rows, long padId) {
    int s = rows.stream().mapToInt(r -> r.stream().mapToInt(e -> e.inputIds().length).sum()).max().orElseThrow();
    long[][] ids = new long[rows.size()][s];
    long[][] mask = new long[rows.size()][s];
    long[][] labels = new long[rows.size()][s];
    long tokens = 0;
    for (int i = 0; i < rows.size(); i++) {
      Arrays.fill(ids[i], padId);
      Arrays.fill(labels[i], Llama.IGNORE_INDEX);
      int at = 0;
      for (int k = 0; k < rows.get(i).size(); k++) {
        Encoded e = rows.get(i).get(k);
        int n = e.inputIds().length;
        System.arraycopy(e.inputIds(), 0, ids[i], at, n);
        System.arraycopy(e.labels(), 0, labels[i], at, n);
        labels[i][at] = Llama.IGNORE_INDEX;
        Arrays.fill(mask[i], at, at + n, k + 1L);
        at += n;
      }
      tokens += at;
    }
    Map<String, INDArray> inputs = Map.of(Llama.INPUT_IDS, Nd4j.createFromArray(ids),
        Llama.ATTENTION_MASK, Nd4j.createFromArray(mask), Llama.LABELS, Nd4j.createFromArray(labels));
    return new Batch(inputs, tokens);
  }

  /** {@code rows} padded on the right to the longest. */
  static Batch batch(List<Encoded> rows, long padId) {
    int s = rows.stream().mapToInt(r -> r.inputIds().length).max().orElseThrow();
    long[][] ids = new long[rows.size()][s];
    long[][] mask = new long[rows.size()][s];
    long[][] labels = new long[rows.size()][s];
    long tokens = 0;
    for (int i = 0; i < rows.size(); i++) {
      Encoded r = rows.get(i);
      int n = r.inputIds().length;
      Arrays.fill(ids[i], padId);
      Arrays.fill(labels[i], Llama.IGNORE_INDEX);
      System.arraycopy(r.inputIds(), 0, ids[i], 0, n);
      System.arraycopy(r.labels(), 0, labels[i], 0, n);
      Arrays.fill(mask[i], 0, n, 1L);
      tokens += n;
    }
    Map<String, INDArray> inputs = Map.of(Llama.INPUT_IDS, Nd4j.createFromArray(ids),
        Llama.ATTENTION_MASK, Nd4j.createFromArray(mask), Llama.LABELS, Nd4j.createFromArray(labels));
    return new Batch(inputs, tokens);
  }

  private static Encoded withTemplate(InstructionData.Example e, Tokenizer tokenizer, ChatTemplate template) {
    ChatTemplate.Rendered r;
    try {
      r = template.renderWithSpans(e.messages(), false);
    } catch (IllegalArgumentException x) {
      throw new IllegalArgumentException(e.source() + ": " + x.getMessage(), x);
    }
    Tokenizer.Tokens t = tokenizer.tokens(r.text(), false);
    long[] labels = new long[t.ids().length];
    for (int i = 0; i < labels.length; i++) {
      labels[i] = Llama.IGNORE_INDEX;
      for (int[] span : r.assistantSpans()) {
        if (t.starts()[i] >= span[0] && t.starts()[i] < span[1] && t.ends()[i] > t.starts()[i]) {
          labels[i] = t.ids()[i];
        }
      }
    }
    return new Encoded(e.source(), t.ids(), labels);
  }

  private static Encoded withoutTemplate(InstructionData.Example e, Tokenizer tokenizer, OptionalLong eosId) {
    checkArgument(e.promptResponse(), "%s: 'messages' need a chat template, and the tokenizer has none "
        + "(tokenizer_config.json without chat_template); use 'prompt'/'response' lines", e.source());
    long[] prompt = tokenizer.ids(e.messages().get(0).content(), true);
    long[] response = tokenizer.ids(e.messages().get(1).content(), false);
    int n = prompt.length + response.length + (eosId.isPresent() ? 1 : 0);
    long[] ids = new long[n];
    long[] labels = new long[n];
    System.arraycopy(prompt, 0, ids, 0, prompt.length);
    System.arraycopy(response, 0, ids, prompt.length, response.length);
    eosId.ifPresent(eos -> ids[n - 1] = eos);
    Arrays.fill(labels, 0, prompt.length, Llama.IGNORE_INDEX);
    System.arraycopy(ids, prompt.length, labels, prompt.length, n - prompt.length);
    return new Encoded(e.source(), ids, labels);
  }

  private static int firstLearnt(long[] labels) {
    for (int i = 0; i < labels.length; i++) {
      if (labels[i] != Llama.IGNORE_INDEX) {
        return i;
      }
    }
    return -1;
  }
}
