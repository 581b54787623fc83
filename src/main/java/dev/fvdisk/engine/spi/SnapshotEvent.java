package dev.fvdisk.engine.spi;

/** A snapshot taken or deleted, as a {@link CommitBatch} makes it durable. */
public sealed interface SnapshotEvent {

  /** The snapshot's number, unique in the image and ascending with age. */
  int id();

  /**
   * A snapshot was taken of everything written before it.
   *
   * @param sizeBytes the virtual size it reads as
   * @param baseBlocksSlot for a clone that still reads its base, the first of the consecutive chunk
   *     slots holding the block bitmap as it was when the snapshot was taken (durable before this
   *     event); -1 otherwise
   * @param baseBlocksSlots how many slots that copy takes
   * @param baseBlocksCrc the CRC-32C of the copy's bitmap bytes
   */
  record Created(
      int id,
      String name,
      long createdAtMillis,
      long sizeBytes,
      long baseBlocksSlot,
      int baseBlocksSlots,
      int baseBlocksCrc)
      implements SnapshotEvent {

    /** A snapshot of an image that reads no base. */
    public Created(int id, String name, long createdAtMillis, long sizeBytes) {
      this(id, name, createdAtMillis, sizeBytes, -1, 0, 0);
    }
  }

  /** A snapshot was deleted; chunk versions only it held are free once this is durable. */
  record Deleted(int id) implements SnapshotEvent {}
}
