package dev.peft4j.models;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Bert;
import dev.peft4j.model.Heads;
import dev.peft4j.model.OnnxExport;
import dev.peft4j.model.PretrainedModels;
import dev.peft4j.model.Tokenizer;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * LoRA q, v on the real all-MiniLM-L6-v2 with a trained classification head, merged, written back into the bundled
 * ONNX file with {@link OnnxExport}, and run by onnxruntime: its {@code last_hidden_state} is the merged model's.
 */
class OnnxExportMiniLmTest {

  private static final long SEED = 2424;
  private static final String ONNX = "/all-minilm-l6-v2.onnx";
  private static final List<String> TEXTS = List.of(
      "The quick brown fox jumps over the lazy dog.",
      "Merging folds the low-rank update into the weights, so inference costs nothing extra.",
      "Hi!");

  @Test
  void exportedFileServesTheMergedEncoder(@TempDir Path tmp) throws Exception {
    PretrainedModels.Encoder m = PretrainedModels.miniLm(64);
    Tokenizer.Encoded tokens = m.tokenizer().encode(TEXTS);
    m.tokenizer().close();
    Map<String, INDArray> inputs = tokens.bertInputs();
    SameDiff sd = Heads.sequenceClassification(m.sameDiff(), m.config().hiddenSize(), 2, Heads.Pooling.MEAN, 3);
    PeftModel model = Peft.lora(8).alpha(16).target("query", "value").modulesToSave(Heads.CLASSIFIER).apply(sd);
    // B starts at zero (identity); random B, as training would leave it, makes the merge change every q and v
    System.out.println("OnnxExportMiniLmTest seed " + SEED);
    Nd4j.getRandom().setSeed(SEED);
    List<String> loraB = model.trainableParameters().names().stream().filter(n -> n.contains("lora_B")).toList();
    assertEquals(12, loraB.size(), "q and v × 6 layers");
    for (String b : loraB) {
      INDArray array = sd.getArrForVarName(b);
      array.assign(Nd4j.randn(DataType.FLOAT, array.shape()).muli(0.05));
    }
    Path target = tmp.resolve("all-minilm-l6-v2-merged.onnx");

    IllegalStateException unmerged = assertThrows(IllegalStateException.class,
        () -> OnnxExport.writeMerged(sd, resource(), "all-minilm-l6-v2.onnx", target));
    assertTrue(unmerged.getMessage().contains("PeftModel.mergeAndUnload()"), unmerged.getMessage());
    assertFalse(Files.exists(target), "an unmerged model writes nothing");

    INDArray adapted = model.output(inputs, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE);
    SameDiff merged = model.mergeAndUnload();
    INDArray ours = merged.output(inputs, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE);
    OnnxExport.Result result;
    try (InputStream in = resource()) {
      result = OnnxExport.writeMerged(merged, in, "all-minilm-l6-v2.onnx", target);
    }

    assertEquals(101, result.replaced().size(), "every float initializer: " + result.replaced());
    assertEquals(List.of("embeddings.position_ids"), result.copied());
    assertEquals(List.of(Heads.CLASSIFIER + ".bias", Heads.CLASSIFIER + ".weight"), result.notExported(),
        "the head is not part of the ONNX graph");
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    float[][][] exported;
    float[][][] base;
    try (OrtSession session = env.createSession(target.toString(), new OrtSession.SessionOptions())) {
      exported = run(env, session, tokens);
    }
    try (InputStream in = resource();
         OrtSession session = env.createSession(in.readAllBytes(), new OrtSession.SessionOptions())) {
      base = run(env, session, tokens);
    }
    double exportVsMerged = maxDiffOnRealTokens(ours, exported, tokens);
    double exportVsBase = maxDiffOnRealTokens(ours, base, tokens);
    System.out.printf("max |Δ| on real tokens: export vs peft4j merged %.2e, base file vs merged %.2e, "
        + "adapted vs merged %.2e%n", exportVsMerged, exportVsBase, adapted.sub(ours).amaxNumber().doubleValue());
    assertTrue(exportVsBase > 1e-2, "the adapter changed the output: base vs merged " + exportVsBase);
    assertTrue(exportVsMerged <= 1e-4, "onnxruntime on the export vs peft4j merged: " + exportVsMerged);
  }

  private static InputStream resource() {
    return PretrainedModels.class.getResourceAsStream(ONNX);
  }

  private static float[][][] run(OrtEnvironment env, OrtSession session, Tokenizer.Encoded e) throws Exception {
    try (OnnxTensor ids = OnnxTensor.createTensor(env, e.inputIds().toLongMatrix());
         OnnxTensor mask = OnnxTensor.createTensor(env, e.attentionMask().toLongMatrix());
         OnnxTensor types = OnnxTensor.createTensor(env, e.tokenTypeIds().toLongMatrix());
         OrtSession.Result r = session.run(Map.of("input_ids", ids, "attention_mask", mask, "token_type_ids",
             types))) {
      return (float[][][]) r.get(0).getValue();
    }
  }

  private static double maxDiffOnRealTokens(INDArray ours, float[][][] reference, Tokenizer.Encoded e) {
    assertEquals(reference.length * reference[0].length * reference[0][0].length, ours.length(), "same shape");
    double max = 0;
    for (int b = 0; b < reference.length; b++) {
      for (int t = 0; t < reference[b].length; t++) {
        if (e.attentionMask().getLong(b, t) == 0) {
          continue;
        }
        for (int c = 0; c < reference[b][t].length; c++) {
          max = Math.max(max, Math.abs(ours.getDouble(b, t, c) - reference[b][t][c]));
        }
      }
    }
    return max;
  }
}
