package dev.peft4j.model;

import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSet;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import onnx.Onnx;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * An ONNX export used as a weight container only: its initializers, named as Hugging Face names them.
 *
 * <p>Named initializers keep their names. Anonymous {@code MatMul} weights ({@code onnx::MatMul_787}) get the
 * module name of the node that consumes them: {@code /encoder/layer.0/attention/self/query/MatMul} →
 * {@code encoder.layer.0.attention.self.query.weight}. ONNX MatMul weights are stored {@code [in, out]} — ND4J's
 * orientation already — so {@link #linearWeight} returns them as they are and {@link #tensor} transposes them to
 * PyTorch's {@code [out, in]}. The graph itself is never imported.
 */
public final class OnnxWeights implements Weights {

  private final String source;
  private final ImmutableMap<String, INDArray> tensors;   // HF name → array as stored
  private final ImmutableSet<String> storedInOut;        // names whose array is [in, out]

  private OnnxWeights(String source, ImmutableMap<String, INDArray> tensors, ImmutableSet<String> storedInOut) {
    this.source = source;
    this.tensors = tensors;
    this.storedInOut = storedInOut;
  }

  /** The ONNX model in {@code in}; {@code source} names it in the error when the bytes are not one. */
  static Onnx.ModelProto parse(InputStream in, String source) throws IOException {
    try {
      return Onnx.ModelProto.parseFrom(in);
    } catch (IOException e) {
      throw new IOException(source + ": not an ONNX model (" + e.getMessage() + ")", e);
    }
  }

  /**
   * Reads the initializers of an ONNX model.
   *
   * @param source a name for error messages (the file or resource)
   * @throws IOException if the stream is not an ONNX model or holds an initializer type other than float/int64
   */
  public static OnnxWeights read(InputStream in, String source) throws IOException {
    Onnx.GraphProto graph = parse(in, source).getGraph();
    if (graph.getInitializerCount() == 0) {
      throw new IOException(source + ": the ONNX graph has no initializers (weights)");
    }
    Map<String, HfName> names = hfNames(graph);
    ImmutableMap.Builder<String, INDArray> tensors = ImmutableMap.builder();
    ImmutableSet.Builder<String> inOut = ImmutableSet.builder();
    for (Onnx.TensorProto t : graph.getInitializerList()) {
      HfName name = names.get(t.getName());
      if (name.storedInOut()) {
        inOut.add(name.name());
      }
      tensors.put(name.name(), toArray(t, source));
    }
    return new OnnxWeights(source, tensors.buildKeepingLast(), inOut.build());
  }

  /**
   * An initializer's Hugging Face name, and whether it is an anonymous MatMul weight stored {@code [in, out]}.
   */
  record HfName(String name, boolean storedInOut) {}

  /** Every initializer's {@link HfName}, by initializer name, in the graph's order. */
  static Map<String, HfName> hfNames(Onnx.GraphProto graph) {
    Map<String, String> matmulWeightOwner = new HashMap<>();
    for (Onnx.NodeProto node : graph.getNodeList()) {
      if (node.getOpType().equals("MatMul") && node.getInputCount() == 2) {
        matmulWeightOwner.put(node.getInput(1), moduleOf(node.getName()));
      }
    }
    Map<String, HfName> names = new LinkedHashMap<>();
    for (Onnx.TensorProto t : graph.getInitializerList()) {
      String name = t.getName();
      String owner = matmulWeightOwner.get(name);
      names.put(name, owner != null && !name.endsWith(".weight") ? new HfName(owner + ".weight", true)
          : new HfName(name, false));
    }
    return names;
  }

  /** {@code /encoder/layer.0/attention/self/query/MatMul} → {@code encoder.layer.0.attention.self.query}. */
  static String moduleOf(String nodeName) {
    String path = nodeName.startsWith("/") ? nodeName.substring(1) : nodeName;
    int last = path.lastIndexOf('/');
    return (last < 0 ? path : path.substring(0, last)).replace('/', '.');
  }

  private static INDArray toArray(Onnx.TensorProto t, String source) throws IOException {
    long[] shape = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
    ByteBuffer raw = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    switch (t.getDataType()) {
      case 1 -> { // FLOAT
        float[] values;
        if (t.getRawData().isEmpty()) {
          values = new float[t.getFloatDataCount()];
          for (int i = 0; i < values.length; i++) {
            values[i] = t.getFloatData(i);
          }
        } else {
          values = new float[raw.remaining() / 4];
          raw.asFloatBuffer().get(values);
        }
        return Nd4j.create(values, shape, 'c');
      }
      case 7 -> { // INT64
        long[] values;
        if (t.getRawData().isEmpty()) {
          values = t.getInt64DataList().stream().mapToLong(Long::longValue).toArray();
        } else {
          values = new long[raw.remaining() / 8];
          raw.asLongBuffer().get(values);
        }
        return Nd4j.createFromArray(values).reshape(shape);
      }
      default -> throw new IOException(String.format("%s: initializer '%s' has ONNX data type %s; only float and "
          + "int64 are read", source, t.getName(), t.getDataType()));
    }
  }

  @Override
  public boolean has(String name) {
    return tensors.containsKey(name);
  }

  @Override
  public Set<String> names() {
    return tensors.keySet();
  }

  @Override
  public INDArray tensor(String name) {
    INDArray t = require(name);
    return storedInOut.contains(name) ? t.transpose().dup('c') : t;
  }

  @Override
  public INDArray linearWeight(String module) {
    String name = module + ".weight";
    INDArray t = require(name);
    return storedInOut.contains(name) ? t : t.transpose().dup('c');
  }

  private INDArray require(String name) {
    INDArray t = tensors.get(name);
    if (t == null) {
      List<String> similar = tensors.keySet().stream().filter(n -> n.startsWith(name.split("\\.")[0])).limit(8)
          .toList();
      throw new IllegalArgumentException(String.format("%s has no tensor '%s' (%d tensors; e.g. %s)", source, name,
          tensors.size(), similar.isEmpty() ? tensors.keySet().asList().subList(0, Math.min(8, tensors.size()))
              : similar));
    }
    return t;
  }
}
