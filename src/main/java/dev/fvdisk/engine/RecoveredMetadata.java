package dev.fvdisk.engine;

import dev.fvdisk.engine.CorruptImageException.Kind;
import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * An image's metadata as read from storage, with the journal's records of the stable epoch replayed
 * (after a clean shutdown there are none), and the allocation state derived from it. Nothing is
 * written: opening an image and checking one both start here.
 *
 * @param snapshots the snapshots and the chunk versions they hold
 * @param directorySlots the slots the snapshot directory in force takes
 * @param frontier one past the highest physical chunk in use; slots from here on are unused
 * @param leakedChunks slots below the frontier that nothing holds
 * @param problems everything found wrong that did not stop the reading; empty for a sound image
 */
record RecoveredMetadata(
    Header header,
    ChunkTable table,
    Bitmap bitmap,
    SnapshotSet snapshots,
    long[] directorySlots,
    long storageBytes,
    long mappedChunks,
    long frontier,
    List<Long> leakedChunks,
    Journal.Replay replay,
    List<String> problems) {

  /**
   * Reads header, table, bitmap and journal.
   *
   * @throws CorruptImageException when the header or table cannot be read at all (wrong magic,
   *     unsupported version, checksum mismatch, truncated metadata)
   */
  static RecoveredMetadata recover(Storage storage) throws IOException {
    Header header = Header.read(storage);
    String file = storage.description();
    long storageBytes = storage.sizeBytes();
    if (storageBytes < header.dataOffsetBytes()) {
      throw new CorruptImageException(
          Kind.CORRUPT,
          file
              + ": file is "
              + storageBytes
              + " bytes long, shorter than its metadata area ("
              + header.dataOffsetBytes()
              + " bytes): truncated");
    }
    ChunkTable table = ChunkTable.load(storage, header);
    // A standalone image no longer reads its bitmap; all its blocks count as present.
    Bitmap bitmap = header.dependsOnBase() ? Bitmap.load(storage, header) : Bitmap.none();
    long slotLimit = (storageBytes - header.dataOffsetBytes()) / header.chunkSizeBytes();
    // Replayed even when the header says the image was shut down cleanly: if the newest header
    // copy is damaged, the older one may say "clean" while records of its epoch hold flushed
    // mappings. After a real clean shutdown the epoch has moved on and nothing is replayed.
    SnapshotSet snapshots = loadSnapshots(storage, header);
    Journal.Replay replay = Journal.replay(storage, header, table, bitmap, snapshots, slotLimit);
    snapshots.dropUnchanged(table);
    snapshots.dropUnheldPartials(table);
    snapshots.loadBaseBlockBits(s -> readBaseBlocks(storage, header, s));
    List<String> problems = new ArrayList<>(replay.problems());
    long[] directorySlots = directorySlots(header);

    Checker.Scan scan =
        Checker.scan(
            table,
            snapshots,
            directorySlots,
            slotLimit,
            "the end of the "
                + storageBytes
                + "-byte file ("
                + slotLimit
                + " chunk slots): truncated");
    scan.problems().forEach(problem -> problems.add(file + ": " + problem));
    return new RecoveredMetadata(
        header,
        table,
        bitmap,
        snapshots,
        directorySlots,
        storageBytes,
        scan.mappedChunks(),
        scan.frontier(),
        scan.leakedChunks(),
        replay,
        List.copyOf(problems));
  }

  /**
   * The bitmap copy of a snapshot taken while the clone read its base, checked against the CRC its
   * record holds.
   */
  private static long[] readBaseBlocks(Storage storage, Header header, SnapshotSet.Snapshot s)
      throws IOException {
    SnapshotSet.BaseBlocks where = s.baseBlocks();
    long blocks = header.baseBlockCount();
    long bytes = Bitmap.contentBytes(blocks);
    long offset = header.dataOffsetBytes() + where.firstSlot() * header.chunkSizeBytes();
    String what = storage.description() + ": bitmap copy of snapshot " + s.name();
    if (!header.dependsOnBase()
        || where.slotCount() != Header.ceilDiv(bytes, header.chunkSizeBytes())
        || offset + bytes > storage.sizeBytes()) {
      throw new CorruptImageException(
          Kind.CORRUPT,
          what
              + ": "
              + where.slotCount()
              + " slots at "
              + where.firstSlot()
              + " do not fit the image's base and size");
    }
    ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(bytes));
    storage.read(buf, offset);
    buf.flip();
    if (Bitmap.crc(buf) != where.crc()) {
      throw new CorruptImageException(Kind.CORRUPT, what + ": checksum mismatch");
    }
    return Bitmap.decode(buf, blocks);
  }

  /** The slots the snapshot directory in force takes; none without one. */
  static long[] directorySlots(Header header) {
    if (header.snapshotDirectoryOffset() == 0) {
      return new long[0];
    }
    long first =
        (header.snapshotDirectoryOffset() - header.dataOffsetBytes()) / header.chunkSizeBytes();
    int count = (int) Header.ceilDiv(header.snapshotDirectoryBytes(), header.chunkSizeBytes());
    long[] slots = new long[count];
    for (int i = 0; i < count; i++) {
      slots[i] = first + i;
    }
    return slots;
  }

  /** The snapshot directory in force, checked against the header's checksum; empty without one. */
  private static SnapshotSet loadSnapshots(Storage storage, Header header) throws IOException {
    if (header.snapshotDirectoryOffset() == 0) {
      return new SnapshotSet(header.chunkSizeBytes());
    }
    String where =
        storage.description()
            + ": snapshot directory at offset "
            + header.snapshotDirectoryOffset();
    long end = header.snapshotDirectoryOffset() + header.snapshotDirectoryBytes();
    if (end > storage.sizeBytes()) {
      throw new CorruptImageException(Kind.CORRUPT, where + " reaches past the end of the file");
    }
    ByteBuffer bytes = ByteBuffer.allocate((int) header.snapshotDirectoryBytes());
    storage.read(bytes, header.snapshotDirectoryOffset());
    bytes.flip();
    CRC32C crc = new CRC32C();
    crc.update(bytes.duplicate());
    if ((int) crc.getValue() != header.snapshotDirectoryCrc()) {
      throw new CorruptImageException(
          Kind.CORRUPT, where + ": checksum does not match the header's");
    }
    return SnapshotSet.decode(bytes, header.chunkSizeBytes(), where);
  }
}
