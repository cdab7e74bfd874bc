package dev.peft4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import onnx.Onnx;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.shade.protobuf.ByteString;

/**
 * {@link OnnxExport} on a hand-made ONNX graph with every layout an export holds: an anonymous MatMul weight
 * {@code [in, out]}, a named Gemm weight {@code [out, in]} ({@code transB = 1}), biases and a norm weight, one bias in
 * {@code float_data} instead of {@code raw_data}, and an int64 initializer the model does not hold. The real model is
 * checked in peft-methods' {@code OnnxExportMiniLmTest}.
 * <pre>
 *   x [n, 3] → MatMul(onnx::MatMul_1 [3, 2]) + dense.bias [2] → · norm.weight [2]
 *            → Gemm(head.weight [4, 2], head.bias [4], transB = 1) → out [n, 4]
 * </pre>
 */
class OnnxExportTest {

  private static final long SEED = 24;

  @Test
  void exportedFileComputesWhatTheModelComputes(@TempDir Path tmp) throws Exception {
    Path base = tmp.resolve("base.onnx");
    Files.write(base, baseModel().toByteArray());
    SameDiff sd = model(3);
    sd.var("classifier.weight", Nd4j.ones(DataType.FLOAT, 4, 2)); // trained, but not part of the ONNX graph
    Path target = tmp.resolve("merged.onnx");

    OnnxExport.Result result = OnnxExport.writeMerged(sd, base, target);

    assertEquals(List.of("dense.weight", "dense.bias", "norm.weight", "head.weight", "head.bias"), result.replaced());
    assertEquals(List.of("position_ids"), result.copied());
    assertEquals(List.of("classifier.weight"), result.notExported());
    INDArray x = Nd4j.rand(DataType.FLOAT, 5, 3).subi(0.5);
    INDArray expected = sd.output(Map.of("x", x), "out").get("out");
    float[][] actual;
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    try (OrtSession session = env.createSession(target.toString(), new OrtSession.SessionOptions());
         OnnxTensor input = OnnxTensor.createTensor(env, x.toFloatMatrix());
         OrtSession.Result r = session.run(Map.of("x", input))) {
      actual = (float[][]) r.get(0).getValue();
    }
    double maxDiff = 0;
    for (int i = 0; i < 5; i++) {
      for (int j = 0; j < 4; j++) {
        maxDiff = Math.max(maxDiff, Math.abs(actual[i][j] - expected.getDouble(i, j)));
      }
    }
    assertTrue(expected.amaxNumber().doubleValue() > 0.1, "output is not degenerate: " + expected);
    assertTrue(maxDiff <= 1e-5, "onnxruntime on the export vs the model: max abs diff " + maxDiff);

    Onnx.GraphProto written = Onnx.ModelProto.parseFrom(Files.readAllBytes(target)).getGraph();
    Onnx.GraphProto original = baseModel().getGraph();
    assertEquals(original.getNodeList(), written.getNodeList(), "the graph is unchanged");
    assertEquals(original.getInitializer(5), written.getInitializer(5), "position_ids copied unchanged");
    Onnx.TensorProto bias = written.getInitializer(1);
    assertTrue(bias.getRawData().isEmpty(), "dense.bias stays in float_data");
    assertEquals(sd.getArrForVarName("dense.bias").getFloat(1), bias.getFloatData(1));
    assertArrayEquals(sd.getArrForVarName("head.weight").transpose().dup('c').data().asFloat(),
        floats(written.getInitializer(3)), "head.weight written [out, in], as Gemm(transB = 1) reads it");
    assertArrayEquals(sd.getArrForVarName("dense.weight").dup('c').data().asFloat(),
        floats(written.getInitializer(0)), "the anonymous MatMul weight written [in, out], as it was");
  }

