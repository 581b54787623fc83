package dev.fvdisk.service;

import dev.fvdisk.engine.BaseImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.UUID;
import java.util.concurrent.locks.Lock;
import org.jspecify.annotations.Nullable;

/**
 * The base a clone reads through: an open image marked read-only, or a snapshot of an open image.
 *
 * <p>A snapshot base reads through whichever engine image the entry holds at the time, under the
 * entry's read lock: marking the image read-only (or clearing the mark) reopens it, and a clone
 * reading meanwhile waits for the new one instead of finding the old one closed. Clones take their
 * own lock before their base's, never the other way round.
 *
 * @param snapshot the snapshot's name, or null when the base is the image's own content
 */
record CloneBase(OpenImage open, @Nullable String snapshot) {

  BaseName name() {
    return new BaseName(open.name(), snapshot);
  }

  /** The size of the content the clone reads. */
  long sizeBytes() {
    return engineBase().sizeBytes();
  }

  /**
   * What the engine reads through.
   *
   * @throws IllegalArgumentException when the snapshot no longer exists
   */
  BaseImage engineBase() {
    if (snapshot == null) {
      return open.image();
    }
    BaseImage resolved = open.image().snapshotBase(snapshot);
    return new SnapshotOfOpenImage(
        open, snapshot, resolved.id(), resolved.snapshotId(), resolved.sizeBytes());
  }

  /**
   * A snapshot's identity and size never change, so they are taken once; only reads go to the
   * engine image the entry holds at the time.
   *
   * @param snapshotId the snapshot's id when the base was resolved: a snapshot deleted and made
   *     again under its name is another snapshot, never read in its place
   */
  private record SnapshotOfOpenImage(
      OpenImage open, String snapshot, UUID id, int snapshotId, long sizeBytes)
      implements BaseImage {

    @Override
    public long generation() {
      return 0; // a snapshot never changes
    }

    @Override
    public boolean isReadOnly() {
      return true;
    }

    @Override
    public void read(long offsetBytes, ByteBuffer dst) throws IOException {
      Lock lock = open.lock().readLock();
      lock.lock();
      try {
        BaseImage current = open.image().snapshotBase(snapshot);
        if (current.snapshotId() != snapshotId) {
          throw new IllegalArgumentException("the snapshot was deleted and made again");
        }
        current.read(offsetBytes, dst);
      } catch (IllegalArgumentException e) {
        throw new IOException(description() + ": " + e.getMessage(), e);
      } finally {
        lock.unlock();
      }
    }

    @Override
    public String description() {
      return open.name() + "@" + snapshot;
    }
  }
}
