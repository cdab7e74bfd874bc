package dev.peft4j.model;

import static com.google.common.base.Preconditions.checkArgument;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.CharSpan;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.stream.Collectors;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A Hugging Face {@code tokenizer.json}, read offline by Hugging Face's own Rust tokenizers (through DJL), with
 * padding and truncation set explicitly: batches are padded on the right to their longest text and truncated to
 * {@code maxLength} tokens, special tokens included.
 *
 * <p>Decoders need more than that: {@link #ids} encodes one text neither padded nor truncated, {@link #decode} turns
 * ids back into text, {@link #tokenId} and {@link #specialTokens} look tokens up, and
 * {@link #encode(List, PaddingSide, long)} pads on either side with a given id (decoders pad on the left for
 * generation and their tokenizers often have no pad token; {@link #padTokenId} says whether this one has).
 */
public final class Tokenizer implements AutoCloseable {

  /** Which end of a row padding goes to. */
  public enum PaddingSide { LEFT, RIGHT }

  /** Padded and truncated, for {@link #encode(List)}. */
  private final HuggingFaceTokenizer tokenizer;
  /** Neither padded nor truncated, for {@link #ids} and {@link #decode}. */
  private final HuggingFaceTokenizer plain;
  private final int maxLength;
  private final Vocabulary vocabulary;

  private Tokenizer(HuggingFaceTokenizer tokenizer, HuggingFaceTokenizer plain, int maxLength,
      Vocabulary vocabulary) {
    this.tokenizer = tokenizer;
    this.plain = plain;
    this.maxLength = maxLength;
    this.vocabulary = vocabulary;
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
    byte[] json = tokenizerJson.readAllBytes();
    Vocabulary vocabulary = Vocabulary.of(json);
    HuggingFaceTokenizer padded = null;
    try {
      padded = HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(json), options);
      HuggingFaceTokenizer plain = HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(json), Map.of(
          "padding", "false", "truncation", "false", "addSpecialTokens", "true"));
      return new Tokenizer(padded, plain, maxLength, vocabulary);
    } catch (RuntimeException e) {
      if (padded != null) {
        padded.close();
      }
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

  /**
   * The ids of one text, neither padded nor truncated (a decoder's caller decides what a too-long text means).
   *
   * @param addSpecialTokens whether the tokenizer's post-processor adds its tokens ({@code [CLS]…[SEP]} for BERT,
   *     {@code <|begin_of_text|>} for Llama 3, none for Qwen)
   */
  public long[] ids(String text, boolean addSpecialTokens) {
    return plain.encode(text, addSpecialTokens, false).getIds();
  }

  /**
   * Token ids of one text with where each token came from: {@code [starts[i], ends[i])} in {@code text}'s
   * {@code char}s (UTF-16 units, as {@link String#substring} counts); tokens the post-processor added have
   * {@code starts[i] == ends[i] == 0}. Neither padded nor truncated.
   */
  public record Tokens(long[] ids, int[] starts, int[] ends) {}

  /** {@link #ids}, with each token's character range ({@link Tokens}). */
  public Tokens tokens(String text, boolean addSpecialTokens) {
    Encoding e = plain.encode(text, addSpecialTokens, false);
    CharSpan[] spans = e.getCharTokenSpans();
    long[] ids = e.getIds();
    int[] starts = new int[ids.length];
    int[] ends = new int[ids.length];
    // the Rust library counts code points; Java strings count UTF-16 units, two for a code point above U+FFFF
    int[] charIndex = new int[text.codePointCount(0, text.length()) + 1];
    for (int cp = 0, i = 0; cp < charIndex.length; cp++) {
      charIndex[cp] = i;
      if (i < text.length()) {
        i += Character.charCount(text.codePointAt(i));
      }
    }
    for (int t = 0; t < ids.length; t++) {
      if (spans[t] != null) {
        starts[t] = charIndex[spans[t].getStart()];
        ends[t] = charIndex[spans[t].getEnd()];
      }
    }
    return new Tokens(ids, starts, ends);
  }

  /**
   * The text of {@code ids}.
   *
   * @param skipSpecialTokens whether special tokens ({@link #specialTokens}) are left out, as HF's
   *     {@code decode(ids, skip_special_tokens=True)}
   * @throws IllegalArgumentException naming the first id outside {@code [0, vocabularySize())}
   */
  public String decode(long[] ids, boolean skipSpecialTokens) {
    for (int i = 0; i < ids.length; i++) {
      checkArgument(ids[i] >= 0 && ids[i] < vocabulary.size, "id %s at position %s is outside the vocabulary [0, %s)",
          ids[i], i, vocabulary.size);
    }
    return plain.decode(ids, skipSpecialTokens);
  }

  /** The id of {@code token} (a vocabulary entry or an added token, written as in tokenizer.json), if it has one. */
  public OptionalLong tokenId(String token) {
    Long id = vocabulary.ids.get(token);
    return id == null ? OptionalLong.empty() : OptionalLong.of(id);
  }

  /** The added tokens marked {@code special} in tokenizer.json (e.g. {@code [PAD]}, {@code <|im_end|>}). */
  public Set<String> specialTokens() {
    return vocabulary.special;
  }

  /**
   * Number of ids the tokenizer can produce: the largest id of its vocabulary and added tokens, plus one (HF's
   * {@code len(tokenizer)}). A model's embedding may have more rows (padded to a multiple), never fewer.
   */
  public int vocabularySize() {
    return vocabulary.size;
  }

  /**
   * The pad id of tokenizer.json's {@code padding} section (what {@link #encode(List)} pads with), or empty when the
   * tokenizer declares no padding, as most decoders' do; callers then pad with another id, usually EOS, which the
   * attention mask hides anyway.
   */
  public OptionalLong padTokenId() {
    return vocabulary.padId;
  }

  /**
   * Encodes a batch of texts with special tokens, padded to the longest with {@code padId} on {@code side}, not
   * truncated. Token types are all 0.
   *
   * @throws IllegalArgumentException naming the text, if one is longer than {@link #maxLength()} tokens or empty
   */
  public Encoded encode(List<String> texts, PaddingSide side, long padId) {
    checkArgument(!texts.isEmpty(), "no texts to encode");
    checkArgument(padId >= 0 && padId < vocabulary.size, "pad id %s is outside the vocabulary [0, %s)", padId,
        vocabulary.size);
    long[][] rows = new long[texts.size()][];
    int s = 0;
    for (int i = 0; i < rows.length; i++) {
      rows[i] = ids(texts.get(i), true);
      checkArgument(rows[i].length > 0, "text %s encodes to no tokens", i);
      checkArgument(rows[i].length <= maxLength, "text %s has %s tokens, more than maxLength %s", i, rows[i].length,
          maxLength);
      s = Math.max(s, rows[i].length);
    }
    long[][] ids = new long[rows.length][s];
    long[][] mask = new long[rows.length][s];
    for (int i = 0; i < rows.length; i++) {
      int offset = side == PaddingSide.LEFT ? s - rows[i].length : 0;
      Arrays.fill(ids[i], padId);
      System.arraycopy(rows[i], 0, ids[i], offset, rows[i].length);
      Arrays.fill(mask[i], offset, offset + rows[i].length, 1L);
    }
    return new Encoded(Nd4j.createFromArray(ids), Nd4j.createFromArray(mask), Nd4j.zeros(
        DataType.INT64, rows.length, s));
  }

  @Override
  public void close() {
    tokenizer.close();
    plain.close();
  }

  /** What tokenizer.json says about ids, read once: the Rust library does not expose it through DJL. */
  private record Vocabulary(Map<String, Long> ids, Set<String> special, int size, OptionalLong padId) {

    static Vocabulary of(byte[] json) throws IOException {
      JsonObject root;
      try {
        root = JsonParser.parseString(new String(json, StandardCharsets.UTF_8)).getAsJsonObject();
      } catch (RuntimeException e) {
        throw new IOException("cannot read tokenizer.json: " + e.getMessage(), e);
      }
      Map<String, Long> ids = new HashMap<>();
      JsonElement model = root.getAsJsonObject("model") == null ? null : root.getAsJsonObject("model").get("vocab");
      if (model != null && model.isJsonObject()) {         // BPE, WordPiece, WordLevel: {token: id}
        for (Map.Entry<String, JsonElement> e : model.getAsJsonObject().entrySet()) {
          ids.put(e.getKey(), e.getValue().getAsLong());
        }
      } else if (model != null && model.isJsonArray()) {   // Unigram: [[piece, score], …], id = index
        for (int i = 0; i < model.getAsJsonArray().size(); i++) {
          ids.put(model.getAsJsonArray().get(i).getAsJsonArray().get(0).getAsString(), (long) i);
        }
      }
      Map<String, Boolean> added = new LinkedHashMap<>();
      if (root.has("added_tokens") && root.get("added_tokens").isJsonArray()) {
        for (JsonElement t : root.getAsJsonArray("added_tokens")) {
          JsonObject o = t.getAsJsonObject();
          ids.put(o.get("content").getAsString(), o.get("id").getAsLong());
          added.put(o.get("content").getAsString(), o.has("special") && o.get("special").getAsBoolean());
        }
      }
      if (ids.isEmpty()) {
        throw new IOException("tokenizer.json has neither a model vocabulary nor added tokens");
      }
      long max = Collections.max(ids.values());
      Set<String> special = added.entrySet().stream().filter(Map.Entry::getValue).map(Map.Entry::getKey)
          .collect(Collectors.toCollection(LinkedHashSet::new));
      JsonElement padding = root.get("padding");
      OptionalLong padId = padding != null && padding.isJsonObject() && padding.getAsJsonObject().has("pad_id")
          ? OptionalLong.of(padding.getAsJsonObject().get("pad_id").getAsLong()) : OptionalLong.empty();
      return new Vocabulary(Map.copyOf(ids), Collections.unmodifiableSet(special), Math.toIntExact(max + 1), padId);
    }
  }
}
