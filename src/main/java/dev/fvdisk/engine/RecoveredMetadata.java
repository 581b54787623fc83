package dev.fvdisk.engine;

import dev.fvdisk.engine.CorruptImageException.Kind;
import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
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

    BitSet referenced = new BitSet();
    int[] referencedBy = null;
    long mapped = 0;
    long frontier = 0;
    for (int i = 0; i < table.chunkCount(); i++) {
      long physical = table.physicalChunk(i);
      if (physical < 0) {
        continue;
      }
      if (physical >= slotLimit) {
        problems.add(
            file
                + ": chunk "
                + i
                + " is mapped to physical chunk "
                + physical
                + ", past the end of the "
                + storageBytes
                + "-byte file ("
                + slotLimit
                + " chunk slots): truncated");
        continue;
      }
      if (referenced.get((int) physical)) {
        if (referencedBy == null) {
          referencedBy = firstReferences(table);
        }
        problems.add(
            file
                + ": physical chunk "
                + physical
                + " is used by chunk "
                + referencedBy[(int) physical]
                + " and by chunk "
                + i);
        continue;
      }
      referenced.set((int) physical);
      mapped++;
      frontier = Math.max(frontier, physical + 1);
    }
    List<Long> leaked = new ArrayList<>();
    for (int p = referenced.nextClearBit(0); p < frontier; p = referenced.nextClearBit(p + 1)) {
      leaked.add((long) p);
    }
    return new RecoveredMetadata(
        header,
        table,
        bitmap,
        storageBytes,
        mapped,
        frontier,
        List.copyOf(leaked),
        replay,
        List.copyOf(problems));
  }

  /** For error messages only: which virtual chunk first references each physical chunk. */
  private static int[] firstReferences(ChunkTable table) {
    int max = 0;
    for (int i = 0; i < table.chunkCount(); i++) {
      max = (int) Math.max(max, table.physicalChunk(i) + 1);
    }
    int[] first = new int[max];
    Arrays.fill(first, -1);
    for (int i = 0; i < table.chunkCount(); i++) {
      long p = table.physicalChunk(i);
      if (p >= 0 && p < max && first[(int) p] < 0) {
        first[(int) p] = i;
      }
    }
    return first;
  }
}
