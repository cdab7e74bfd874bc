package dev.peft4j.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.HfModels;
import dev.peft4j.testing.Fixtures;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Generation with adapters saved by PEFT 0.21 against transformers + PEFT's {@code generate}
 * (scripts/make_generation_fixtures.py): LoRA, prompt tuning (5 virtual tokens) and prefix tuning (3), whose virtual
 * tokens occupy the first cache positions.
 */
class AdapterGenerationTest {

  private static SameDiff tinyLlama() throws IOException {
    return HfModels.loadDecoder(Fixtures.dir("tiny-llama")).sameDiff();
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"lora-tiny-llama", "prompt-tiny-llama", "prefix-tiny-llama"})
  void greedyGenerationWithAnAdapterMatchesPeft(String fixture) throws IOException {
    GenerationGoldens golden = GenerationGoldens.of(fixture);
    PeftModel model = Peft.load(tinyLlama(), Fixtures.dir(fixture));
    GenerationConfig config = GenerationConfig.greedy(golden.maxNewTokens()).withEosTokenIds(List.of(2L));
    List<INDArray> cachedLogits = new ArrayList<>();
    List<long[]> cached = Generator.of(model).generate(golden.prompts(), config, (l, step) -> cachedLogits.add(l));
    golden.assertMatches(fixture + " cached", cached, cachedLogits, 1e-4);
    List<INDArray> fullLogits = new ArrayList<>();
    List<long[]> full = Generator.of(model).withoutCache().generate(golden.prompts(), config,
        (l, step) -> fullLogits.add(l));
    golden.assertMatches(fixture + " uncached", full, fullLogits, 1e-4);
    int opsBefore = model.sameDiff().getOps().size();
    Generator.of(model).generate(golden.prompts(), config);
    assertEquals(opsBefore, model.sameDiff().getOps().size(), "generation rewrote the model's own graph");
    assertTrue(model.adapter("default").isEnabled(), "the adapter is enabled again after the decode graph's copy");
  }

  /** Every adapter kind saved by PEFT on tiny-llama: the cache gives the tokens and logits of full recomputation. */
  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"dora-tiny-llama", "ia3-tiny-llama", "vera-tiny-llama", "adalora-tiny-llama",
      "fourierft-tiny-llama", "ln-tuning-tiny-llama", "lora-tiny-llama-rs", "ptuning-tiny-llama",
      "prefix-proj-tiny-llama"})
  void cachedDecodingEqualsFullRecomputationWithEveryAdapterKind(String fixture) throws IOException {
    GenerationGoldens golden = GenerationGoldens.of("tiny-llama"); // its left-padded prompts
    PeftModel model = Peft.load(tinyLlama(), Fixtures.dir(fixture));
    GenerationConfig config = GenerationConfig.greedy(6);
    List<INDArray> cachedLogits = new ArrayList<>();
    List<long[]> cached = Generator.of(model).generate(golden.prompts(), config, (l, step) -> cachedLogits.add(l));
    List<INDArray> fullLogits = new ArrayList<>();
    List<long[]> full = Generator.of(model).withoutCache().generate(golden.prompts(), config,
        (l, step) -> fullLogits.add(l));
    double worst = 0;
    for (int step = 0; step < cachedLogits.size(); step++) {
      worst = Math.max(worst, cachedLogits.get(step).sub(fullLogits.get(step)).amaxNumber().doubleValue());
    }
    System.out.printf("%s: cached vs uncached max |Δlogits| = %.3g%n", fixture, worst);
    assertTrue(worst <= 1e-4, fixture + ": cached vs uncached " + worst);
    for (int r = 0; r < cached.size(); r++) {
      assertArrayEquals(full.get(r), cached.get(r), fixture + " row " + r);
    }
  }

  @Test
  void aModelInTrainingModeGeneratesWithoutDropoutAndStaysInTrainingMode() throws IOException {
    GenerationGoldens golden = GenerationGoldens.of("tiny-llama");
    PeftModel model = Peft.lora(4).alpha(8).dropout(0.5).target("q_proj", "v_proj").apply(tinyLlama());
    long seed = 3;
    System.out.println("aModelInTrainingModeGeneratesWithoutDropoutAndStaysInTrainingMode: seed " + seed);
    java.util.Random random = new java.util.Random(seed);
    for (String p : model.trainableParameters().names()) { // B ≠ 0, so dropout on the branch would show
      INDArray a = model.sameDiff().getArrForVarName(p);
      for (long i = 0; i < a.length(); i++) {
        a.putScalar(i, 0.3 * random.nextGaussian());
      }
    }
    GenerationConfig config = GenerationConfig.greedy(4);
    List<INDArray> evalLogits = new ArrayList<>();
    Generator.of(model).generate(golden.prompts(), config, (l, step) -> evalLogits.add(l));
    model.train();
    List<INDArray> trainLogits = new ArrayList<>();
    Generator.of(model).generate(golden.prompts(), config, (l, step) -> trainLogits.add(l));
    for (int step = 0; step < evalLogits.size(); step++) {
      assertEquals(0, evalLogits.get(step).sub(trainLogits.get(step)).amaxNumber().doubleValue(), 1e-6,
          "step " + step);
    }
    assertTrue(model.isTraining(), "the model is back in training mode");
  }

  /**
   * One generator reused: its graphs are built once and follow the model — an adapter disabled and enabled, merged,
   * and a weight changed in place between calls each give what a new generator gives.
   */
  @Test
  void aReusedGeneratorFollowsTheModelsChanges() throws IOException {
    GenerationGoldens lora = GenerationGoldens.of("lora-tiny-llama");
    GenerationGoldens base = GenerationGoldens.of("tiny-llama");
    PeftModel model = Peft.load(tinyLlama(), Fixtures.dir("lora-tiny-llama"));
    GenerationConfig config = GenerationConfig.greedy(lora.maxNewTokens());
    Generator generator = Generator.of(model);
    List<INDArray> logits = new ArrayList<>();
    lora.assertMatches("first call", generator.generate(lora.prompts(), config, (l, s) -> logits.add(l)), logits,
        1e-4);
    logits.clear();
    lora.assertMatches("second call", generator.generate(lora.prompts(), config, (l, s) -> logits.add(l)), logits,
        1e-4);
    logits.clear();
    model.adapter("default").disable();
    base.assertMatches("adapter disabled", generator.generate(base.prompts(), config, (l, s) -> logits.add(l)),
        logits, 1e-4);
    logits.clear();
    model.adapter("default").enable();
    model.merge();
    lora.assertMatches("merged", generator.generate(lora.prompts(), config, (l, s) -> logits.add(l)), logits, 1e-4);
    model.unmerge();
    String b = model.trainableParameters().names().stream().filter(n -> n.contains("lora_B")).findFirst()
        .orElseThrow();
    model.sameDiff().getArrForVarName(b).muli(3); // in place, as an optimizer step changes a weight
    List<long[]> reused = generator.generate(lora.prompts(), config);
    List<INDArray> reusedLogits = new ArrayList<>();
    generator.generate(lora.prompts(), config, (l, s) -> reusedLogits.add(l));
    List<INDArray> freshLogits = new ArrayList<>();
    List<long[]> fresh = Generator.of(model).generate(lora.prompts(), config, (l, s) -> freshLogits.add(l));
    for (int i = 0; i < fresh.size(); i++) {
      assertArrayEquals(fresh.get(i), reused.get(i), "row " + i + " after a weight changed in place");
    }
    assertEquals(0.0, freshLogits.get(0).sub(reusedLogits.get(0)).amaxNumber().doubleValue(), 1e-6);
    double moved = lora.logits().get(NDArrayIndex.point(0), NDArrayIndex.all(), NDArrayIndex.all())
        .sub(freshLogits.get(0).castTo(lora.logits().dataType())).amaxNumber().doubleValue();
    assertTrue(moved > 1e-3, "tripling " + b + " changed the first step's logits by " + moved);
  }

  @Test
  void generationAfterMergeAndUnloadGivesTheAdaptersTokens() throws IOException {
    GenerationGoldens golden = GenerationGoldens.of("lora-tiny-llama");
    SameDiff merged = Peft.load(tinyLlama(), Fixtures.dir("lora-tiny-llama")).mergeAndUnload();
    List<INDArray> logits = new ArrayList<>();
    List<long[]> tokens = Generator.of(merged).generate(golden.prompts(),
        GenerationConfig.greedy(golden.maxNewTokens()), (l, step) -> logits.add(l));
    golden.assertMatches("merged lora-tiny-llama", tokens, logits, 1e-4);
  }

  @Test
  void perRowAdaptersGenerateAsEachRowAlone() throws IOException {
    GenerationGoldens lora = GenerationGoldens.of("lora-tiny-llama");
    GenerationGoldens prefix = GenerationGoldens.of("prefix-tiny-llama");
    GenerationGoldens base = GenerationGoldens.of("tiny-llama");
    PeftModel model = Peft.load(tinyLlama(), Fixtures.dir("lora-tiny-llama"));
    Peft.loadAdapter(model, "prefix", Fixtures.dir("prefix-tiny-llama"));
    model.setAdapter("prefix");
    List<long[]> prompts = lora.prompts();
    List<String> perRow = Arrays.asList("default", null, "prefix");
    List<long[]> out = Generator.of(model).generate(prompts, perRow, GenerationConfig.greedy(lora.maxNewTokens()));
    assertArrayEquals(lora.newTokens()[0], out.get(0), "row 0 with LoRA");
    assertArrayEquals(base.newTokens()[1], out.get(1), "row 1 with the base model");
    assertArrayEquals(prefix.newTokens()[2], out.get(2), "row 2 with the prefix");
    assertEquals(List.of("prefix"), model.activeAdapters(), "the active adapters are as before");
  }
}
