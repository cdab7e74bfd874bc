package dev.peft4j.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.model.HfModels;
import dev.peft4j.testing.Fixtures;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

class GeneratorTest {

  static SameDiff load(String fixture) {
    try {
      return HfModels.loadDecoder(Fixtures.dir(fixture)).sameDiff();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-gemma"})
  void greedyCachedGenerationMatchesTransformersWithLeftPadding(String fixture) throws IOException {
    GenerationGoldens golden = GenerationGoldens.of(fixture);
    GenerationConfig config = GenerationConfig.fromCheckpoint(Fixtures.dir(fixture), golden.maxNewTokens());
    List<INDArray> cachedLogits = new ArrayList<>();
    List<long[]> cached = Generator.of(load(fixture)).generate(golden.prompts(), config,
        (logits, step) -> cachedLogits.add(logits));
    golden.assertMatches(fixture + " cached", cached, cachedLogits, 1e-4);

    List<INDArray> fullLogits = new ArrayList<>();
    List<long[]> full = Generator.of(load(fixture)).withoutCache().generate(golden.prompts(), config,
        (logits, step) -> fullLogits.add(logits));
    golden.assertMatches(fixture + " uncached", full, fullLogits, 1e-4);
    double worst = 0;
    for (int step = 0; step < cachedLogits.size(); step++) {
      worst = Math.max(worst, cachedLogits.get(step).sub(fullLogits.get(step)).amaxNumber().doubleValue());
    }
    System.out.printf("%s: cached vs uncached max |Δlogits| = %.3g%n", fixture, worst);
    assertTrue(worst <= 1e-4, "cached vs uncached " + worst);
  }

  @Test
  void theCacheHoldsTheKeyValueHeadsBeforeTheirRepetitionAndPrefillTheLastLogits() {
    DecoderGraphs g = DecoderGraphs.of(load("tiny-llama")); // 4 heads, 2 KV heads of 16
    java.util.Map<String, INDArray> out = g.prefill.output(java.util.Map.of("input_ids",
        org.nd4j.linalg.factory.Nd4j.createFromArray(new long[][] {{0, 5, 6}, {7, 8, 9}}), "attention_mask",
        org.nd4j.linalg.factory.Nd4j.createFromArray(new long[][] {{0, 1, 1}, {1, 1, 1}})),
        g.keys.get(1), g.values.get(1), "logits");
    assertEquals("[2, 2, 3, 16]", Arrays.toString(out.get(g.keys.get(1)).shape()));
    assertEquals("[2, 2, 3, 16]", Arrays.toString(out.get(g.values.get(1)).shape()));
    assertEquals(List.of("past.0.key", "past.1.key"), g.pastKeys);
    assertEquals("[2, 1, 128]", Arrays.toString(out.get("logits").shape()), "the last position's logits only");
  }

  @Test
  void aPromptAloneGivesTheSameTokensAsInALeftPaddedBatch() throws IOException {
    GenerationGoldens golden = GenerationGoldens.of("tiny-llama");
    Generator g = Generator.of(load("tiny-llama"));
    GenerationConfig config = GenerationConfig.greedy(golden.maxNewTokens());
    List<long[]> batch = g.generate(golden.prompts(), config);
    for (int r = 0; r < golden.prompts().size(); r++) {
      long[] alone = g.generate(List.of(golden.prompts().get(r)), config).get(0);
      assertEquals(Arrays.toString(batch.get(r)), Arrays.toString(alone), "row " + r);
    }
  }

  @Test
  void samplingIsReproducibleFromItsSeed() throws IOException {
    GenerationGoldens golden = GenerationGoldens.of("tiny-qwen3");
    Generator g = Generator.of(load("tiny-qwen3"));
    long seed = 20;
    System.out.println("samplingIsReproducibleFromItsSeed: seeds " + seed + ", " + (seed + 1));
    GenerationConfig config = GenerationConfig.sampling(12, seed).withTemperature(1.5).withTopK(40).withTopP(0.9)
        .withRepetitionPenalty(1.3);
    List<long[]> a = g.generate(golden.prompts(), config);
    List<long[]> b = g.generate(golden.prompts(), config);
    List<long[]> c = g.generate(golden.prompts(), config.withSeed(seed + 1));
    for (int r = 0; r < a.size(); r++) {
      assertEquals(Arrays.toString(a.get(r)), Arrays.toString(b.get(r)), "same seed, row " + r);
      assertEquals(12, a.get(r).length);
    }
    assertFalse(Arrays.deepEquals(a.toArray(), c.toArray()), "another seed drew the same tokens: " + a);
    List<long[]> greedy = g.generate(golden.prompts(), config.withSampling(false).withRepetitionPenalty(1));
    assertFalse(Arrays.deepEquals(a.toArray(), greedy.toArray()), "sampling drew the greedy tokens");
  }
}
