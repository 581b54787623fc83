package dev.fvdisk.service;

import java.io.IOException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The data directory's usable space for write admission, without a {@code statvfs} per allocating
 * write.
 *
 * <p>A reading of the file system is kept for up to {@link #MAX_AGE_NANOS}; every allocation
 * admitted meanwhile is taken off it at once, before it is written, so the estimate errs low for
 * this process's own writes. Once the estimate comes within {@link #MARGIN_BYTES} of the free space
 * writes must leave alone, every check asks the file system again, so admission near the limit is
 * exactly as before. Far from it, a write of another process can go unseen for at most a second; it
 * would have to write more than the margin in that second to take the file system past the
 * threshold. Monitoring reads the file system itself, never this estimate.
 */
final class FreeSpaceEstimate {

  /** How long a reading stands. */
  static final long MAX_AGE_NANOS = TimeUnit.SECONDS.toNanos(1);

  /** Above the threshold by less than this, every check reads the file system. */
  static final long MARGIN_BYTES = 256L << 20;

  /** One {@code statvfs} of the data directory. */
  @FunctionalInterface
  interface Reading {
    long usableBytes() throws IOException;
  }

  private final Reading fileSystem;
  private final ReentrantLock lock = new ReentrantLock();
  private boolean known;
  private long readAtNanos;
  private long usableBytes;

  FreeSpaceEstimate(Reading fileSystem) {
    this.fileSystem = fileSystem;
  }

  /**
   * The usable space, read again when the last reading is too old or the estimate is within the
   * margin of {@code thresholdBytes}.
   */
  long usableBytes(long thresholdBytes) throws IOException {
    lock.lock();
    try {
      long now = System.nanoTime();
      if (!known
          || now - readAtNanos > MAX_AGE_NANOS
          || usableBytes - thresholdBytes < MARGIN_BYTES) {
        usableBytes = fileSystem.usableBytes();
        readAtNanos = now;
        known = true;
      }
      return usableBytes;
    } finally {
      lock.unlock();
    }
  }

  /** Takes an admitted allocation off the estimate until the next reading. */
  void admitted(long bytes) {
    lock.lock();
    try {
      usableBytes -= bytes;
    } finally {
      lock.unlock();
    }
  }
}
