package dev.fvdisk.service;

import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageClosedException;
import dev.fvdisk.engine.SnapshotInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.locks.Lock;

/**
 * A snapshot seen as a read-only {@link VirtualDisk}, from {@link ImageService#attachSnapshot}, so
 * front doors serve a snapshot's bytes through the same code as an image's. Its size and {@link
 * #version} never change: a snapshot is fixed from when it was taken, and the version is the
 * snapshot's identity (the image's id and the snapshot's, which the engine never gives twice). Its
 * name is {@code image@snapshot}.
 *
 * <p>Like an {@link Access#READ_ONLY} attachment it pins nothing and takes the entry's lock shared
 * for each call only. A call after the image was deleted gets {@link ImageNotFoundException}; after
 * the snapshot was deleted, {@link SnapshotNotFoundException}, also when a new snapshot took its
 * name meanwhile, so a long read never mixes two snapshots' bytes. Writes, zeroes and write checks
 * are a bug of the caller, as through a read-only attachment ({@link IllegalStateException}); a
 * flush has nothing to do. {@link #extents} lists DATA where the snapshot reads a chunk version and
 * ZERO where it reads none, a chunk at a time (an image that reads a base has no snapshots).
 *
 * <p>Thread safety as {@link VirtualDisk}'s; reads are reported to the monitoring at close.
 */
final class SnapshotDisk implements VirtualDisk {

  private final OpenImage open;
  private final SnapshotInfo snapshot;
  private final String version;
  private final EngineErrors errors;
  private final ImageServiceObserver observer;

  /** The entry's snapshot deletions when this snapshot was last seen to exist. */
  private volatile long deletionsSeen;

  private volatile boolean closed;

  // What this view read, reported when it closes; guarded by this.
  private boolean reading;
  private long readBytes;
  private long readNanos;

  SnapshotDisk(
      OpenImage open,
      SnapshotInfo snapshot,
      String version,
      long deletionsSeen,
      EngineErrors errors,
      ImageServiceObserver observer) {
    this.open = open;
    this.snapshot = snapshot;
    this.version = version;
    this.deletionsSeen = deletionsSeen;
    this.errors = errors;
    this.observer = observer;
  }

  @Override
  public String name() {
    return open.name() + "@" + snapshot.name();
  }

  @Override
  public long sizeBytes() {
    requireOpen();
    return snapshot.sizeBytes();
  }

  @Override
  public boolean readOnly() {
    return true;
  }

  @Override
  public String version() {
    requireOpen();
    return version;
  }

  @Override
  public void read(long offsetBytes, ByteBuffer dst) {
    int length = dst.remaining();
    checkRange(offsetBytes, length);
    underSharedLock(
        image -> {
          long started = System.nanoTime();
          boolean done = false;
          try {
            image.readSnapshot(snapshot.name(), offsetBytes, dst);
            done = true;
          } catch (IllegalArgumentException e) {
            // The range was checked, so the snapshot went: not possible under the lock, but the
            // engine's word is final.
            throw new SnapshotNotFoundException(open.name(), snapshot.name());
          } finally {
            countRead(done ? length : 0, System.nanoTime() - started);
          }
          return null;
        });
  }

  @Override
  public void write(long offsetBytes, ByteBuffer src, Durability durability) {
    throw refusedWrite();
  }

  @Override
  public void zero(long offsetBytes, long lengthBytes, Durability durability) {
    throw refusedWrite();
  }

  @Override
  public void checkWrite(long offsetBytes, long lengthBytes) {
    throw refusedWrite();
  }

  /** Nothing to do: a snapshot is durable from when it was taken. Checks it is still there. */
  @Override
  public void flush() {
    underSharedLock(image -> null);
  }

  @Override
  public List<DiskExtent> extents(long offsetBytes, long lengthBytes, int maxExtents) {
    long size = snapshot.sizeBytes();
    if (offsetBytes < 0 || lengthBytes <= 0 || offsetBytes > size - lengthBytes) {
      throw new RangeOutsideDiskException(offsetBytes, lengthBytes, size);
    }
    return underSharedLock(
        image -> {
          try {
            return DiskExtent.of(
                image.snapshotExtents(snapshot.name(), offsetBytes, lengthBytes, maxExtents));
          } catch (IllegalArgumentException e) {
            // The range was checked, so the snapshot went (see read).
            throw new SnapshotNotFoundException(open.name(), snapshot.name());
          }
        });
  }

  /** A snapshot never changes, so there is nothing to hold: only the version is checked. */
  @Override
  public void holdExclusively(ExpectedVersion expected) {
    requireOpen();
    if (!expected.matches(version)) {
      throw new VersionMismatchException(name(), version);
    }
  }

  @Override
  public void close() {
    boolean read;
    long bytes;
    long nanos;
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      read = reading;
      bytes = readBytes;
      nanos = readNanos;
    }
    if (read) {
      observer.read(bytes, nanos);
    }
  }

  /** One call on the image, under the entry's lock taken shared for the call only. */
  @FunctionalInterface
  private interface SnapshotCall<T> {
    T run(Image image) throws IOException;
  }

  /**
   * Runs {@code call} with the entry's lock held shared, once the image and the snapshot are known
   * to be still there, turning engine failures into the service's exceptions.
   */
  private <T> T underSharedLock(SnapshotCall<T> call) {
    requireOpen();
    Lock lock = open.lock().readLock();
    lock.lock();
    try {
      if (open.isRetired()) {
        throw new ImageNotFoundException(open.name());
      }
      Image image = open.image();
      requireSnapshot(image);
      return call.run(image);
    } catch (IOException e) {
      throw errors.translate(open.name(), e);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(open.name());
    } finally {
      lock.unlock();
    }
  }

  /**
   * Checks that the snapshot was not deleted since it was last seen. Deletions hold the lock
   * exclusively, so under the shared lock the count is stable; the list is asked only when it
   * moved, which is rare.
   */
  private void requireSnapshot(Image image) {
    long deletions = open.snapshotDeletions();
    if (deletions == deletionsSeen) {
      return;
    }
    if (ImageSnapshots.current(image, snapshot) == null) {
      throw new SnapshotNotFoundException(open.name(), snapshot.name());
    }
    deletionsSeen = deletions;
  }

  private void checkRange(long offsetBytes, long lengthBytes) {
    long size = snapshot.sizeBytes();
    if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes > size - lengthBytes) {
      throw new RangeOutsideDiskException(offsetBytes, lengthBytes, size);
    }
  }

  private void countRead(long bytes, long nanos) {
    synchronized (this) {
      reading = true;
      readBytes += bytes;
      readNanos += nanos;
    }
  }

  private void requireOpen() {
    if (closed) {
      throw new IllegalStateException("the view of snapshot \"" + name() + "\" is closed");
    }
  }

  private IllegalStateException refusedWrite() {
    return new IllegalStateException(
        "snapshot \"" + name() + "\" is read-only; attach to the image to write it");
  }
}
