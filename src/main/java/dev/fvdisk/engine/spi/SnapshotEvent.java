package dev.fvdisk.engine.spi;

/** A snapshot taken or deleted, as a {@link CommitBatch} makes it durable. */
public sealed interface SnapshotEvent {

  /** The snapshot's number, unique in the image and ascending with age. */
  int id();

  /**
   * A snapshot was taken of everything written before it.
   *
   * @param sizeBytes the virtual size it reads as
   */
  record Created(int id, String name, long createdAtMillis, long sizeBytes)
      implements SnapshotEvent {}

  /** A snapshot was deleted; chunk versions only it held are free once this is durable. */
  record Deleted(int id) implements SnapshotEvent {}
}
