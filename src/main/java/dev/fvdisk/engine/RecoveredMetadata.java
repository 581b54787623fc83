package dev.fvdisk.engine;

import dev.fvdisk.engine.CorruptImageException.Kind;
import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * An image's metadata as read from storage, with the journal's records of the stable epoch replayed
 * (after a clean shutdown there are none), and the allocation state derived from it. Nothing is
 * written: opening an image and checking one both start here.
 *
 * @param frontier one past the highest physical chunk in use; slots from here on are unused
 * @param leakedChunks slots below the frontier that no table entry references
 * @param problems everything found wrong that did not stop the reading; empty for a sound image
 */
record RecoveredMetadata(
    Header header,
    ChunkTable table,
    Bitmap bitmap,
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
    Journal.Replay replay = Journal.replay(storage, header, table, bitmap, slotLimit);
    List<String> problems = new ArrayList<>(replay.problems());

    Checker.Scan scan =
        Checker.scan(
            table,
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
        storageBytes,
        scan.mappedChunks(),
        scan.frontier(),
        scan.leakedChunks(),
        replay,
        List.copyOf(problems));
  }
}
