package dev.fvdisk.engine.spi;

import java.io.IOException;

/**
 * Where an image's metadata becomes durable: a checkpoint of the whole chunk map and block set, and
 * a log of commit batches written since it. Opening an image loads the newest checkpoint and
 * replays the log after it; the implementation that stores both also loads them.
 *
 * <p><b>Thread safety.</b> The engine calls one method at a time (its commit rounds never overlap).
 */
public interface MetadataLog {

  /** Whether {@link #append} would take this batch before the next checkpoint. */
  boolean fits(CommitBatch batch);

  /**
   * Appends a batch durably: on return it survives a crash. The chunk data it points at must be
   * sealed first. A crash during the call may keep part of the batch, never mappings without the
   * batch's zero blocks (see {@link CommitBatch}).
   *
   * @throws IllegalStateException if the batch does not {@link #fits fit}
   * @throws FencedException if another writer has taken the image over; nothing was appended
   */
  void append(CommitBatch batch) throws IOException;

  /**
   * Writes a checkpoint durably and starts an empty log after it. Until it is in force the previous
   * checkpoint and log stay in force, so a crash at any point leaves complete metadata.
   *
   * @throws FencedException if another writer has taken the image over; nothing changed
   */
  void checkpoint(Checkpoint checkpoint) throws IOException;
}
