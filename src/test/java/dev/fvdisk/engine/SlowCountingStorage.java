package dev.fvdisk.engine;

import dev.fvdisk.engine.io.ForwardingStorage;
import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A storage wrapper that counts the bytes read through it and can make each read slow, to stand in
 * for a base image on a remote or overloaded store.
 */
final class SlowCountingStorage extends ForwardingStorage {

  private final AtomicLong readBytes = new AtomicLong();
  private volatile long readDelayMillis;
  private volatile boolean delayAfterRead;

  SlowCountingStorage(Storage delegate) {
    super(delegate);
  }

  long readBytes() {
    return readBytes.get();
  }

  void resetCount() {
    readBytes.set(0);
  }

  void setReadDelayMillis(long millis) {
    this.readDelayMillis = millis;
  }

  /** Sleeps after each read rather than before it, so the bytes read grow stale meanwhile. */
  void setDelayAfterRead(boolean after) {
    this.delayAfterRead = after;
  }

  @Override
  public void read(ByteBuffer dst, long positionBytes) throws IOException {
    readBytes.addAndGet(dst.remaining());
    long delay = readDelayMillis;
    if (delayAfterRead) {
      delegate.read(dst, positionBytes);
    }
    if (delay > 0) {
      try {
        Thread.sleep(delay);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted in a slow read");
      }
    }
    if (!delayAfterRead) {
      delegate.read(dst, positionBytes);
    }
  }
}
