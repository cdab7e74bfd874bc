package dev.peft4j.bench;

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
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
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

/** export-onnx on a LoRA adapter saved as compare saves it (adapter, head and task file) for the bundled MiniLM. */
class ExportOnnxTest {

  private static final long SEED = 2425;
  private static final List<String> LABELS = List.of("neg", "pos");

  @Test
  void exportedFileGivesTheMergedEncodersOutput(@TempDir Path tmp) throws Exception {
    Path adapter = tmp.resolve("adapters/lora");
    SameDiff sd = Compare.classifier(null, 16, LABELS.size(), 0);
    PeftModel model = Peft.lora(8).alpha(16).target("query", "value").modulesToSave(Heads.CLASSIFIER).apply(sd);
    System.out.println("ExportOnnxTest seed " + SEED);
    Nd4j.getRandom().setSeed(SEED);
    for (String name : model.trainableParameters().names()) {
      INDArray p = sd.getArrForVarName(name);
      if (name.contains("lora_B")) {
        p.assign(Nd4j.randn(DataType.FLOAT, p.shape()).muli(0.05));
      }
    }
    model.save(adapter);
    Predict.writeLabels(adapter, "lora", LABELS, 16, null);
    long[][] ids = {{101, 7592, 2088, 999, 102, 0}, {101, 1996, 4248, 2829, 4419, 102}};
    long[][] mask = {{1, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1}};
    long[][] types = new long[2][6];
    Map<String, INDArray> inputs = Map.of(Bert.INPUT_IDS, Nd4j.createFromArray(ids), Bert.ATTENTION_MASK,
        Nd4j.createFromArray(mask), Bert.TOKEN_TYPE_IDS, Nd4j.createFromArray(types));
    INDArray expected = model.mergeAndUnload().output(inputs, Bert.LAST_HIDDEN_STATE).get(Bert.LAST_HIDDEN_STATE);
    Path out = tmp.resolve("minilm-tuned.onnx");
    ByteArrayOutputStream progress = new ByteArrayOutputStream();

    OnnxExport.Result result = ExportOnnx.run(adapter, out, new PrintStream(progress, true, StandardCharsets.UTF_8));

    assertEquals(List.of("classifier.bias", "classifier.weight"), result.notExported());
    assertTrue(progress.toString(StandardCharsets.UTF_8).contains("left out: [classifier.bias, classifier.weight]"),
        progress.toString(StandardCharsets.UTF_8));
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    float[][][] actual;
    try (OrtSession session = env.createSession(out.toString(), new OrtSession.SessionOptions());
         OnnxTensor i = OnnxTensor.createTensor(env, ids);
         OnnxTensor m = OnnxTensor.createTensor(env, mask);
         OnnxTensor t = OnnxTensor.createTensor(env, types);
         OrtSession.Result r = session.run(Map.of("input_ids", i, "attention_mask", m, "token_type_ids", t))) {
      actual = (float[][][]) r.get(0).getValue();
    }
    double maxDiff = 0;
    for (int b = 0; b < 2; b++) {
      for (int s = 0; s < 6; s++) {
        for (int c = 0; c < 384 && mask[b][s] == 1; c++) {
          maxDiff = Math.max(maxDiff, Math.abs(actual[b][s][c] - expected.getDouble(b, s, c)));
        }
      }
    }
    assertTrue(maxDiff <= 1e-4, "onnxruntime on the export vs peft4j merged: " + maxDiff);
  }

  @Test
  void refusesAnAdapterTrainedOnAnotherBase(@TempDir Path tmp) throws Exception {
    Path adapter = Files.createDirectories(tmp.resolve("adapters/lora"));
    Predict.writeLabels(adapter, "lora", LABELS, 16, tmp.resolve("bert-checkpoint"));
    Path out = tmp.resolve("minilm-tuned.onnx");

    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> ExportOnnx.run(adapter, out, System.err));

    assertTrue(e.getMessage().contains("was trained on " + tmp.resolve("bert-checkpoint").toAbsolutePath()
        + "; export-onnx writes into the bundled all-MiniLM-L6-v2's ONNX file"), e.getMessage());
    assertFalse(Files.exists(out), "nothing written");
  }
}
