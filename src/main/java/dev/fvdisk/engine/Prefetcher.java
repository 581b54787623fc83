package dev.fvdisk.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.jspecify.annotations.Nullable;

/**
 * Adaptive prefetching: one background thread per clone that copies every block still in the base
 * into the image, then switches the image to standalone.
 *
 * <p>It walks the bitmap from the start, reads up to {@link PrefetchTuning#bytesPerPrefetch()} of
 * clear blocks from the base and stores each block with {@link Image#copyIn}, which skips blocks a
 * client wrote meanwhile. It measures its own read and write throughput over short windows and,
 * when the smoothed figure drops below the minimum, pauses for a random time with probability one
 * half, so prefetchers sharing a disk do not all back off in step. It also waits while the image
 * serves client I/O, so copying never competes with a busy client. A restart resumes where the
 * durable bits left off.
 *
 * <p>A copy that would take space the image's {@link SpaceBudget} refuses, or that the file system
 * has no room for, pauses prefetching until space returns: it asks again every second, logs the
 * pause and the resumption once each, and shows the reason in its {@link #status}.
 *
 * <p><b>Thread safety.</b> {@link #setEnabled}, {@link #status} and {@link #stop} may be called
 * from any thread.
 */
final class Prefetcher {

  private static final Logger LOG = Logger.getLogger(Prefetcher.class.getName());
  private static final long SPACE_RETRY_MILLIS = 1000;

  private final Image image;
  private final Bitmap bitmap;
  private final long baseEndBytes;
  private final int blockSizeBytes;
  private final PrefetchTuning tuning;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private final Thread thread;
  private final ThroughputMeter readMeter;
  private final ThroughputMeter writeMeter;
  private boolean enabled;
  private long startAtNanos;
  private boolean stopping;
  private boolean throttled;
  private volatile PrefetchStatus.State state;
  private volatile @Nullable String reason;
  private volatile @Nullable String spaceShortage;
  private final java.util.concurrent.atomic.AtomicLong pauses =
      new java.util.concurrent.atomic.AtomicLong();

  Prefetcher(
      Image image,
      Bitmap bitmap,
      long baseEndBytes,
      int blockSizeBytes,
      PrefetchTuning tuning,
      boolean enabled,
      int startDelaySeconds) {
    this.image = image;
    this.bitmap = bitmap;
    this.baseEndBytes = baseEndBytes;
    this.blockSizeBytes = blockSizeBytes;
    this.tuning = tuning;
    this.readMeter = new ThroughputMeter(tuning);
    this.writeMeter = new ThroughputMeter(tuning);
    this.enabled = enabled;
    this.startAtNanos = System.nanoTime() + TimeUnit.SECONDS.toNanos(startDelaySeconds);
    this.state = enabled ? PrefetchStatus.State.WAITING : PrefetchStatus.State.PAUSED;
    this.thread = new Thread(this::run, "fvdisk-prefetch " + image.description());
    this.thread.setDaemon(true);
  }

  void start() {
    thread.start();
  }

