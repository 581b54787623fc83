package dev.fvdisk.service;

import dev.fvdisk.engine.io.DirectBufferPool;
import java.nio.ByteBuffer;
import java.util.concurrent.Semaphore;

/**
 * The buffers a front door streams client data through on its way to and from a {@link
 * VirtualDisk}: pooled direct, page-aligned buffers of one size (see the engine's buffer pool for
 * why), and at most {@code maxInUse} of them out at once. The front door picks the budget, as it
 * knows how many requests it serves at a time.
 *
 * <p>Why a bound: when a pool of platform threads serves the requests, its size bounds the buffers
 * in use; with virtual threads every open connection can have a request streaming, and 1024 of them
 * would ask for a GiB of direct memory. Further requests wait here for a buffer, as they used to
 * wait for a thread. Callers must not hold an image exclusively ({@link
 * VirtualDisk#holdExclusively}) while they acquire, or a request waiting for a buffer could hold up
 * the requests that would free one. Safe to share between threads.
 */
public final class IoBuffers {

  private final DirectBufferPool pool;
  private final Semaphore inUse;

  /**
   * @param bufferBytes the size of every buffer
   * @param retained how many buffers are kept for reuse; more at once are allocated and dropped
   * @param maxInUse how many buffers may be out at once; further callers wait
   */
  public IoBuffers(int bufferBytes, int retained, int maxInUse) {
    this.pool = new DirectBufferPool(bufferBytes, retained);
    this.inUse = new Semaphore(maxInUse);
  }

  /**
   * A cleared buffer whose limit is {@code wantedBytes}, or the buffer size when that is less;
   * waits while {@code maxInUse} buffers are out.
   */
  public ByteBuffer acquire(long wantedBytes) {
    inUse.acquireUninterruptibly();
    ByteBuffer buffer = pool.acquire();
    buffer.limit((int) Math.min(pool.bufferBytes(), Math.max(1, wantedBytes)));
    return buffer;
  }

  /** Returns a buffer from {@link #acquire}; its content may be handed to the next caller. */
  public void release(ByteBuffer buffer) {
    pool.release(buffer);
    inUse.release();
  }
}
