package dev.peft4j.io;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.bytedeco.javacpp.BytePointer;
import org.nd4j.linalg.api.concurrency.AffinityManager;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Byte windows onto the memory of a C-order contiguous ND4J array, so that file channels read into and write from
 * it without a copy on the Java heap. Windows are at most {@link #CHUNK} bytes: a {@code ByteBuffer} is int-indexed,
 * and tensors can be larger than 2 GiB. The caller keeps the array reachable while it uses a window
 * ({@code Reference.reachabilityFence}): a window does not hold it.
 */
final class NativeBytes {

  /** The largest window, 1 MiB: small enough to keep each transfer short, large enough to make its cost vanish. */
  static final int CHUNK = 1 << 20;

  private NativeBytes() {}

  /** Bytes of an array's elements: 0 for an empty array. */
  static long byteLength(INDArray array) {
    return array.isEmpty() ? 0 : array.length() * array.dataType().width();
  }

  /** {@code array} itself if it is C-order contiguous, or a C-order copy (of a transposed or strided view). */
  static INDArray cOrder(INDArray array) {
    return array.isEmpty() || array.ordering() == 'c' && Shape.hasDefaultStridesForShape(array)
        ? array : array.dup('c');
  }

  /** Brings the host copy up to date before its bytes are read: a no-op on the CPU backend, a download on CUDA. */
  static void beforeHostRead(INDArray array) {
    Nd4j.getAffinityManager().ensureLocation(array, AffinityManager.Location.HOST);
  }

  /** Marks the host copy as the newest after its bytes were written, so that a CUDA backend uploads it. */
  static void afterHostWrite(INDArray array) {
    Nd4j.getAffinityManager().tagLocation(array, AffinityManager.Location.HOST);
  }

  /**
   * The bytes {@code [offset, offset + length)} of a C-order contiguous array's elements, little-endian.
   *
   * @throws IllegalStateException on a big-endian platform: ND4J keeps elements in the platform's byte order, and
   *     safetensors data is little-endian
   */
  static ByteBuffer window(INDArray cOrder, long offset, int length) {
    checkState(ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN,
        "safetensors data is little-endian, and ND4J keeps arrays in this platform's order, %s",
        ByteOrder.nativeOrder());
    checkArgument(offset >= 0 && length > 0 && offset + length <= byteLength(cOrder),
        "window [%s, %s) outside the array's %s bytes", offset, offset + length, byteLength(cOrder));
    // addressPointer() already points at a view's first element
    BytePointer start = new BytePointer(cOrder.data().addressPointer()).getPointer(offset);
    return start.limit(length).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }
}
