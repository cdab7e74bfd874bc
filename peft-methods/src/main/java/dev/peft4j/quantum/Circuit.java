package dev.peft4j.quantum;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The orthogonal {@code n × n} matrix {@code Q(θ)} of one side of a Quantum-PEFT update, as a circuit on the
 * mixed-radix register {@code n = d_1·d_2·…·d_m} (the prime factors of n, ascending); see the package documentation
 * for the math. Two evaluations of the same circuit: on a graph's activations ({@link #apply(SameDiff, String,
 * SDVariable, SDVariable, boolean)}, the training path) and on arrays ({@link #apply(INDArray, INDArray, boolean)},
 * merge and tests). Neither forms Q.
 *
 * <p>Angle layout (one flat vector of {@link #angleCount()}): grouped by qudit dimension d, ascending; within a group,
 * by circuit layer {@code l = 0…L}, then by the qudit's position among those of dimension d, then by the Givens index
 * {@code j = 0…d−2}. Grouping by dimension lets the graph build all gates of one dimension with a few batched ops.
 */
final class Circuit {

  /** The largest prime factor a width may have: a qudit of dimension p costs p − 1 angles per layer. */
  static final int MAX_QUDIT = 64;

  private final long width;
  private final int layers;
  private final int[] dims;            // d_1 ≤ … ≤ d_m
  private final int[] groupDims;       // the distinct dimensions, ascending
  private final int[] groupOffset;     // where each group's angles start
  private final int[] groupSize;       // qudits per group
  private final int[] groupOf;         // per qudit: its group
  private final int[] positionInGroup; // per qudit: its index among the qudits of its dimension
  private final int angleCount;

  private Circuit(long width, int layers, int[] dims) {
    this.width = width;
    this.layers = layers;
    this.dims = dims;
    int[] distinct = Arrays.stream(dims).distinct().toArray();
    this.groupDims = distinct;
    this.groupSize = new int[distinct.length];
    this.groupOffset = new int[distinct.length];
    this.groupOf = new int[dims.length];
    this.positionInGroup = new int[dims.length];
    for (int i = 0; i < dims.length; i++) {
      int g = Arrays.binarySearch(distinct, dims[i]);
      groupOf[i] = g;
      positionInGroup[i] = groupSize[g]++;
    }
    int offset = 0;
    for (int g = 0; g < distinct.length; g++) {
      groupOffset[g] = offset;
      offset += (layers + 1) * groupSize[g] * (distinct[g] - 1);
    }
    this.angleCount = offset;
  }

  /**
   * The circuit of {@code layers} entangling layers on a register of width {@code width}.
   *
   * @throws IllegalArgumentException naming the value: {@code layers < 1}, {@code width < 2}, or a width with a prime
   *     factor above {@value #MAX_QUDIT}
   */
  static Circuit of(long width, int layers) {
    checkArgument(layers >= 1, "Quantum-PEFT circuit_layers must be >= 1 (at least one entangling layer), got %s",
        layers);
    checkArgument(width >= 2, "Quantum-PEFT needs a width >= 2 (one qudit at least), got %s", width);
    int[] dims = primeFactors(width);
    int largest = dims[dims.length - 1];
    checkArgument(largest <= MAX_QUDIT, "width %s = %s has the prime factor %s; Quantum-PEFT's mixed-radix circuit "
        + "takes widths whose prime factors are all <= %s (a qudit of dimension p costs p - 1 angles per layer)",
        width, factorString(dims), largest, MAX_QUDIT);
    return new Circuit(width, layers, dims);
  }

  /** (L + 1)·Σ (d_i − 1): the angles of a circuit of {@code layers} entangling layers on {@code width}. */
  static long angleCount(long width, int layers) {
    return of(width, layers).angleCount();
  }

  /** The prime factors of {@code n ≥ 2}, ascending, with multiplicity. */
  static int[] primeFactors(long n) {
    List<Integer> factors = new ArrayList<>();
    long rest = n;
    for (long p = 2; p * p <= rest; p++) {
      while (rest % p == 0) {
        factors.add(Math.toIntExact(p));
        rest /= p;
      }
    }
    if (rest > 1) {
      factors.add(rest > Integer.MAX_VALUE ? Integer.MAX_VALUE : (int) rest);
    }
    return factors.stream().mapToInt(Integer::intValue).toArray();
  }

  /** {@code 2^7·3} for 384. */
  static String factorString(int[] dims) {
    StringBuilder s = new StringBuilder();
    int i = 0;
    while (i < dims.length) {
      int j = i;
      while (j < dims.length && dims[j] == dims[i]) {
        j++;
      }
      s.append(s.length() == 0 ? "" : "·").append(dims[i]).append(j - i > 1 ? "^" + (j - i) : "");
      i = j;
    }
    return s.toString();
  }

  long width() {
    return width;
  }

  int layers() {
    return layers;
  }

  /** The qudit dimensions d_1 ≤ … ≤ d_m. */
  int[] dims() {
    return dims.clone();
  }

  /** (L + 1)·Σ (d_i − 1). */
  int angleCount() {
    return angleCount;
  }

  /** The index of the angle of Givens rotation {@code j} of qudit {@code i} in layer {@code l}. */
  int angleIndex(int l, int i, int j) {
    int g = groupOf[i];
    return groupOffset[g] + (l * groupSize[g] + positionInGroup[i]) * (groupDims[g] - 1) + j;
  }

  /**
   * The qudit rotation {@code R = G_{d−2}(θ_{d−2})·…·G_0(θ_0)} of qudit {@code i} in layer {@code l}, where
   * {@code G_j} is {@code RY(θ) = [[cos θ/2, −sin θ/2], [sin θ/2, cos θ/2]]} on levels (j, j+1) and the identity
   * elsewhere; {@code [d, d]}.
   */
  double[][] rotation(double[] angles, int l, int i) {
    int d = dims[i];
    double[][] r = new double[d][d];
    for (int a = 0; a < d; a++) {
      r[a][a] = 1;
    }
    for (int j = 0; j < d - 1; j++) { // R ← G_j · R: rows j and j+1 mix
      double half = angles[angleIndex(l, i, j)] / 2;
      double c = Math.cos(half);
      double s = Math.sin(half);
      for (int b = 0; b < d; b++) {
        double top = r[j][b];
        double bottom = r[j + 1][b];
        r[j][b] = c * top - s * bottom;
        r[j + 1][b] = s * top + c * bottom;
      }
    }
    return r;
  }

  /**
   * The entangler's diagonal over the register, flat in row-major order of {@code (a_1, …, a_m)}:
   * {@code (−1)^(Σ_i a_i·a_{i+1})}, a controlled-Z between neighbouring qudits ({@code [n]}).
   */
  double[] entangler() {
    double[] e = new double[Math.toIntExact(width)];
    int[] digit = new int[dims.length];
    for (int flat = 0; flat < e.length; flat++) {
      int exponent = 0;
      for (int i = 0; i + 1 < dims.length; i++) {
        exponent += digit[i] * digit[i + 1];
      }
      e[flat] = exponent % 2 == 0 ? 1 : -1;
      for (int i = dims.length - 1; i >= 0; i--) { // next mixed-radix index, last digit fastest
        if (++digit[i] < dims[i]) {
          break;
        }
        digit[i] = 0;
      }
    }
    return e;
  }

  /**
   * {@code x·Q} ({@code transpose} false) or {@code x·Qᵀ} for the rows of {@code x} ({@code [rows, n]}), gate by gate
   * on the register's axes: O(rows · n · Σ d_i) per layer.
   */
  INDArray apply(INDArray x, INDArray angles, boolean transpose) {
    double[] theta = angles.toDoubleVector();
    checkArgument(theta.length == angleCount, "%s angles given, the circuit has %s", theta.length, angleCount);
    long rows = x.size(0);
    long[] register = register(rows);
    INDArray e = Nd4j.create(entangler(), new long[] {1, width}, DataType.DOUBLE).castTo(x.dataType());
    INDArray t = x.dup('c').reshape('c', register);                                      // [rows, d_1, …, d_m]
    for (int step = 0; step <= layers; step++) {
      int l = transpose ? step : layers - step; // x·Q applies layer L first, x·Qᵀ layer 0 first
      if (step > 0) {
        t = t.reshape('c', rows, width).mulRowVector(e).reshape('c', register);
      }
      for (int i = 0; i < dims.length; i++) { // contracting axis 1 each time cycles the axes back into order
        INDArray r = Nd4j.create(rotation(theta, l, i)).castTo(x.dataType());           // [d_i, d_i]
        t = Nd4j.tensorMmul(t, r, new int[][] {{1}, {transpose ? 1 : 0}}).dup('c');
      }
    }
    return t.reshape('c', rows, width);                                                  // [rows, n]
  }

  /** The first {@code k} columns of Q ({@code [n, k]}, orthonormal): the rows of {@code [I_k | 0]·Qᵀ}, transposed. */
  INDArray columns(INDArray angles, int k) {
    INDArray firstRows = Nd4j.zeros(angles.dataType(), k, width);                         // [k, n]: [I_k | 0]
    for (int j = 0; j < k; j++) {
      firstRows.putScalar(j, j, 1);
    }
    return apply(firstRows, angles, true).transpose().dup('c');                          // [n, k]
  }

  /**
   * Builds {@code x·Q} ({@code transpose} false) or {@code x·Qᵀ} on the graph for the rows of {@code x}
   * ({@code [rows, n]}). The gate matrices come from {@code angles} ({@code [A]}) in a few batched ops per qudit
   * dimension; constants are named under {@code scope}, which should be a buffer scope. Call inside the caller's name
   * scope and capture.
   *
   * <p>A gate on qudit i is a plain matmul: the register, kept flat as {@code [rows, n]} in the axis order
   * {@code (d_i, d_{i+1}, …, d_m, d_1', …, d_{i−1}')}, is viewed as {@code [rows, d_i, n/d_i]}, permuted to
   * {@code [rows, n/d_i, d_i]} and multiplied by the {@code [d_i, d_i]} gate: qudit i moves to the end, and after m
   * gates the order is back to {@code (d_1', …, d_m')}. (SameDiff's own {@code tensormmul} has the same forward
   * pass, but its gradient fails on these axes in ND4J 1.0.0-M2.1.)
   */
  SDVariable apply(SameDiff sd, String scope, SDVariable x, SDVariable angles, boolean transpose) {
    DataType type = angles.dataType();
    SDVariable half = angles.mul(0.5);                                                   // [A]
    SDVariable cos = sd.math.cos(half);                                                  // [A]
    SDVariable sin = sd.math.sin(half);                                                  // [A]
    SDVariable[][] gates = new SDVariable[groupDims.length][];
    for (int g = 0; g < groupDims.length; g++) {
      gates[g] = gates(sd, scope, g, cos, sin, type);
    }
    SDVariable e = null;
    if (dims.length > 1) {
      e = sd.constant(scope + "/entangler", Nd4j.create(entangler(), new long[] {1, width}, DataType.DOUBLE)
          .castTo(type));                                                                // [1, n]
    }
    // t holds the register in row-major order throughout; its shape changes ([rows, n] or [rows·n/d, d]) but a
    // reshape reads it the same either way, so it is brought back to [rows, n] only where a broadcast needs it
    SDVariable t = x;                                                                    // [rows, n]
    for (int step = 0; step <= layers; step++) {
      int l = transpose ? step : layers - step; // x·Q applies layer L first, x·Qᵀ layer 0 first
      if (step > 0 && e != null) {
        t = t.reshape(-1, width).mul(e);                                                 // [rows, n]
      }
      for (int i = 0; i < dims.length; i++) {
        int d = dims[i];
        SDVariable r = gates[groupOf[i]][l * groupSize[groupOf[i]] + positionInGroup[i]]; // [d, d]
        SDVariable moved = t.reshape(-1, d, width / d).permute(0, 2, 1).reshape(-1, d);   // [rows·n/d, d]
        t = sd.mmul(moved, r, false, transpose, false);                                  // [rows·n/d, d']
      }
    }
    return t.reshape(-1, width);                                                         // [rows, n]
  }

  /**
   * The {@code (L + 1)·m_d} rotations of group {@code g} (dimension d), in layout order, each {@code [d, d]}:
   * {@code G_j = I + (cos θ_j/2 − 1)·(E_jj + E_{j+1,j+1}) + sin θ_j/2·(E_{j+1,j} − E_{j,j+1})}, multiplied up.
   */
  private SDVariable[] gates(SameDiff sd, String scope, int g, SDVariable cos, SDVariable sin, DataType type) {
    int d = groupDims[g];
    int count = (layers + 1) * groupSize[g];
    int length = count * (d - 1);
    boolean whole = length == angleCount;
    SDIndex block = SDIndex.interval(groupOffset[g], groupOffset[g] + length);
    SDVariable c = (whole ? cos : cos.get(block)).reshape(count, d - 1, 1, 1);            // [count, d−1, 1, 1]
    SDVariable s = (whole ? sin : sin.get(block)).reshape(count, d - 1, 1, 1);            // [count, d−1, 1, 1]
    double[] diag = new double[(d - 1) * d * d];
    double[] skew = new double[(d - 1) * d * d];
    double[] eye = new double[(d - 1) * d * d];
    for (int j = 0; j < d - 1; j++) {
      int base = j * d * d;
      for (int a = 0; a < d; a++) {
        eye[base + a * d + a] = 1;
      }
      diag[base + j * d + j] = 1;
      diag[base + (j + 1) * d + j + 1] = 1;
      skew[base + (j + 1) * d + j] = 1;
      skew[base + j * d + j + 1] = -1;
    }
    long[] shape = {1, d - 1, d, d};
    String prefix = scope + "/givens" + d;
    SDVariable p = sd.constant(prefix + "_diag", Nd4j.create(diag, shape, DataType.DOUBLE).castTo(type));
    SDVariable a = sd.constant(prefix + "_skew", Nd4j.create(skew, shape, DataType.DOUBLE).castTo(type));
    SDVariable i = sd.constant(prefix + "_eye", Nd4j.create(eye, shape, DataType.DOUBLE).castTo(type));
    SDVariable givens = c.sub(1.0).mul(p).add(s.mul(a)).add(i);                           // [count, d−1, d, d]
    SDVariable r;
    if (d == 2) {
      r = givens.reshape(count, 2, 2);                                                     // [count, 2, 2]
    } else {
      SDVariable[] steps = sd.unstack(givens, 1, d - 1);                                  // (d−1) × [count, d, d]
      r = steps[0];
      for (int j = 1; j < d - 1; j++) {
        r = sd.mmul(steps[j], r);                                                          // G_j · R, batched
      }
    }
    return count == 1 ? new SDVariable[] {r.reshape(d, d)} : sd.unstack(r, 0, count);     // count × [d, d]
  }

  /** {@code [rows, d_1, …, d_m]}. */
  private long[] register(long rows) {
    long[] shape = new long[dims.length + 1];
    shape[0] = rows;
    for (int i = 0; i < dims.length; i++) {
      shape[i + 1] = dims[i];
    }
    return shape;
  }
}
