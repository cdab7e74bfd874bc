package dev.peft4j.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.testing.Fixtures;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * A fixture's {@code generation_golden.safetensors} (scripts/make_generation_fixtures.py): left-padded prompts and
 * transformers' greedy {@code sequences} and per-step {@code logits}; shared by the base-model and adapter tests.
 */
public record GenerationGoldens(List<long[]> prompts, long[][] newTokens, INDArray logits) {

  public static GenerationGoldens of(String fixture) throws IOException {
    try (SafetensorsFile f = SafetensorsFile.open(Fixtures.dir(fixture).resolve("generation_golden.safetensors"))) {
      INDArray ids = f.read("input_ids");
      INDArray mask = f.read("attention_mask");
      INDArray sequences = f.read("sequences");
      List<long[]> prompts = new ArrayList<>();
      long[][] newTokens = new long[(int) ids.size(0)][];
      for (int r = 0; r < ids.size(0); r++) {
        long[] row = ids.getRow(r).toLongVector();
        long[] m = mask.getRow(r).toLongVector();
        int pads = (int) Arrays.stream(m).filter(x -> x == 0).count();
        prompts.add(Arrays.copyOfRange(row, pads, row.length));
        long[] seq = sequences.getRow(r).toLongVector();
        newTokens[r] = Arrays.copyOfRange(seq, row.length, seq.length);
      }
      return new GenerationGoldens(prompts, newTokens, f.read("logits"));
    }
  }

  public int maxNewTokens() {
    return newTokens[0].length;
  }

  /** Asserts the tokens equal transformers', and each step's logits [b, V] are within {@code tolerance}. */
  public void assertMatches(String what, List<long[]> tokens, List<INDArray> stepLogits, double tolerance) {
    for (int r = 0; r < newTokens.length; r++) {
      assertArrayEquals(newTokens[r], tokens.get(r), what + ": row " + r + " tokens");
    }
    assertEquals(logits.size(0), stepLogits.size(), what + ": steps");
    double worst = 0;
    for (int step = 0; step < stepLogits.size(); step++) {
      INDArray hf = logits.get(NDArrayIndex.point(step), NDArrayIndex.all(), NDArrayIndex.all());
      worst = Math.max(worst, hf.sub(stepLogits.get(step).castTo(hf.dataType())).amaxNumber().doubleValue());
    }
    System.out.printf("%s: max |Δlogits| vs transformers over %s steps = %.3g%n", what, stepLogits.size(), worst);
    assertTrue(worst <= tolerance, what + ": max |Δlogits| " + worst);
  }
}
