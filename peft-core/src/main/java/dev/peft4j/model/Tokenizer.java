package dev.peft4j.model;

import static com.google.common.base.Preconditions.checkArgument;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A Hugging Face {@code tokenizer.json}, read offline by Hugging Face's own Rust tokenizers (through DJL), with
 * padding and truncation set explicitly: batches are padded on the right to their longest text and truncated to
 * {@code maxLength} tokens, special tokens included.
 */
public final class Tokenizer implements AutoCloseable {

  private final HuggingFaceTokenizer tokenizer;
  private final int maxLength;

  private Tokenizer(HuggingFaceTokenizer tokenizer, int maxLength) {
    this.tokenizer = tokenizer;
    this.maxLength = maxLength;
  }

  /**
   * @param maxLength truncation length in tokens, special tokens included
   * @throws IOException if the stream is not a tokenizer.json the library can read
   */
  public static Tokenizer read(InputStream tokenizerJson, int maxLength) throws IOException {
    checkArgument(maxLength >= 2, "maxLength must be >= 2, got %s", maxLength);
    Map<String, String> options = Map.of(
        "padding", "true",            // to the longest sequence of the batch
        "truncation", "true",
        "maxLength", Integer.toString(maxLength),
        "addSpecialTokens", "true");
    try {
      return new Tokenizer(HuggingFaceTokenizer.newInstance(tokenizerJson, options), maxLength);
    } catch (RuntimeException e) {
      throw new IOException("cannot read tokenizer.json: " + e.getMessage(), e);
    }
  }

  public int maxLength() {
    return maxLength;
  }

  /** Token ids, attention mask and token types of a batch, each {@code [b, s]} INT64. */
  public record Encoded(INDArray inputIds, INDArray attentionMask, INDArray tokenTypeIds) {

    /** The placeholders of a {@link Bert} encoder. */
    public Map<String, INDArray> bertInputs() {
      return Map.of(Bert.INPUT_IDS, inputIds, Bert.ATTENTION_MASK, attentionMask, Bert.TOKEN_TYPE_IDS, tokenTypeIds);
    }

    /** Real (non-padding) tokens in the batch. */
    public long tokens() {
      return attentionMask.sumNumber().longValue();
    }
  }

  /** Encodes a batch of texts. */
  public Encoded encode(List<String> texts) {
    checkArgument(!texts.isEmpty(), "no texts to encode");
    Encoding[] encodings = tokenizer.batchEncode(texts);
    int s = encodings[0].getIds().length;
    long[][] ids = new long[encodings.length][];
    long[][] mask = new long[encodings.length][];
    long[][] types = new long[encodings.length][];
    for (int i = 0; i < encodings.length; i++) {
      ids[i] = encodings[i].getIds();
      mask[i] = encodings[i].getAttentionMask();
      types[i] = encodings[i].getTypeIds();
      checkArgument(ids[i].length == s, "the tokenizer returned rows of different lengths");
    }
    return new Encoded(Nd4j.createFromArray(ids), Nd4j.createFromArray(mask), Nd4j.createFromArray(types));
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
