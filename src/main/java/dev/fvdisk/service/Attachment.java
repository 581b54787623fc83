package dev.fvdisk.service;

import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageClosedException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.locks.Lock;
import org.jspecify.annotations.Nullable;

/**
 * The {@link VirtualDisk} of one attachment: the open image's registry entry, kept for the
 * attachment's life, and what it moved so far. See {@link VirtualDisk} for the contract.
 *
 * <p>Each call takes the entry's lock shared for its own duration, never across calls, so a client
 * that is slow between calls never holds up a change that needs the image to itself; what keeps a
 * delete or the read-only mark away from writers is their pin (see {@link OpenImage}). The engine
 * image is read from the entry under that lock, so calls follow the reopening that changes the
 * read-only mark.
 */
final class Attachment implements VirtualDisk {

  /** A span whose space {@link #checkWrite} counted already. */
  private record Span(long offsetBytes, long endBytes) {
    boolean covers(long offset, long length) {
      return offset >= offsetBytes && offset + length <= endBytes;
    }
  }

  private final OpenImage open;
  private final Access access;
  private final SpacePolicy space;
  private final EngineErrors errors;
  private final ImageServiceObserver observer;
  private final boolean reportEachCall;
  private volatile @Nullable Span spaceChecked;
  private volatile boolean closed;
  private boolean exclusive;

  // What this attachment moved, reported when it closes; guarded by this.
  private boolean reading;
  private long readBytes;
  private long readNanos;
  private boolean writing;
  private long writtenBytes;
  private long writeNanos;

  Attachment(
      OpenImage open,
      Access access,
      SpacePolicy space,
      EngineErrors errors,
      ImageServiceObserver observer,
      boolean reportEachCall) {
    this.open = open;
    this.access = access;
    this.space = space;
    this.errors = errors;
    this.observer = observer;
    this.reportEachCall = reportEachCall;
  }

  @Override
  public String name() {
    return open.name();
  }

  @Override
  public long sizeBytes() {
    return current().sizeBytes();
  }

  @Override
  public boolean readOnly() {
    return current().isReadOnly();
  }

  @Override
  public String version() {
    return current().changeTag();
  }

  @Override
  public void read(long offsetBytes, ByteBuffer dst) {
    int length = dst.remaining();
    underSharedLock(
        image -> {
          checkRange(image, offsetBytes, length);
          long started = System.nanoTime();
          boolean done = false;
          try {
            image.read(offsetBytes, dst);
            done = true;
          } finally {
            countRead(done ? length : 0, System.nanoTime() - started);
          }
          return null;
        });
  }

  @Override
  public void write(long offsetBytes, ByteBuffer src, Durability durability) {
    requireWriteAccess();
    int length = src.remaining();
    underSharedLock(
        image -> {
          checkWritable(image);
          checkRange(image, offsetBytes, length);
          Span checked = spaceChecked;
          if (checked == null || !checked.covers(offsetBytes, length)) {
            space.checkSpace(image, offsetBytes, length);
          }
          long started = System.nanoTime();
          boolean done = false;
          try {
            image.write(offsetBytes, src);
            done = true;
          } finally {
            countWrite(done ? length : 0, System.nanoTime() - started);
          }
          if (durability == Durability.DURABLE) {
            timedFlush(image);
          }
          return null;
        });
  }

  @Override
  public void zero(long offsetBytes, long lengthBytes, Durability durability) {
    requireWriteAccess();
    underSharedLock(
        image -> {
          checkWritable(image);
          checkRange(image, offsetBytes, lengthBytes);
          image.zero(offsetBytes, lengthBytes);
          if (durability == Durability.DURABLE) {
            timedFlush(image);
          }
          return null;
        });
  }

  @Override
  public void flush() {
    underSharedLock(
        image -> {
          timedFlush(image);
          return null;
        });
  }

  @Override
  public List<DiskExtent> extents(long offsetBytes, long lengthBytes, int maxExtents) {
    return underSharedLock(
        image -> {
          long size = image.sizeBytes();
          if (offsetBytes < 0 || lengthBytes <= 0 || offsetBytes > size - lengthBytes) {
            throw new RangeOutsideDiskException(offsetBytes, lengthBytes, size);
          }
          return DiskExtent.of(image.extents(offsetBytes, lengthBytes, maxExtents));
        });
  }