  /** Switches prefetching on (after {@code startDelaySeconds}) or off (paused where it is). */
  void setEnabled(boolean on, int startDelaySeconds) {
    lock.lock();
    try {
      // A new delay counts from now, unless copying is under way already.
      if (on && (!enabled || state == PrefetchStatus.State.WAITING)) {
        startAtNanos = System.nanoTime() + TimeUnit.SECONDS.toNanos(startDelaySeconds);
      }
      enabled = on;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  PrefetchStatus status() {
    long presentBytes = Math.min(baseEndBytes, image.presentBlocks() * (long) blockSizeBytes);
    PrefetchStatus.State s = state;
    String why = reason;
    String shortage = spaceShortage;
    if (shortage != null && s != PrefetchStatus.State.DISABLED) {
      s = PrefetchStatus.State.PAUSED;
      why = "waiting for space: " + shortage;
    } else if (s == PrefetchStatus.State.RUNNING && throttled) {
      s = PrefetchStatus.State.PAUSED;
      why = "backing off while the disk is busy";
    }
    return new PrefetchStatus(s, presentBytes, baseEndBytes, pauses.get(), why, shortage != null);
  }

  /** Stops the thread and waits for it; the image then closes without a copy in flight. */
  void stop() {
    lock.lock();
    try {
      stopping = true;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
    // No interrupt: an interrupted FileChannel operation closes the channel, which would break
    // this image and the base it shares with other clones. The current step is at most one
    // buffer's worth of copying.
    try {
      thread.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void run() {
    try {
      long block = 0;
      ByteBuffer buffer = ByteBuffer.allocate(tuning.bytesPerPrefetch());
      while (true) {
        if (!awaitTurn()) {
          return;
        }
        block = bitmap.nextClear(block);
        if (block >= bitmap.blockCount()) {
          // Blocks before the cursor may have been skipped while a write held them; look again.
          block = bitmap.nextClear(0);
          if (block >= bitmap.blockCount()) {
            break;
          }
        }
        try {
          block = copyRun(block, buffer);
        } catch (IOException e) {
          String shortage =
              e instanceof NoSpaceForCopyException refused
                  ? refused.reason()
                  : StorageFull.reasonOf(e);
          if (shortage == null) {
            throw e;
          }
          awaitSpace(shortage);
        }
      }
      image.completePrefetch();
      state = PrefetchStatus.State.DONE;
    } catch (InterruptedException | ImageClosedException e) {
      // Closing: the durable bits say where the next open resumes.
      Thread.currentThread().interrupt();
    } catch (IOException | RuntimeException e) {
      // A failed copy costs nothing but time: the base still holds the data. Stop until reopened.
      spaceShortage = null;
      reason = "stopped after an error until the image is opened again: " + e.getMessage();
      state = PrefetchStatus.State.DISABLED;
      LOG.log(Level.WARNING, image.description() + ": prefetching " + reason, e);
    }
  }

  /**
   * Waits while prefetching is off, before the start delay has passed, during a throttle pause, and
   * while the image serves client I/O.
   *
   * @return false when stopping
   */
  private boolean awaitTurn() throws InterruptedException {
    lock.lock();
    try {
      while (true) {
        if (stopping) {
          return false;
        }
        long now = System.nanoTime();
        if (!enabled) {
          state = PrefetchStatus.State.PAUSED;
          reason = "switched off";
          changed.await();
        } else if (now < startAtNanos) {
          state = PrefetchStatus.State.WAITING;
          reason = null;
          changed.awaitNanos(startAtNanos - now);
        } else {
          long idleFor = now - image.lastClientIoNanos();
          long quiet = TimeUnit.MILLISECONDS.toNanos(tuning.clientQuietMillis());
          if (idleFor < quiet) {
            changed.awaitNanos(quiet - idleFor);
          } else {
            state = PrefetchStatus.State.RUNNING;
            reason = null;
            return true;
          }
        }
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * Copies the clear blocks among those starting at {@code firstBlock} that fit in the buffer.
   *
   * @return the block after the last one looked at
   */
  private long copyRun(long firstBlock, ByteBuffer buffer)
      throws IOException, InterruptedException {
    long blocksPerRun = Math.max(1, buffer.capacity() / blockSizeBytes);
    long endBlock = firstBlock + 1;
    while (endBlock < bitmap.blockCount()
        && endBlock - firstBlock < blocksPerRun
        && !bitmap.isSet(endBlock)) {
      endBlock++;
    }
    long startBytes = firstBlock * blockSizeBytes;
    long endBytes = Math.min(endBlock * blockSizeBytes, baseEndBytes);
    buffer.clear().limit((int) (endBytes - startBytes));
    long t0 = System.nanoTime();
    if (!image.readBaseForPrefetch(startBytes, buffer)) {
      throw new ImageClosedException(image.description());
    }
    long t1 = System.nanoTime();
    buffer.flip();
    long written = 0;
    for (long b = firstBlock; b < endBlock; b++) {
      int at = (int) ((b - firstBlock) * blockSizeBytes);
      int n = (int) Math.min(blockSizeBytes, endBytes - b * blockSizeBytes);
      if (image.copyIn(b, buffer.duplicate().position(at).limit(at + n))) {
        written += n;
      }
    }
    long t2 = System.nanoTime();
    boolean slowRead = readMeter.record(buffer.limit(), t1 - t0);
    boolean slowWrite = written > 0 && writeMeter.record(written, t2 - t1);
    if ((slowRead || slowWrite) && ThreadLocalRandom.current().nextBoolean()) {
      pause();
    }
    return endBlock;
  }

  /**
   * Waits until the image's space budget would grant a new chunk again, asking every second, or
   * until prefetching is switched off or stopped. The pause and the resumption are logged once
   * each.
   */
  private void awaitSpace(String shortage) throws InterruptedException {
    if (spaceShortage == null) {
      LOG.warning(
          image.description()
              + ": prefetching paused, waiting for space: "
              + shortage
              + "; it goes on by itself once space returns");
    }
    for (String still = shortage; still != null; still = image.spaceRefusal()) {
      spaceShortage = still;
      lock.lock();
      try {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(SPACE_RETRY_MILLIS);
        for (long left = deadline - System.nanoTime(); left > 0 && !stopping && enabled; ) {
          left = changed.awaitNanos(left);
        }
        if (stopping || !enabled) {
          // Switched off or closing: awaitTurn shows that; space is looked at again on return.
          spaceShortage = null;
          return;
        }
      } finally {
        lock.unlock();
      }
    }
    spaceShortage = null;
    LOG.info(image.description() + ": prefetching resumed, space is available again");
  }

  /** Backs off for a random time, then starts measuring afresh. */
  private void pause() throws InterruptedException {
    long millis = 1 + ThreadLocalRandom.current().nextLong(tuning.maxPauseMillis());
    pauses.incrementAndGet();
    lock.lock();
    try {
      throttled = true;
      long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
      for (long left = deadline - System.nanoTime(); left > 0 && !stopping && enabled; ) {
        left = changed.awaitNanos(left);
      }
    } finally {
      throttled = false;
      lock.unlock();
    }
    readMeter.reset();
    writeMeter.reset();
  }

  /**
   * Smoothed throughput over measurement windows: {@code avg = α·avg + (1 − α)·window}, as FVD
   * does. Not thread-safe: only the prefetch thread uses it.
   */
  static final class ThroughputMeter {
    private final PrefetchTuning tuning;
    private long windowBytes;
    private long windowNanos;
    private double averageBytesPerSecond = -1;

    ThroughputMeter(PrefetchTuning tuning) {
      this.tuning = tuning;
    }

    /**
     * Adds one operation.
     *
     * @return whether a window just closed with the smoothed throughput below the minimum
     */
    boolean record(long bytes, long nanos) {
      windowBytes += bytes;
      windowNanos += Math.max(1, nanos);
      if (windowNanos < TimeUnit.MILLISECONDS.toNanos(tuning.windowMillis())) {
        return false;
      }
      double current = windowBytes * 1e9 / windowNanos;
      double alpha = tuning.smoothingPercent() / 100.0;
      averageBytesPerSecond =
          averageBytesPerSecond < 0
              ? current
              : alpha * averageBytesPerSecond + (1 - alpha) * current;
      windowBytes = 0;
      windowNanos = 0;
      return averageBytesPerSecond < tuning.minBytesPerSecond();
    }

    void reset() {
      windowBytes = 0;
      windowNanos = 0;
      averageBytesPerSecond = -1;
    }

    double averageBytesPerSecond() {
      return averageBytesPerSecond;
    }
  }
}
