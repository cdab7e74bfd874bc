package dev.peft4j.model;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.io.AtomicFiles;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import onnx.Onnx;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.shade.protobuf.ByteString;

/**
 * Writes a merged model back into the ONNX file its weights came from: the same graph, with every initializer the
 * model holds replaced by the model's values, so that onnxruntime, or any ONNX consumer (langchain4j's embedding
 * models, say), serves the fine-tuned model.
 * <pre>{@code
 * PeftModel m = Peft.lora(16).target("query", "value").apply(PretrainedModels.miniLm(128).sameDiff());
 * ...                                                   // train
 * SameDiff merged = m.mergeAndUnload();
 * OnnxExport.Result r = OnnxExport.writeMerged(merged, Path.of("all-minilm-l6-v2.onnx"), Path.of("tuned.onnx"));
 * }</pre>
 * Initializers are matched to the model's variables by the names {@link OnnxWeights} gives them, and each is written
 * in its own layout, the inverse of what reading did:
 * <pre>
 *   anonymous MatMul weight   onnx::MatMul_787 [in, out]          ← encoder.layer.0.attention.self.query.weight
 *                                                                   [in, out], as it is
 *   named tensor              embeddings.LayerNorm.weight [384]    ← the variable of that name, as it is
 *   named linear weight       pooler.dense.weight [out, in]        ← the variable [in, out], transposed
 * </pre>
 * Values are written as float32, in the encoding the original used ({@code raw_data} or {@code float_data}); the
 * graph, the other fields and initializers the model does not hold ({@code embeddings.position_ids}) are copied
 * unchanged.
 *
 * <p>Only what the ONNX graph computes can be exported into it. For an encoder that is the encoder
 * ({@code last_hidden_state}), which is what an embedding model consumes; a classification head, or any other
 * trained variable with no initializer in the file, is left out and listed in {@link Result#notExported()}.
 */
public final class OnnxExport {

  private static final int FLOAT = Onnx.TensorProto.DataType.FLOAT.getNumber();

  private OnnxExport() {}

  /**
   * What {@link #writeMerged} wrote.
   *
   * @param file        the ONNX file written
   * @param replaced    the initializers given the model's values, by their Hugging Face names
   * @param copied      the initializers the model does not hold, copied unchanged (by their names in the file)
   * @param notExported the model's trainable variables that have no initializer in the file (a classification
   *                    head, say): not in the exported file
   */
  public record Result(Path file, List<String> replaced, List<String> copied, List<String> notExported) {}

  /**
   * Writes {@code baseOnnx} with its initializers replaced by {@code merged}'s values to {@code target},
   * atomically (see {@link AtomicFiles}); {@code target} may be {@code baseOnnx} itself.
   *
   * @param merged the model's graph with its adapters merged and unloaded ({@code PeftModel.mergeAndUnload()})
   * @throws IllegalStateException    if {@code merged} still holds adapter variables ({@code peft/…}); nothing is
   *                                  written then
   * @throws IllegalArgumentException if the file is not this model's base (float initializers with no variable of
   *                                  that name, listed), if a variable's shape differs from its initializer's (both
   *                                  named), or if a replaced initializer is not float32 or is stored outside the
   *                                  file; nothing is written then
   * @throws IOException              if {@code baseOnnx} is not an ONNX model, or reading or writing fails
   */
  public static Result writeMerged(SameDiff merged, Path baseOnnx, Path target) throws IOException {
    checkNotNull(baseOnnx, "baseOnnx");
    try (InputStream in = Files.newInputStream(baseOnnx)) {
      return writeMerged(merged, in, baseOnnx.toString(), target);
    }
  }

