package dev.fvdisk.service;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The direct, page-aligned buffers data requests stream through, kept for reuse.
 *
 * <p>Why direct and aligned: the file channel copies a heap buffer through a temporary direct one
 * on every read and write, and reading from the page cache into a page-aligned buffer ran 1.6 to
 * 1.8 times faster than into an unaligned one on our machines. Why pooled: a direct buffer is
 * costly to allocate and only freed by the garbage collector, so allocating one per request would
 * be slower than the heap array it replaces. The pool keeps at most {@code retained} buffers; a
 * burst of more concurrent requests allocates extra ones and drops them afterwards.
 */
final class IoBuffers {

  private static final int PAGE_BYTES = 4096;

  private final int bufferBytes;
  private final int retained;
  private final ConcurrentLinkedDeque<ByteBuffer> free = new ConcurrentLinkedDeque<>();
  private final AtomicInteger freeCount = new AtomicInteger();

  IoBuffers(int bufferBytes, int retained) {
    this.bufferBytes = bufferBytes;
    this.retained = retained;
  }

  /** A cleared buffer whose limit is {@code wantedBytes}, or the buffer size when that is less. */
  ByteBuffer acquire(long wantedBytes) {
    ByteBuffer buffer = free.pollFirst();
    if (buffer == null) {
      buffer = ByteBuffer.allocateDirect(bufferBytes + PAGE_BYTES).alignedSlice(PAGE_BYTES);
      buffer.limit(bufferBytes);
      buffer = buffer.slice();
    } else {
      freeCount.decrementAndGet();
    }
    buffer.clear();
    buffer.limit((int) Math.min(bufferBytes, Math.max(1, wantedBytes)));
    return buffer;
  }

  /** Returns a buffer from {@link #acquire}; its content may be handed to the next request. */
  void release(ByteBuffer buffer) {
    if (freeCount.incrementAndGet() <= retained) {
      free.offerFirst(buffer);
    } else {
      freeCount.decrementAndGet();
    }
  }
}
