package dev.peft4j.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.model.HfModels;
import dev.peft4j.testing.Fixtures;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;

/** Each bad input is refused before any work, with a message naming what was found and what was expected. */
class GeneratorBadInputTest {

  private static SameDiff llama;
  private static Generator generator;
  private static final List<long[]> PROMPT = List.of(new long[] {5, 6, 7});

  @BeforeAll
  static void load() {
    llama = GeneratorTest.load("tiny-llama");
    generator = Generator.of(llama);
  }

  private static String refused(org.junit.jupiter.api.function.Executable call) {
    int ops = llama.getOps().size();
    String message = assertThrows(IllegalArgumentException.class, call).getMessage();
    assertEquals(ops, llama.getOps().size(), "the graph changed");
    return message;
  }

  @Test
  void aPromptPlusNewTokensBeyondThePositionsIsRefusedNamingBoth() {
    long[] long60 = new long[60];
    java.util.Arrays.fill(long60, 9);
    String m = refused(() -> generator.generate(List.of(new long[] {3}, long60), GenerationConfig.greedy(10)));
    assertTrue(m.contains("60 tokens") && m.contains("max_new_tokens 10") && m.contains("70")
        && m.contains("64 positions"), m);
    assertEquals(5, generator.generate(List.of(long60), GenerationConfig.greedy(4)).get(0).length + 1,
        "60 + 4 fits the 64 positions exactly");
  }

  @Test
  void configValuesOutOfRangeAreRefusedNamingTheValue() {
    assertTrue(refused(() -> GenerationConfig.greedy(0)).contains("max_new_tokens must be > 0, got 0"));
    assertTrue(refused(() -> GenerationConfig.greedy(-3)).contains("got -3"));
    assertTrue(refused(() -> GenerationConfig.sampling(5, 1).withTopP(0)).contains("top_p must be in (0, 1], got 0"));
    assertTrue(refused(() -> GenerationConfig.sampling(5, 1).withTopP(1.5)).contains("got 1.5"));
    assertTrue(refused(() -> GenerationConfig.sampling(5, 1).withTemperature(0))
        .contains("temperature must be > 0 and finite when sampling, got 0"));
    assertTrue(refused(() -> GenerationConfig.sampling(5, 1).withTemperature(-1)).contains("got -1"));
    assertTrue(refused(() -> GenerationConfig.greedy(5).withTopK(-1)).contains("top_k must be >= 0"));
    assertTrue(refused(() -> GenerationConfig.greedy(5).withRepetitionPenalty(0)).contains("repetition_penalty"));
    assertEquals(0.0, GenerationConfig.greedy(5).withTemperature(0).temperature(), "greedy ignores the temperature");
  }

  @Test
  void noPromptsAnEmptyPromptAndIdsOutsideTheVocabularyAreRefused() {
    assertTrue(refused(() -> generator.generate(List.of(), GenerationConfig.greedy(2))).contains("no prompt"));
    assertTrue(refused(() -> generator.generate(List.of(new long[] {4}, new long[0]), GenerationConfig.greedy(2)))
        .contains("prompt 1 is empty"));
    assertTrue(refused(() -> generator.generate(List.of(new long[] {4, 128}), GenerationConfig.greedy(2)))
        .contains("prompt 0: token 1 is id 128, outside the vocabulary of 128 ids"));
    assertTrue(refused(() -> generator.generate(List.of(new long[] {-1}), GenerationConfig.greedy(2)))
        .contains("id -1"));
    assertTrue(refused(() -> generator.generate(PROMPT, GenerationConfig.greedy(2).withPadTokenId(500)))
        .contains("pad_token_id 500"));
  }

  @Test
  void aGraphThatIsNotALlamaFamilyDecoderIsRefused() throws IOException {
    SameDiff bert = HfModels.load(Fixtures.dir("tiny-bert")).sameDiff();
    String m = assertThrows(IllegalArgumentException.class, () -> Generator.of(bert)).getMessage();
    assertTrue(m.contains("Llama-family decoder") && m.contains("position_cos"), m);
    SameDiff gpt2 = HfModels.load(Fixtures.dir("tiny-gpt2")).sameDiff();
    assertThrows(IllegalArgumentException.class, () -> Generator.of(gpt2));
  }

  @Test
  void generationStopsAtAnEosIdAndPadsNothingAfterIt() {
    List<long[]> free = generator.generate(PROMPT, GenerationConfig.greedy(6));
    long eos = free.get(0)[2];
    List<long[]> stopped = generator.generate(PROMPT, GenerationConfig.greedy(6).withEosTokenIds(List.of(eos)));
    List<Long> expected = new ArrayList<>();
    for (long t : free.get(0)) {
      expected.add(t);
      if (t == eos) {
        break;
      }
    }
    assertEquals(expected.toString(), java.util.Arrays.toString(stopped.get(0)));
  }
}