  @Test
  void refusesAModelThatStillHoldsAdapterVariables(@TempDir Path tmp) throws IOException {
    Path base = tmp.resolve("base.onnx");
    Files.write(base, baseModel().toByteArray());
    SameDiff sd = model(3);
    sd.var("peft/default/lora/dense/lora_A", Nd4j.zeros(DataType.FLOAT, 2, 3));
    Path target = tmp.resolve("merged.onnx");

    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> OnnxExport.writeMerged(sd, base, target));

    assertTrue(e.getMessage().contains("1 adapter variables (e.g. [peft/default/lora/dense/lora_A])"),
        e.getMessage());
    assertTrue(e.getMessage().contains("PeftModel.mergeAndUnload()"), e.getMessage());
    assertFalse(Files.exists(target), "nothing written");
  }

  @Test
  void refusesAFileThatIsNotTheModelsBase(@TempDir Path tmp) throws IOException {
    Path base = tmp.resolve("base.onnx");
    Files.write(base, baseModel().toByteArray());
    SameDiff other = SameDiff.create();
    other.var("encoder.layer.0.attention.self.query.weight", Nd4j.ones(DataType.FLOAT, 3, 2));
    Path target = tmp.resolve("merged.onnx");
    Files.writeString(target, "an older export");

    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> OnnxExport.writeMerged(other, base, target));

    assertTrue(e.getMessage().contains("is not the base of this model: 5 of its 5 float initializers have no "
        + "variable of that name in the model (e.g. [dense.weight, dense.bias, norm.weight, head.weight, "
        + "head.bias])"), e.getMessage());
    assertTrue(e.getMessage().contains("encoder.layer.0.attention.self.query.weight"), e.getMessage());
    assertEquals("an older export", Files.readString(target), "an existing target is left as it was");
    try (var files = Files.list(tmp)) {
      assertEquals(List.of(), files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".tmp")).toList(),
          "no temporary file left");
    }
  }

  @Test
  void refusesAShapeMismatchNamingBothShapes(@TempDir Path tmp) throws IOException {
    Path base = tmp.resolve("base.onnx");
    Files.write(base, baseModel().toByteArray());
    SameDiff wider = model(4);   // dense.weight [4, 2] where the file holds [3, 2]
    Path target = tmp.resolve("merged.onnx");

    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> OnnxExport.writeMerged(wider, base, target));

    assertTrue(e.getMessage().contains("'dense.weight' (onnx::MatMul_1): the model gives [4, 2], the file holds "
        + "[3, 2]"), e.getMessage());
    assertFalse(Files.exists(target), "nothing written");
  }

  @Test
  void refusesAFileThatIsNotOnnx(@TempDir Path tmp) {
    Path target = tmp.resolve("merged.onnx");

    IOException e = assertThrows(IOException.class, () -> OnnxExport.writeMerged(model(3),
        new ByteArrayInputStream(new byte[] {(byte) 0xff, 1, 2, 3}), "garbage.bin", target));

    assertTrue(e.getMessage().startsWith("garbage.bin: not an ONNX model"), e.getMessage());
    assertFalse(Files.exists(target), "nothing written");
  }

  /** The SameDiff twin of {@link #baseModel()} with seeded values unlike the file's, input width {@code in}. */
  private static SameDiff model(int in) {
    Nd4j.getRandom().setSeed(SEED);
    System.out.println("OnnxExportTest seed " + SEED);
    SameDiff sd = SameDiff.create();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, in);                         // [n, in]
    SDVariable w = sd.var("dense.weight", Nd4j.rand(DataType.FLOAT, in, 2).subi(0.5));  // [in, 2]
    SDVariable b = sd.var("dense.bias", Nd4j.rand(DataType.FLOAT, 2));
    SDVariable g = sd.var("norm.weight", Nd4j.rand(DataType.FLOAT, 2).addi(0.5));
    SDVariable hw = sd.var("head.weight", Nd4j.rand(DataType.FLOAT, 2, 4).subi(0.5));   // [2, 4]: [in, out]
    SDVariable hb = sd.var("head.bias", Nd4j.rand(DataType.FLOAT, 4));
    SDVariable hidden = x.mmul(w).add(b).mul(g);                                        // [n, 2]
    hidden.mmul(hw).add("out", hb);                                                     // [n, 4]
    return sd;
  }

  /** The ONNX graph of the class Javadoc, with values that differ from {@link #model}'s. */
  static Onnx.ModelProto baseModel() {
    Onnx.GraphProto.Builder g = Onnx.GraphProto.newBuilder().setName("tiny")
        .addInitializer(raw("onnx::MatMul_1", new long[] {3, 2}, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f))
        .addInitializer(Onnx.TensorProto.newBuilder().setName("dense.bias").addDims(2)
            .setDataType(Onnx.TensorProto.DataType.FLOAT.getNumber()).addFloatData(0.01f).addFloatData(0.02f))
        .addInitializer(raw("norm.weight", new long[] {2}, 1f, 1f))
        .addInitializer(raw("head.weight", new long[] {4, 2}, 1, 2, 3, 4, 5, 6, 7, 8))
        .addInitializer(raw("head.bias", new long[] {4}, 0, 0, 0, 0))
        .addInitializer(Onnx.TensorProto.newBuilder().setName("position_ids").addDims(1).addDims(4)
            .setDataType(Onnx.TensorProto.DataType.INT64.getNumber())
            .addInt64Data(0).addInt64Data(1).addInt64Data(2).addInt64Data(3))
        .addNode(node("MatMul", "/dense/MatMul", List.of("x", "onnx::MatMul_1"), "h"))
        .addNode(node("Add", "/dense/Add", List.of("h", "dense.bias"), "hb"))
        .addNode(node("Mul", "/norm/Mul", List.of("hb", "norm.weight"), "hn"))
        .addNode(node("Gemm", "/head/Gemm", List.of("hn", "head.weight", "head.bias"), "out").toBuilder()
            .addAttribute(Onnx.AttributeProto.newBuilder().setName("transB").setI(1)
                .setType(Onnx.AttributeProto.AttributeType.INT)))
        .addInput(floatMatrix("x", 3))
        .addOutput(floatMatrix("out", 4));
    return Onnx.ModelProto.newBuilder().setIrVersion(7).setProducerName("OnnxExportTest")
        .addOpsetImport(Onnx.OperatorSetIdProto.newBuilder().setDomain("").setVersion(13)).setGraph(g).build();
  }

  private static Onnx.TensorProto raw(String name, long[] dims, float... values) {
    ByteBuffer bytes = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    bytes.asFloatBuffer().put(values);
    Onnx.TensorProto.Builder t = Onnx.TensorProto.newBuilder().setName(name)
        .setDataType(Onnx.TensorProto.DataType.FLOAT.getNumber()).setRawData(ByteString.copyFrom(bytes.array()));
    for (long d : dims) {
      t.addDims(d);
    }
    return t.build();
  }

  private static float[] floats(Onnx.TensorProto t) {
    ByteBuffer raw = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    float[] values = new float[raw.remaining() / 4];
    raw.asFloatBuffer().get(values);
    return values;
  }

  private static Onnx.NodeProto node(String op, String name, List<String> inputs, String output) {
    return Onnx.NodeProto.newBuilder().setOpType(op).setName(name).addAllInput(inputs).addOutput(output).build();
  }

  private static Onnx.ValueInfoProto floatMatrix(String name, int columns) {
    Onnx.TensorShapeProto shape = Onnx.TensorShapeProto.newBuilder()
        .addDim(Onnx.TensorShapeProto.Dimension.newBuilder().setDimParam("n"))
        .addDim(Onnx.TensorShapeProto.Dimension.newBuilder().setDimValue(columns)).build();
    return Onnx.ValueInfoProto.newBuilder().setName(name).setType(Onnx.TypeProto.newBuilder().setTensorType(
        Onnx.TypeProto.Tensor.newBuilder().setElemType(Onnx.TensorProto.DataType.FLOAT.getNumber())
            .setShape(shape))).build();
  }
}
