package dev.peft4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.util.List;
import java.util.OptionalLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Ids, decoding, lookups and padding side of the bundled MiniLM tokenizer; expected ids and texts from Hugging
 * Face's Python {@code tokenizers} on the same tokenizer.json.
 */
class TokenizerTest {

  static final String TEXT = "Hello, world! Parameter-efficient tuning.";
  static final long[] IDS = {101, 7592, 1010, 2088, 999, 16381, 1011, 8114, 17372, 1012, 102};

  static Tokenizer tokenizer;

  @BeforeAll
  static void read() throws Exception {
    try (InputStream in = Tokenizer.class.getResourceAsStream(PretrainedModels.MINILM_TOKENIZER)) {
      tokenizer = Tokenizer.read(in, 8);
    }
  }

  @AfterAll
  static void close() {
    tokenizer.close();
  }

  @Test
  void idsAreNeitherTruncatedNorPadded() {
    assertArrayEquals(IDS, tokenizer.ids(TEXT, true), "11 ids although maxLength is 8");
    assertArrayEquals(new long[] {7592, 1010, 2088, 999}, tokenizer.ids("Hello, world!", false));
  }

  @Test
  void decodeSkipsOrKeepsSpecialTokens() {
    assertEquals("hello, world! parameter - efficient tuning.", tokenizer.decode(IDS, true));
    assertEquals("[CLS] hello, world! parameter - efficient tuning. [SEP]", tokenizer.decode(IDS, false));
  }

  @Test
  void roundTripOfNormalisedText() {
    String text = "low rank adaptation merges back into the weight";
    assertEquals(text, tokenizer.decode(tokenizer.ids(text, true), true));
  }

  @Test
  void tokensKnowTheirCharactersOutsideTheBasicPlane() {
    String text = "héllo 😀 wörld";
    Tokenizer.Tokens t = tokenizer.tokens(text, true);
    assertArrayEquals(new long[] {101, 7592, 100, 2088, 102}, t.ids(), "[CLS] hello [UNK] world [SEP]");
    assertArrayEquals(new int[] {0, 0, 6, 9, 0}, t.starts(), "the emoji is two chars in Java");
    assertArrayEquals(new int[] {0, 5, 8, 14, 0}, t.ends());
    assertEquals("wörld", text.substring(t.starts()[3], t.ends()[3]));
  }

  @Test
  void lookups() {
    assertEquals(OptionalLong.of(101), tokenizer.tokenId("[CLS]"));
    assertEquals(OptionalLong.of(7592), tokenizer.tokenId("hello"), "a vocabulary entry, not an added token");
    assertEquals(OptionalLong.empty(), tokenizer.tokenId("<|im_end|>"));
    assertEquals(List.of("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"), List.copyOf(tokenizer.specialTokens()));
    assertEquals(30522, tokenizer.vocabularySize());
    assertEquals(OptionalLong.of(0), tokenizer.padTokenId());
  }

  @Test
  void padsOnEitherSideWithTheGivenId() {
    Tokenizer.Encoded left = tokenizer.encode(List.of("Hello, world!", "Hi"), Tokenizer.PaddingSide.LEFT, 7);
    assertArrayEquals(new long[][] {{101, 7592, 1010, 2088, 999, 102}, {7, 7, 7, 101, 7632, 102}},
        left.inputIds().toLongMatrix());
    assertArrayEquals(new long[][] {{1, 1, 1, 1, 1, 1}, {0, 0, 0, 1, 1, 1}}, left.attentionMask().toLongMatrix());
    Tokenizer.Encoded right = tokenizer.encode(List.of("Hello, world!", "Hi"), Tokenizer.PaddingSide.RIGHT, 0);
    assertArrayEquals(new long[] {101, 7632, 102, 0, 0, 0}, right.inputIds().getRow(1).toLongVector());
    assertArrayEquals(new long[] {1, 1, 1, 0, 0, 0}, right.attentionMask().getRow(1).toLongVector());
    assertEquals(0, right.tokenTypeIds().sumNumber().longValue());
  }

  @Test
  void theRightPaddedEncoderBatchIsUnchanged() {
    Tokenizer.Encoded e = tokenizer.encode(List.of(TEXT, "Hi"));
    assertArrayEquals(new long[] {101, 7592, 1010, 2088, 999, 16381, 1011, 102}, e.inputIds().getRow(0).toLongVector(),
        "truncated to maxLength 8, [SEP] kept");
    assertArrayEquals(new long[] {101, 7632, 102, 0, 0, 0, 0, 0}, e.inputIds().getRow(1).toLongVector());
  }

  @Test
  void badInputIsNamed() {
    IllegalArgumentException outside = assertThrows(IllegalArgumentException.class,
        () -> tokenizer.decode(new long[] {101, 30522}, true));
    assertEquals("id 30522 at position 1 is outside the vocabulary [0, 30522)", outside.getMessage());
    IllegalArgumentException tooLong = assertThrows(IllegalArgumentException.class,
        () -> tokenizer.encode(List.of("Hi", TEXT), Tokenizer.PaddingSide.LEFT, 0));
    assertEquals("text 1 has 11 tokens, more than maxLength 8", tooLong.getMessage());
  }
}