  /** One call on the image, under the entry's lock taken shared for the call only. */
  @FunctionalInterface
  private interface DiskCall<T> {
    T run(Image image) throws IOException;
  }

  /**
   * Runs {@code call} on the open image with the entry's lock held shared, turning engine failures
   * into the service's exceptions: a closed image is a deleted one.
   */
  private <T> T underSharedLock(DiskCall<T> call) {
    Lock lock = lockShared();
    try {
      return call.run(open.image());
    } catch (IOException e) {
      throw errors.translate(open.name(), e);
    } catch (ImageClosedException e) {
      throw new ImageNotFoundException(open.name());
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void checkWrite(long offsetBytes, long lengthBytes) {
    requireWriteAccess();
    underSharedLock(
        image -> {
          checkWritable(image);
          checkRange(image, offsetBytes, lengthBytes);
          space.checkSpace(image, offsetBytes, lengthBytes);
          spaceChecked = new Span(offsetBytes, offsetBytes + lengthBytes);
          countWrite(0, 0);
          return null;
        });
  }

  @Override
  public void holdExclusively(ExpectedVersion expected) {
    requireOpen();
    if (!exclusive) {
      open.lock().writeLock().lock();
      exclusive = true;
    }
    if (open.isRetired()) {
      throw new ImageNotFoundException(open.name());
    }
    String current = open.image().changeTag();
    if (!expected.matches(current)) {
      throw new VersionMismatchException(open.name(), current);
    }
  }

  @Override
  public void close() {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
    }
    try {
      if (exclusive) {
        exclusive = false;
        open.lock().writeLock().unlock();
      }
    } finally {
      if (access == Access.READ_WRITE) {
        open.unpinWriter();
      }
      report();
    }
  }

  /** Tells the observer what this attachment moved: at most one read and one write. */
  private void report() {
    boolean read;
    boolean wrote;
    long bytesRead;
    long nanosReading;
    long bytesWritten;
    long nanosWriting;
    synchronized (this) {
      read = reading;
      bytesRead = readBytes;
      nanosReading = readNanos;
      wrote = writing;
      bytesWritten = writtenBytes;
      nanosWriting = writeNanos;
    }
    if (read) {
      observer.read(bytesRead, nanosReading);
    }
    if (wrote) {
      observer.written(bytesWritten, nanosWriting);
    }
  }

  private void countRead(long bytes, long nanos) {
    if (reportEachCall) {
      observer.read(bytes, nanos);
      return;
    }
    synchronized (this) {
      reading = true;
      readBytes += bytes;
      readNanos += nanos;
    }
  }

  private void countWrite(long bytes, long nanos) {
    if (reportEachCall) {
      if (bytes > 0) {
        observer.written(bytes, nanos);
      }
      return;
    }
    synchronized (this) {
      writing = true;
      writtenBytes += bytes;
      writeNanos += nanos;
    }
  }

  private void timedFlush(Image image) throws IOException {
    long started = System.nanoTime();
    try {
      image.flush();
    } finally {
      observer.flushed(System.nanoTime() - started);
    }
  }

  /** The image for a call that takes no lock: checks the attachment and that the image is there. */
  private Image current() {
    requireOpen();
    if (open.isRetired()) {
      throw new ImageNotFoundException(open.name());
    }
    return open.image();
  }

  /** Takes the entry's lock shared for one call; the caller unlocks it in a finally block. */
  private Lock lockShared() {
    requireOpen();
    Lock lock = open.lock().readLock();
    lock.lock();
    if (open.isRetired()) {
      lock.unlock();
      throw new ImageNotFoundException(open.name());
    }
    return lock;
  }

  private void requireOpen() {
    if (closed) {
      throw new IllegalStateException("the attachment to image \"" + open.name() + "\" is closed");
    }
  }

  private void requireWriteAccess() {
    if (access != Access.READ_WRITE) {
      throw new IllegalStateException(
          "image \"" + open.name() + "\" is attached for reading only; writes need READ_WRITE");
    }
  }

  private void checkWritable(Image image) {
    if (image.isReadOnly()) {
      throw new ImageReadOnlyException(open.name(), "data writes are refused");
    }
  }

  private static void checkRange(Image image, long offsetBytes, long lengthBytes) {
    long size = image.sizeBytes();
    if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes > size - lengthBytes) {
      throw new RangeOutsideDiskException(offsetBytes, lengthBytes, size);
    }
  }
}
