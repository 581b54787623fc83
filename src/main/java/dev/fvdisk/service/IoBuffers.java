package dev.fvdisk.service;

import dev.fvdisk.engine.io.DirectBufferPool;
import java.nio.ByteBuffer;
import java.util.concurrent.Semaphore;

/**
 * The buffers data requests stream through: one pooled direct buffer per request, and at most
 * {@code maxInUse} requests streaming at once.
 *
 * <p>Why a bound: on a pool of platform threads the pool's size bounded the buffers in use (200
 * threads, 200 MiB with the default 1 MiB buffer). With virtual threads every open connection can
 * have a request streaming, and 1024 of them would ask for a GiB of direct memory. Further requests
 * wait here for a buffer, as they used to wait for a thread. Callers must not hold an image lock
 * while they acquire, or a request waiting for a buffer could hold up the requests that would free
 * one.
 */
final class IoBuffers {

  private final DirectBufferPool pool;
  private final Semaphore inUse;

  IoBuffers(int bufferBytes, int retained, int maxInUse) {
    this.pool = new DirectBufferPool(bufferBytes, retained);
    this.inUse = new Semaphore(maxInUse);
  }

  /**
   * A cleared buffer whose limit is {@code wantedBytes}, or the buffer size when that is less;
   * waits while {@code maxInUse} buffers are out.
   */
  ByteBuffer acquire(long wantedBytes) {
    inUse.acquireUninterruptibly();
    ByteBuffer buffer = pool.acquire();
    buffer.limit((int) Math.min(pool.bufferBytes(), Math.max(1, wantedBytes)));
    return buffer;
  }

  /** Returns a buffer from {@link #acquire}; its content may be handed to the next request. */
  void release(ByteBuffer buffer) {
    pool.release(buffer);
    inUse.release();
  }
}
