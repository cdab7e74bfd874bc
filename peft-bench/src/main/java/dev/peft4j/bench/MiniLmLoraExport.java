package dev.peft4j.bench;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.OnnxExport;
import dev.peft4j.model.PretrainedModels;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Writes the ONNX file that {@link MiniLmBenchmark#onnxRuntimeExportedForward} and {@code scripts/bench_onnxruntime.py}
 * measure: all-MiniLM-L6-v2 with LoRA r=16, alpha 32 on query and value, B drawn at random (seeded) as training would
 * leave it, merged and written back into the bundled ONNX file with {@link OnnxExport}. Inference time does not
 * depend on the values, so no training is needed; the file is the one a trained adapter gives, byte layout and all.
 * <pre>
 *   mvn -o -q -pl peft-bench exec:java@minilm-lora-export -Dexec.args=/tmp/merged.onnx
 * </pre>
 */
public final class MiniLmLoraExport {

  private static final long SEED = 24;

  private MiniLmLoraExport() {}

  public static void main(String[] args) throws IOException {
    if (args.length != 1) {
      System.err.println("usage: MiniLmLoraExport TARGET.onnx");
      System.exit(2);
    }
    OnnxExport.Result r = write(Path.of(args[0]));
    System.out.printf("%s: %d initializers replaced, %d copied, left out: %s%n", r.file(), r.replaced().size(),
        r.copied().size(), r.notExported());
  }

  /** Writes the merged model to {@code target} (atomically); see the class Javadoc. */
  static OnnxExport.Result write(Path target) throws IOException {
    SameDiff sd = PretrainedModels.miniLm(128).sameDiff();
    PeftModel model = Peft.lora(16).alpha(32).target("query", "value").apply(sd);
    Nd4j.getRandom().setSeed(SEED);
    for (String name : model.trainableParameters().names()) {
      if (name.contains("lora_B")) {
        INDArray b = sd.getArrForVarName(name);
        b.assign(Nd4j.randn(DataType.FLOAT, b.shape()).muli(0.05));
      }
    }
    SameDiff merged = model.mergeAndUnload();
    try (InputStream base = PretrainedModels.class.getResourceAsStream("/all-minilm-l6-v2.onnx")) {
      return OnnxExport.writeMerged(merged, base, "all-minilm-l6-v2.onnx", target);
    }
  }
}
