package dev.fvdisk.service;

import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageStats;
import dev.fvdisk.engine.PrefetchStatus;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * One entry of the {@link ImageRegistry}: an open image, the lock the service takes around it, and
 * the writers attached to it.
 *
 * <p>The engine image is replaced, under the write lock, when the read-only mark changes, because a
 * marked image is opened read-only; attachments keep this entry, not the engine image, so they
 * follow the swap. An entry that left the registry (deleted, or closed at shutdown) is <em>
 * retired</em> for good: a name that is created again gets a new entry, so an attachment can never
 * reach the new image through the old one.
 *
 * <p><b>Pins.</b> Every {@link Access#READ_WRITE} attachment pins the entry. A change that would
 * take writing away from them (delete, marking read-only, closing the service) first {@linkplain
 * #drainWriters drains} them: new writers wait at the door while the ones inside finish, for a
 * bounded time. The drain happens before the change takes the write lock, so attached writers can
 * still finish the calls they are in. Pins use their own lock and condition, not a monitor, so a
 * virtual thread waiting at the door does not hold its carrier.
 *
 * <p>The entry also counts the snapshot deletions made through it, so a snapshot's view ({@link
 * SnapshotDisk}) learns cheaply, under the shared lock, whether its snapshot may have gone.
 */
final class OpenImage {

  private final String name;
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private volatile Image image;
  private volatile boolean retired;

  private final ReentrantLock pinLock = new ReentrantLock();
  private final Condition pinsChanged = pinLock.newCondition();
  private int writers;
  private boolean draining;

  // Snapshot deletions, guarded by the write lock and read under either lock (see ImageSnapshots).
  private long snapshotDeletions;

  OpenImage(String name, Image image) {
    this.name = name;
    this.image = image;
  }

  String name() {
    return name;
  }

  Image image() {
    return image;
  }

  /** Puts the reopened image in place; the caller holds the write lock. */
  void replaceImage(Image reopened) {
    image = reopened;
  }

  /** The image's storage figures, read from the engine's counters; takes no lock. */
  ImageUsage usage() {
    Image image = this.image;
    ImageStats stats = image.stats();
    PrefetchStatus prefetch = image.prefetchStatus();
    return new ImageUsage(
        name,
        stats.sizeBytes(),
        stats.usedBytes(),
        stats.snapshotBytes(),
        stats.fileBytes(),
        stats.leakedChunks(),
        stats.journalUsedRatio(),
        stats.copyOnReadBytesInFlight(),
        image.baseLocator() != null,
        prefetch.copiedBytes(),
        prefetch.totalBytes(),
        prefetch.waitingForSpace(),
        image.isFailed());
  }

  ReentrantReadWriteLock lock() {
    return lock;
  }

  /** Counts a snapshot deletion; the caller holds the write lock. */
  void snapshotDeleted() {
    snapshotDeletions++;
  }

  /** How many snapshots were deleted through this entry; the caller holds the lock. */
  long snapshotDeletions() {
    return snapshotDeletions;
  }

  boolean isRetired() {
    return retired;
  }

  /** Marks the entry as gone from the registry; its image is closed or about to be. */
  void retire() {
    retired = true;
  }

  /**
   * Adds a writer, after any drain in progress is over.
   *
   * @throws ImageNotFoundException when the entry was retired, meanwhile or before
   */
  void pinWriter() {
    pinLock.lock();
    try {
      while (draining) {
        pinsChanged.awaitUninterruptibly();
      }
      if (retired) {
        throw new ImageNotFoundException(name);
      }
      writers++;
    } finally {
      pinLock.unlock();
    }
  }

  void unpinWriter() {
    pinLock.lock();
    try {
      if (--writers == 0) {
        pinsChanged.signalAll();
      }
    } finally {
      pinLock.unlock();
    }
  }

  /**
   * Keeps new writers out and waits until none is attached. On success the caller owns the drain
   * and must {@linkplain #endDrain end} it; on failure new writers are let in again.
   *
   * @return the writers still attached when {@code timeoutNanos} ran out; 0 when none is left
   */
  int drainWriters(long timeoutNanos) {
    long deadline = System.nanoTime() + timeoutNanos;
    boolean interrupted = false;
    pinLock.lock();
    try {
      // One drain at a time: a second change waits for the first, as it would for its lock.
      while (draining) {
        pinsChanged.awaitUninterruptibly();
      }
      draining = true;
      while (writers > 0) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          int stayed = writers;
          draining = false;
          pinsChanged.signalAll();
          return stayed;
        }
        try {
          pinsChanged.awaitNanos(left);
        } catch (InterruptedException e) {
          // The wait is bounded anyway; the flag is set again for the caller below.
          interrupted = true;
        }
      }
      return 0;
    } finally {
      pinLock.unlock();
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** Lets writers in again after a successful {@link #drainWriters}. */
  void endDrain() {
    pinLock.lock();
    try {
      draining = false;
      pinsChanged.signalAll();
    } finally {
      pinLock.unlock();
    }
  }
}
