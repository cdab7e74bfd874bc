package dev.peft4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Our MiniLM graph against onnxruntime running the very ONNX file whose weights it uses. */
class MiniLmParityTest {

  static final List<String> SENTENCES = List.of(
      "The quick brown fox jumps over the lazy dog.",
      "Parameter-efficient fine-tuning adapts a frozen model with a few trainable weights.",
      "Hi!",
      "Low-rank adaptation adds a product of two thin matrices beside each targeted weight, and merging folds it "
          + "back in so that inference costs nothing extra.");

  static PretrainedModels.Encoder miniLm;
  static OrtEnvironment env;
  static OrtSession session;

  @BeforeAll
  static void load() throws Exception {
    miniLm = PretrainedModels.miniLm(64);
    env = OrtEnvironment.getEnvironment();
    try (InputStream in = PretrainedModels.class.getResourceAsStream(PretrainedModels.MINILM_ONNX)) {
      session = env.createSession(in.readAllBytes(), new OrtSession.SessionOptions());
    }
  }

  @AfterAll
  static void close() throws Exception {
    session.close();
    miniLm.tokenizer().close();
  }

  @Test
  void tokenizerPadsOnTheRightAndAddsSpecialTokens() {
    Tokenizer.Encoded e = miniLm.tokenizer().encode(SENTENCES);
    long[] shape = e.inputIds().shape();
    assertEquals(4, shape[0]);
    assertEquals(101, e.inputIds().getLong(0, 0), "[CLS]");
    long realOfShortest = e.attentionMask().getRow(2).sumNumber().longValue();
    assertEquals(102, e.inputIds().getLong(2, realOfShortest - 1), "[SEP] ends the real tokens");
    assertEquals(0, e.inputIds().getLong(2, realOfShortest), "[PAD] after");
    assertTrue(shape[1] <= 64, "truncated to maxLength");
  }

  @Test
  void lastHiddenStateMatchesOnnxRuntimeOnRealTokens() throws Exception {
    Tokenizer.Encoded e = miniLm.tokenizer().encode(SENTENCES);
    INDArray ours = miniLm.sameDiff().output(e.bertInputs(), Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE);
    float[][][] reference;
    try (OnnxTensor ids = OnnxTensor.createTensor(env, e.inputIds().toLongMatrix());
         OnnxTensor mask = OnnxTensor.createTensor(env, e.attentionMask().toLongMatrix());
         OnnxTensor types = OnnxTensor.createTensor(env, e.tokenTypeIds().toLongMatrix());
         OrtSession.Result result = session.run(Map.of("input_ids", ids, "attention_mask", mask,
             "token_type_ids", types))) {
      reference = (float[][][]) result.get(0).getValue();
    }
    assertArrayEquals(new long[] {reference.length, reference[0].length, reference[0][0].length}, ours.shape());
    double maxDiff = 0;
    double maxAbs = 0;
    for (int b = 0; b < reference.length; b++) {
      for (int t = 0; t < reference[b].length; t++) {
        if (e.attentionMask().getLong(b, t) == 0) {
          continue;
        }
        for (int c = 0; c < reference[b][t].length; c++) {
          maxDiff = Math.max(maxDiff, Math.abs(ours.getDouble(b, t, c) - reference[b][t][c]));
          maxAbs = Math.max(maxAbs, Math.abs(reference[b][t][c]));
        }
      }
    }
    assertTrue(maxAbs > 0.5, "reference is not degenerate: " + maxAbs);
    assertTrue(maxDiff <= 1e-4, "max abs diff on real tokens " + maxDiff);
  }
}
