package dev.fvdisk.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.UUID;

/**
 * What a clone reads the blocks it has not written from: an image marked read-only ({@link Image}
 * itself), or a snapshot of any image ({@link Image#snapshotBase}), whose content never changes
 * either. A clone records which one it was made from and refuses, at open, a base that is not that
 * very content any more.
 */
public interface BaseImage {

  /** The image the blocks belong to; for a snapshot, the image it was taken of. */
  UUID id();

  /** The snapshot read, or 0 when this is an image's own content. */
  default int snapshotId() {
    return 0;
  }

  /**
   * A number that changes whenever the content may have: an image's header generation (a read-only
   * image never writes its header); 0 for a snapshot, which cannot change.
   */
  long generation();

  /** Whether the content is fixed: the image is marked read-only, or this is a snapshot. */
  boolean isReadOnly();

  long sizeBytes();

  /** Reads {@code dst.remaining()} bytes at {@code offsetBytes}, inside {@link #sizeBytes()}. */
  void read(long offsetBytes, ByteBuffer dst) throws IOException;

  /** Names the base in messages. */
  String description();
}