  /**
   * As {@link #writeMerged(SameDiff, Path, Path)}, reading the base model from a stream (a classpath resource, say).
   *
   * @param source a name for error messages (the file or resource)
   */
  public static Result writeMerged(SameDiff merged, InputStream baseOnnx, String source, Path target)
      throws IOException {
    checkNotNull(merged, "merged");
    checkNotNull(baseOnnx, "baseOnnx");
    checkNotNull(target, "target");
    List<String> adapterVariables = merged.variables().stream().map(SDVariable::name)
        .filter(n -> n.startsWith("peft/")).toList();
    checkState(adapterVariables.isEmpty(), "the model still holds %s adapter variables (e.g. %s): an adapter that is "
        + "not merged and unloaded would be lost or wrongly applied in the export; export the graph "
        + "PeftModel.mergeAndUnload() returns", adapterVariables.size(), first(adapterVariables, 3));

    Onnx.ModelProto model = OnnxWeights.parse(baseOnnx, source);
    Onnx.GraphProto graph = model.getGraph();
    Map<String, OnnxWeights.HfName> names = OnnxWeights.hfNames(graph);
    Set<String> linearWeights = GraphRewriter.of(merged).linearModules().stream().map(LinearModule::weight)
        .collect(Collectors.toSet());

    Onnx.GraphProto.Builder out = graph.toBuilder();
    List<String> replaced = new ArrayList<>();
    List<String> copied = new ArrayList<>();
    List<String> missing = new ArrayList<>();
    List<String> mismatched = new ArrayList<>();
    int floats = 0;
    for (int i = 0; i < graph.getInitializerCount(); i++) {
      Onnx.TensorProto t = graph.getInitializer(i);
      OnnxWeights.HfName name = names.get(t.getName());
      boolean isFloat = t.getDataType() == FLOAT;
      floats += isFloat ? 1 : 0;
      INDArray value = holds(merged, name.name()) ? merged.getArrForVarName(name.name()) : null;
      if (value == null) {
        (isFloat ? missing : copied).add(t.getName());
        continue;
      }
      checkArgument(isFloat, "%s: initializer '%s' (%s) has ONNX data type %s; only float32 initializers are "
          + "replaced", source, t.getName(), name.name(), t.getDataType());
      checkArgument(t.getDataLocation() != Onnx.TensorProto.DataLocation.EXTERNAL, "%s: initializer '%s' is "
          + "stored outside the file (external data), which is not written", source, t.getName());
      // reading transposed exactly when the variable is a linear weight [in, out] and the file holds [out, in], or
      // the variable is a plain tensor and the file holds [in, out]; writing undoes it
      if (value.rank() == 2 && linearWeights.contains(name.name()) != name.storedInOut()) {
        value = value.transpose();
      }
      long[] expected = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
      if (!Arrays.equals(expected, value.shape())) {
        mismatched.add(String.format("'%s' (%s): the model gives %s, the file holds %s", name.name(), t.getName(),
            Arrays.toString(value.shape()), Arrays.toString(expected)));
        continue;
      }
      out.setInitializer(i, withValues(t, value));
      replaced.add(name.name());
    }
    checkArgument(missing.isEmpty() && (!replaced.isEmpty() || !mismatched.isEmpty()), "%s is not the base of this model: %s of its %s float initializers have no variable of that "
        + "name in the model (e.g. %s); the model's variables are e.g. %s", source, missing.size(), floats,
        first(missing.stream().map(n -> names.get(n).name()).toList(), 5), first(parameterNames(merged), 5));
    checkArgument(mismatched.isEmpty(), "%s: %s initializers differ in shape from the model's variables: %s",
        source, mismatched.size(), first(mismatched, 5));

    Set<String> written = new TreeSet<>(replaced);
    List<String> notExported = merged.variables().stream()
        .filter(v -> v.getVariableType() == VariableType.VARIABLE && v.dataType().isFPType())
        .map(SDVariable::name).filter(n -> !written.contains(n)).sorted().toList();

    Onnx.ModelProto exported = model.toBuilder().setGraph(out).build();
    AtomicFiles.write(target, channel -> {
      // not closed: closing the stream would close the channel, which AtomicFiles still forces to disk
      OutputStream stream = Channels.newOutputStream(channel);
      exported.writeTo(stream);
      stream.flush();
    });
    return new Result(target, List.copyOf(replaced), List.copyOf(copied), notExported);
  }

  /** Whether {@code name} is an array-backed variable of {@code sd} (a weight, trainable or frozen). */
  private static boolean holds(SameDiff sd, String name) {
    if (!sd.hasVariable(name)) {
      return false;
    }
    VariableType type = sd.getVariable(name).getVariableType();
    return (type == VariableType.VARIABLE || type == VariableType.CONSTANT) && sd.getArrForVarName(name) != null;
  }

  /** {@code t} with {@code value}'s elements in C order, as float32, in the encoding {@code t} used. */
  private static Onnx.TensorProto withValues(Onnx.TensorProto t, INDArray value) {
    float[] values = value.castTo(DataType.FLOAT).dup('c').data().asFloat();
    Onnx.TensorProto.Builder b = t.toBuilder();
    if (t.getRawData().isEmpty() && t.getFloatDataCount() > 0) {
      b.clearFloatData();
      for (float v : values) {
        b.addFloatData(v);
      }
    } else {
      ByteBuffer bytes = ByteBuffer.allocate(values.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
      bytes.asFloatBuffer().put(values);
      b.setRawData(ByteString.copyFrom(bytes.array()));
    }
    return b.build();
  }

  /** The model's float variables with a module-like name ({@code <module>.<param>}), for error messages. */
  private static List<String> parameterNames(SameDiff sd) {
    return sd.variables().stream().filter(v -> v.getVariableType() == VariableType.VARIABLE
        || v.getVariableType() == VariableType.CONSTANT).map(SDVariable::name).filter(n -> n.contains("."))
        .toList();
  }

  private static String first(List<String> items, int n) {
    return items.size() <= n ? items.toString()
        : items.subList(0, n) + " and " + (items.size() - n) + " more";
  }
}
