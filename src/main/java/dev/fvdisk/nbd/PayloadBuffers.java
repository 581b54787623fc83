package dev.fvdisk.nbd;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Direct, page-aligned buffers for the data of reads and writes, in power-of-two sizes from 4 KiB
 * up, kept for reuse up to a total. Shared by every connection of a server.
 *
 * <p>Why direct: a socket or file channel copies a heap array through a temporary direct buffer on
 * every call, so a 1 MiB read answered from a {@code byte[]} was copied twice more than needed, and
 * each such array was a fresh humongous allocation for the collector. A direct buffer goes from the
 * file to the socket with the kernel's copies only. Why pooled: a direct buffer is costly to
 * allocate and is freed only by the collector. How much is in use at once is bounded by the
 * server's in-flight limit, not here; beyond {@code maxRetainedBytes} buffers given back are
 * dropped.
 */
final class PayloadBuffers {

  private static final int PAGE_SHIFT = 12;
  private static final int PAGE_BYTES = 1 << PAGE_SHIFT;

  private final ConcurrentLinkedDeque<ByteBuffer>[] free;
  private final AtomicLong retainedBytes = new AtomicLong();
  private final long maxRetainedBytes;

  /**
   * @param maxBufferBytes the largest buffer asked for
   * @param maxRetainedBytes how many bytes of buffers given back are kept for reuse
   */
  @SuppressWarnings("unchecked")
  PayloadBuffers(int maxBufferBytes, long maxRetainedBytes) {
    this.free = new ConcurrentLinkedDeque[sizeClass(maxBufferBytes) + 1];
    for (int i = 0; i < free.length; i++) {
      free[i] = new ConcurrentLinkedDeque<>();
    }
    this.maxRetainedBytes = maxRetainedBytes;
  }

  /** A buffer whose position is 0 and limit {@code bytes}; its content is left from earlier use. */
  ByteBuffer acquire(int bytes) {
    int sizeClass = sizeClass(bytes);
    ByteBuffer buffer = free[sizeClass].pollFirst();
    if (buffer == null) {
      int size = PAGE_BYTES << sizeClass;
      // alignedSlice rounds both ends inward to whole pages: allocate one page more.
      buffer = ByteBuffer.allocateDirect(size + PAGE_BYTES).alignedSlice(PAGE_BYTES).slice(0, size);
    } else {
      retainedBytes.addAndGet(-buffer.capacity());
    }
    return buffer.clear().limit(bytes);
  }

  /** Takes back a buffer from {@link #acquire}. */
  void release(ByteBuffer buffer) {
    int capacity = buffer.capacity();
    if (retainedBytes.addAndGet(capacity) <= maxRetainedBytes) {
      free[sizeClass(capacity)].offerFirst(buffer);
    } else {
      retainedBytes.addAndGet(-capacity);
    }
  }

  /** Bytes kept for reuse now. */
  long retainedBytes() {
    return retainedBytes.get();
  }

  private static int sizeClass(int bytes) {
    if (bytes <= PAGE_BYTES) {
      return 0;
    }
    return Integer.SIZE - Integer.numberOfLeadingZeros(bytes - 1) - PAGE_SHIFT;
  }
}
