package dev.peft4j.quant;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.GraphRewriter.Created;
import dev.peft4j.graph.LinearModule;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Collection;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.autodiff.samediff.NameScope;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A base model whose linear weights are stored quantised ({@link Quantization}) inside its SameDiff graph, and
 * dequantised in the graph just before each matmul, so that between steps only the packed form is resident.
 * <pre>
 *   module m, weight W: [in, out] in the graph, [out, in] (Hugging Face's layout) when quantised
 *   constants  m.weight_nf4 | m.weight_int8   UINT8 | INT8 [blocks·blockSize/2 | blocks·blockSize]   the codes
 *              m.weight_absmax                 [blocks]                                      float block scales, or
 *              m.weight_absmax_q               UINT8 [blocks]            m.weight_absmax_scale [⌈blocks/256⌉]
 *              m.weight_absmax_offset          [1]                       (double quantisation)
 *              m.weight_shape                  INT64 [2] = [out, in]
 *   shared     quant_nf4_pairs [256, 2] (both nibbles' NF4 values of each byte), quant_dynamic_map [256]
 *   ops        NF4:  gather(quant_nf4_pairs, codes) [P, 2] → [blocks, blockSize] · absmax [blocks, 1]
 *              INT8: float(codes) [blocks, blockSize] · absmax [blocks, 1] / 127
 *              → flatten, drop the padding → [out, in] → transpose → m.weight_dequantized [in, out]
 *              absmax (double quantisation): gather(quant_dynamic_map, q) [blocks] · scale[j / 256] + offset
 * </pre>
 * One gather with the 256-row pair table unpacks both nibbles of a byte and looks up their NF4 values at once. The
 * dequantised weight is computed from constants only, so no gradient is computed for it: the layer's matmul computes
 * only {@code dX}.
 *
 * <p>Quantising is a property of the base, as loading a model in 4 bits is in Hugging Face: adapters are applied on
 * top, trained, saved as ordinary adapter files, and unloaded, and the base stays packed. Which modules:
 * {@link #quantize(SameDiff, Quantization)} takes every linear layer except the output heads (the layers with no
 * matmul downstream: a classifier, an LM head — kept in full precision, as bitsandbytes' users skip {@code lm_head});
 * embeddings and norms are not linear layers and stay as they are.
 *
 * <pre>{@code
 * SameDiff sd = Bert.classifier(...);
 * QuantizedBase.quantize(sd, Quantization.nf4());          // every linear but the head: NF4, double quantisation
 * PeftModel m = Peft.lora(16).target("query", "value").apply(sd);
 * }</pre>
 */
public final class QuantizedBase {

  private static final String NF4_PAIRS = "quant_nf4_pairs";
  private static final String DYNAMIC_MAP = "quant_dynamic_map";

  private QuantizedBase() {}

  /**
   * Quantises every linear layer of {@code sameDiff} except its output heads; see the class comment.
   *
   * @return the modules quantised, in graph order
   * @throws IllegalArgumentException if one of them is already quantised, or holds NaN or infinity; the graph is
   *     then untouched
   */
  public static List<String> quantize(SameDiff sameDiff, Quantization quantization) {
    GraphRewriter g = GraphRewriter.of(sameDiff);
    Set<String> heads = g.outputHeads();
    List<String> modules = g.linearModules().stream().map(LinearModule::name).filter(n -> !heads.contains(n))
        .toList();
    return quantize(sameDiff, quantization, modules);
  }

  /**
   * Quantises the named linear layers; all are checked (and quantised aside) before the graph is touched.
   *
   * @return {@code modules}, in the order given
   * @throws IllegalArgumentException if a name is no linear layer (naming those that exist), one is already
   *     quantised (naming its quantisation), or a weight holds NaN or infinity; the graph is then untouched
   */
  public static List<String> quantize(SameDiff sameDiff, Quantization quantization, Collection<String> modules) {
    checkArgument(quantization != null, "quantization must not be null");
    GraphRewriter g = GraphRewriter.of(sameDiff);
    Map<String, LinearModule> linear = linearByName(g);
    Map<LinearModule, QuantizedTensor> packed = new LinkedHashMap<>();
    for (String name : modules) {
      LinearModule m = linear.get(name);
      checkArgument(m != null, "'%s' is not a linear layer; linear layers: %s", name, linear.keySet());
      if (isQuantized(m)) {
        throw new IllegalArgumentException(String.format("module '%s' is quantised already (%s); quantising it "
            + "again would compound the error", name, read(sameDiff, m).quantization()));
      }
      List<String> readers = g.consumersOf(m.weight());
      checkArgument(readers.equals(List.of(m.matmulOp())), "module '%s': its weight is read by %s besides its matmul "
          + "'%s' (a tied or copied weight); it can only be quantised alone", name, readers, m.matmulOp());
      INDArray w = sameDiff.getArrForVarName(m.weight());                   // [in, out]
      try {
        packed.put(m, quantization.quantize(w.transpose()));                // as bitsandbytes: [out, in]
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("module '" + name + "': " + e.getMessage(), e);
      }
    }
    packed.forEach((m, t) -> install(sameDiff, g, m, t));
    return List.copyOf(modules);
  }

  /**
   * Replaces the float weight of linear layer {@code module} by {@code tensor}, e.g. a layer quantised elsewhere.
   *
   * @throws IllegalArgumentException if {@code module} is no linear layer, is quantised already, or
   *     {@code tensor}'s shape is not the layer's {@code [out, in]} (both shapes named); the graph is then untouched
   */
  public static void load(SameDiff sameDiff, String module, QuantizedTensor tensor) {
    GraphRewriter g = GraphRewriter.of(sameDiff);
    Map<String, LinearModule> linear = linearByName(g);
    LinearModule m = linear.get(module);
    checkArgument(m != null, "'%s' is not a linear layer; linear layers: %s", module, linear.keySet());
    if (isQuantized(m)) {
      throw new IllegalArgumentException(String.format("module '%s' is quantised already (%s)", module,
          read(sameDiff, m).quantization()));
    }
    List<String> readers = g.consumersOf(m.weight());
    checkArgument(readers.equals(List.of(m.matmulOp())), "module '%s': its weight is read by %s besides its matmul "
        + "'%s' (a tied or copied weight); it can only be quantised alone", module, readers, m.matmulOp());
    long[] expected = {m.outFeatures(), m.inFeatures()};
    checkArgument(Arrays.equals(tensor.shape(), expected), "a quantised tensor of shape %s does not fit module '%s', "
        + "whose weight is %s ([out, in], as Hugging Face; [in, out] in the graph)",
        Arrays.toString(tensor.shape()), module, Arrays.toString(expected));
    install(sameDiff, g, m, tensor);
  }

  /** Whether linear layer {@code m} reads a quantised weight. */
  public static boolean isQuantized(LinearModule m) {
    return m.weight().endsWith(GraphRewriter.DEQUANTIZED_WEIGHT);
  }

  /**
   * The quantised form of every quantised linear layer of {@code sameDiff}, read back from its constants.
   */
  public static Map<String, QuantizedTensor> packedWeights(SameDiff sameDiff) {
    Map<String, QuantizedTensor> out = new LinkedHashMap<>();
    for (LinearModule m : GraphRewriter.of(sameDiff).linearModules()) {
      if (isQuantized(m)) {
        out.put(m.name(), read(sameDiff, m));
      }
    }
    return out;
  }

  /**
   * The bytes the quantised weights of {@code sameDiff} keep resident (see {@link QuantizedTensor#residentBytes()}).
   */
  public static long residentBytes(SameDiff sameDiff) {
    return packedWeights(sameDiff).values().stream().mapToLong(QuantizedTensor::residentBytes).sum();
  }

  /**
   * The weight of linear layer {@code m} as its matmul sees it, {@code [in, out]}: for a quantised layer, computed by
   * the graph's own dequantisation (so bit for bit what the forward pass uses); otherwise a copy of the array.
   */
  public static INDArray weight(SameDiff sameDiff, LinearModule m) {
    if (!isQuantized(m)) {
      return sameDiff.getArrForVarName(m.weight()).dup();
    }
    return sameDiff.output(Map.of(), m.weight()).get(m.weight()).dup('c');
  }

  /** A quantised layer whose weight was replaced by a float one; {@link #restore} puts the packed form back. */
  public record Unpacked(String module, QuantizedTensor packed) {}

  /**
   * Replaces the quantised weight of {@code m} by a float constant {@code <module>.weight} holding {@code value}
   * ({@code [in, out]}), removing the packed constants and the dequantisation ops; {@link #restore} reverses it
   * exactly.
   * Used to merge an adapter into a quantised base (the merged weight stays in full precision).
   *
   * @throws IllegalArgumentException if {@code m} is not quantised or {@code value}'s shape is not {@code [in, out]}
   */
  public static Unpacked replaceWithFloat(SameDiff sameDiff, LinearModule m, INDArray value) {
    checkArgument(isQuantized(m), "module '%s' is not quantised", m.name());
    checkArgument(Arrays.equals(value.shape(), new long[] {m.inFeatures(), m.outFeatures()}),
        "module '%s': a merged weight of shape %s does not fit [%s, %s]", m.name(), Arrays.toString(value.shape()),
        m.inFeatures(), m.outFeatures());
    GraphRewriter g = GraphRewriter.of(sameDiff);
    QuantizedTensor packed = read(sameDiff, m);
    DataType type = sameDiff.getVariable(m.weight()).dataType();
    String floatWeight = m.name() + ".weight";
    Created constant = g.capture(() -> sameDiff.constant(floatWeight, value.castTo(type).dup('c')));
    g.setInput(m.matmulOp(), 1, floatWeight);
    g.remove(chain(sameDiff, m));
    return new Unpacked(m.name(), packed);
  }

  /**
   * Puts back the packed form {@link #replaceWithFloat} took out (the same codes and constants, bit for bit), in place
   * of the float weight.
   */
  public static void restore(SameDiff sameDiff, Unpacked unpacked) {
    GraphRewriter g = GraphRewriter.of(sameDiff);
    LinearModule m = g.linearModule(unpacked.module());
    checkState(!isQuantized(m), "module '%s' is quantised already", m.name());
    install(sameDiff, g, m, unpacked.packed());
  }

  // ---------------------------------------------------------------------------------------------- internals

  private static Map<String, LinearModule> linearByName(GraphRewriter g) {
    Map<String, LinearModule> out = new LinkedHashMap<>();
    g.linearModules().forEach(m -> out.put(m.name(), m));
    return out;
  }

  /** Builds the dequantisation of {@code t} and points {@code m}'s matmul at it; removes the float weight. */
  private static void install(SameDiff sd, GraphRewriter g, LinearModule m, QuantizedTensor t) {
    DataType type = sd.getVariable(m.weight()).dataType();
    String p = m.name() + ".weight_";
    String output = m.name() + GraphRewriter.DEQUANTIZED_WEIGHT;
    Quantization q = t.quantization();
    int blocks = t.blocks();
    int block = q.blockSize();
    long n = t.length();
    long[] shape = t.shape();                                                       // [out, in]
    g.capture(() -> {
      SDVariable rows;                                                                    // [out, in]
      try (NameScope ignored = sd.withNameScope("quant/" + m.name())) {
        sd.constant(m.name() + GraphRewriter.QUANTIZED_SHAPE, Nd4j.createFromArray(shape));
        SDVariable absmax;
        if (t.doubleQuantized()) {
          int nested = t.absmaxScales().length;
          SDVariable codes = sd.constant(p + "absmax_q", unsigned(t.absmaxCodes()));
          SDVariable scale = sd.constant(p + "absmax_scale", floats(t.absmaxScales(), type));
          SDVariable offset = sd.constant(p + "absmax_offset", floats(new float[] {t.absmaxOffset()}, type));
          SDVariable map = shared(sd, DYNAMIC_MAP, byByte(Codes.DYNAMIC, 1), type);         // [256, 1]
          SDVariable scales = sd.tile(scale.reshape(nested, 1), 1, Quantization.NESTED_BLOCK_SIZE)
              .reshape(nested * Quantization.NESTED_BLOCK_SIZE);                          // [nested·256]
          if (blocks != nested * Quantization.NESTED_BLOCK_SIZE) {
            scales = sd.slice(scales, new int[] {0}, new int[] {blocks});                 // [blocks]
          }
          absmax = sd.gather(map, codes.castTo(DataType.INT32), 0).reshape(blocks)         // [blocks]
              .mul(scales).add(offset);
        } else {
          absmax = sd.constant(p + "absmax", floats(t.storedAbsmax(), type));            // [blocks]
        }
        SDVariable values;
        if (q.format() == Quantization.Format.NF4) {
          SDVariable codes = sd.constant(p + "nf4", unsigned(t.data()));                  // [blocks·block/2]
          SDVariable pairs = shared(sd, NF4_PAIRS, byByte(Codes.NF4, 2), type);           // [256, 2]
          values = sd.gather(pairs, codes.castTo(DataType.INT32), 0)                      // [blocks·block/2, 2]
              .reshape(blocks, block).mul(absmax.reshape(blocks, 1));                     // [blocks, block]
        } else {
          SDVariable codes = sd.constant(p + "int8", Nd4j.createFromArray(t.data()));     // [blocks·block]
          values = codes.castTo(type).reshape(blocks, block).mul(absmax.reshape(blocks, 1)).div(127);
        }
        SDVariable flat = values.reshape((long) blocks * block);                          // [blocks·block]
        if (n != (long) blocks * block) {
          flat = sd.slice(flat, new int[] {0}, new int[] {(int) n});                      // [n]
        }
        rows = flat.reshape(shape[0], shape[1]);
      }
      sd.permute(output, rows, 1, 0);                // [in, out]; outside the scope, which would prefix the name
    });
    g.setInput(m.matmulOp(), 1, output);
    g.remove(new Created(Set.of(), Set.of(m.weight())));
  }

  /** The ops of {@code m}'s dequantisation and the variables only they use (the shared tables are kept). */
  private static Created chain(SameDiff sd, LinearModule m) {
    Set<String> ops = new LinkedHashSet<>();
    Set<String> vars = new LinkedHashSet<>();
    Deque<String> queue = new ArrayDeque<>(List.of(m.weight()));
    while (!queue.isEmpty()) {
      String v = queue.poll();
      if (!vars.add(v)) {
        continue;
      }
      DifferentialFunction op = sd.getVariableOutputOp(v);
      if (op == null || !ops.add(op.getOwnName())) {
        continue;
      }
      for (SDVariable out : op.outputVariables()) {
        queue.add(out.name());
      }
      for (SDVariable in : op.args()) {
        if (in.getVariableType() == VariableType.ARRAY || in.name().startsWith(m.name() + ".weight_")) {
          queue.add(in.name());
        }
      }
    }
    vars.add(m.name() + GraphRewriter.QUANTIZED_SHAPE);
    return new Created(ops, vars);
  }

  /** Reads the quantised form of {@code m} back from its constants. */
  static QuantizedTensor read(SameDiff sd, LinearModule m) {
    String p = m.name() + ".weight_";
    long[] shape = sd.getArrForVarName(m.name() + GraphRewriter.QUANTIZED_SHAPE).toLongVector();
    boolean nf4 = sd.hasVariable(p + "nf4");
    byte[] data = sd.getArrForVarName(p + (nf4 ? "nf4" : "int8")).data().asBytes();
    boolean nested = sd.hasVariable(p + "absmax_q");
    float[] absmax = nested ? null : sd.getArrForVarName(p + "absmax").castTo(DataType.FLOAT).toFloatVector();
    int blocks = nested ? sd.getArrForVarName(p + "absmax_q").data().asBytes().length : absmax.length;
    int stored = nf4 ? data.length * 2 : data.length;
    Quantization q = (nf4 ? Quantization.nf4() : Quantization.int8()).doubleQuant(nested).blockSize(stored / blocks);
    if (!nested) {
      return new QuantizedTensor(q, shape, data, absmax, null, null, 0f);
    }
    return new QuantizedTensor(q, shape, data, null, sd.getArrForVarName(p + "absmax_q").data().asBytes(),
        sd.getArrForVarName(p + "absmax_scale").castTo(DataType.FLOAT).toFloatVector(),
        sd.getArrForVarName(p + "absmax_offset").getFloat(0));
  }

  private static SDVariable shared(SameDiff sd, String name, float[][] table, DataType type) {
    String full = name + "_" + type.name().toLowerCase();
    return sd.hasVariable(full) ? sd.getVariable(full) : sd.constant(full, Nd4j.create(table).castTo(type));
  }

  /** Row u for each byte value u: the values of its {@code per} codes (NF4: high nibble, low nibble). */
  private static float[][] byByte(float[] code, int per) {
    float[][] out = new float[256][per];
    for (int u = 0; u < 256; u++) {
      if (per == 2) {
        out[u][0] = code[u >>> 4];
        out[u][1] = code[u & 0xf];
      } else {
        out[u][0] = code[u];
      }
    }
    return out;
  }

  /** {@code bytes} as a UINT8 array (the same bits), so that a cast gives the indices 0…255. */
  private static INDArray unsigned(byte[] bytes) {
    INDArray out = Nd4j.createUninitialized(DataType.UINT8, bytes.length);
    out.data().setData(bytes);
    return out;
  }

  private static INDArray floats(float[] values, DataType type) {
    return Nd4j.createFromArray(values).castTo(type);
  }
}
