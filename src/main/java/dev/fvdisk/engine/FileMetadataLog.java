package dev.fvdisk.engine;

import dev.fvdisk.engine.io.Storage;
import dev.fvdisk.engine.spi.Checkpoint;
import dev.fvdisk.engine.spi.CommitBatch;
import dev.fvdisk.engine.spi.MetadataLog;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * The metadata log of a local image file, in the v1 format: the {@link Journal} ring is the log, a
 * checkpoint is a whole table (and bitmap) written to the inactive copy followed by a header that
 * switches to it and starts a new journal epoch. Holds the header in force, and is its only writer.
 *
 * <p>Loading is {@link RecoveredMetadata#recover}: header, active copies, the snapshot directory,
 * and the journal records of the stable epoch.
 *
 * <p>The snapshot directory varies in length, so it has no reserved region: each checkpoint writes
 * it into fresh consecutive chunk slots ({@link DirectorySpace}) and the header names them; the
 * slots of the previous directory are free once that header is durable.
 */
final class FileMetadataLog implements MetadataLog {

  /** Consecutive chunk slots for the snapshot directory; the image's allocator provides them. */
  interface DirectorySpace {
    /** Sets aside {@code slots} consecutive unused slots; returns the first. */
    long reserve(int slots) throws IOException;

    /** Gives back slots no durable metadata points at any more. */
    void release(long[] slots);
  }

  private final Storage storage;
  private final Journal journal;
  private final DirectorySpace directorySpace;
  private volatile Header header;

  FileMetadataLog(Storage storage, Header header, DirectorySpace directorySpace) {
    this.storage = storage;
    this.header = header;
    this.directorySpace = directorySpace;
    this.journal = new Journal(storage, header);
  }

  /** The header in force; replaced, never changed, so a caller may keep the one it read. */
  Header header() {
    return header;
  }

  /** Writes a header that changes only flags or settings, durably, and puts it in force. */
  void writeHeader(Header next) throws IOException {
    next.writeTo(storage);
    header = next;
  }

  /** Starts the journal's epoch of the header in force; for an image just opened for writing. */
  void startJournal() {
    journal.restart(header.stableEpoch());
  }

  @Override
  public boolean fits(CommitBatch batch) {
    return journal.fits(batch);
  }

  /**
   * Zero blocks go first, in an append of their own that is forced before the rest is written:
   * replay skips a present block over an unmapped chunk, so an unmapping that survived a torn
   * append without the zero blocks of its chunk would let durable blocks read the base again.
   */
  @Override
  public void append(CommitBatch batch) throws IOException {
    if (batch.zeroBlocks().count() > 0) {
      journal.appendZeroBlocks(batch.zeroBlocks());
      storage.force();
    }
    if (batch.mappingCount() > 0
        || batch.presentBlocks().count() > 0
        || !batch.snapshotEvents().isEmpty()) {
      journal.append(batch);
      storage.force();
    }
  }

  /**
   * Writes the table and bitmap to the inactive copies and forces them; then a header that switches
   * to them starts a new journal epoch. Until the header write completes the old copies and the old
   * journal stay in force.
   */
  @Override
  public void checkpoint(Checkpoint checkpoint) throws IOException {
    Header h = header;
    ByteBuffer table = encodeTable(checkpoint.chunks());
    int tableCrc = ChunkTable.crc(table);
    int target = 1 - h.activeTable();
    storage.write(table, h.tableOffset(target));
    int bitmapCrc = h.bitmapCrc();
    if (h.dependsOnBase()) {
      ByteBuffer bits = encodeBitmap(checkpoint.blocks());
      bitmapCrc = Bitmap.crc(bits);
      storage.write(bits, h.bitmapOffset(target));
    }
    long directoryOffset = h.snapshotDirectoryOffset();
    long directoryBytes = h.snapshotDirectoryBytes();
    int directoryCrc = h.snapshotDirectoryCrc();
    long[] oldDirectory = new long[0];
    ByteBuffer directory = checkpoint.snapshotDirectory();
    if (directory != null) {
      if (!h.hasSnapshotsFeature()) {
        throw new IllegalStateException("a snapshot directory needs the snapshots feature");
      }
      long chunk = h.chunkSizeBytes();
      int slots = (int) Header.ceilDiv(directory.remaining(), chunk);
      directoryOffset = h.dataOffsetBytes() + directorySpace.reserve(slots) * chunk;
      directoryBytes = directory.remaining();
      CRC32C crc = new CRC32C();
      crc.update(directory.duplicate());
      directoryCrc = (int) crc.getValue();
      storage.write(directory.duplicate(), directoryOffset);
      oldDirectory = RecoveredMetadata.directorySlots(h);
    }
    storage.force();
    Header next =
        h.withNewTable(
            target,
            tableCrc,
            bitmapCrc,
            checkpoint.sizeBytes(),
            checkpoint.flags(),
            directoryOffset,
            directoryBytes,
            directoryCrc);
    next.writeTo(storage);
    header = next;
    journal.restart(next.stableEpoch());
    directorySpace.release(oldDirectory);
  }

  /** The slots the snapshot directory in force takes. */
  long[] directorySlots() {
    return RecoveredMetadata.directorySlots(header);
  }

  long journalUsedSectors() {
    return journal.usedSectors();
  }

  long journalSectorCount() {
    return journal.sectorCount();
  }

  /** A table copy's entries: {@code location + 1}, or 0 for a chunk without one. */
  static ByteBuffer encodeTable(Checkpoint.ChunkMap chunks) {
    int count = chunks.chunkCount();
    ByteBuffer buf =
        ByteBuffer.allocate(Math.multiplyExact(count, ChunkTable.ENTRY_BYTES))
            .order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < count; i++) {
      long location = chunks.location(i);
      buf.putInt(location < 0 ? 0 : Math.toIntExact(location + 1));
    }
    return buf.flip();
  }

  /** A bitmap copy: one bit per block, little-endian 64-bit words, cut to the content's length. */
  static ByteBuffer encodeBitmap(Checkpoint.BlockSet blocks) {
    long blockCount = blocks.blockCount();
    int words = Math.toIntExact((blockCount + 63) >>> 6);
    ByteBuffer buf = ByteBuffer.allocate(words * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < words; i++) {
      buf.putLong(blocks.word(i));
    }
    return buf.flip().limit(Math.toIntExact(Bitmap.contentBytes(blockCount))).slice();
  }
}
