package dev.fvdisk.engine;

import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.BitSet;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * Makes an open image's metadata durable, and is the only writer of its header. Two ways, one
 * order:
 *
 * <ul>
 *   <li>the <b>commit round</b> (every flush, shared by concurrent callers through {@link
 *       GroupCommit}): take the new mappings and blocks, force the data, then append their journal
 *       records and force again, then mark them clean; when the journal has no room, a checkpoint
 *       instead;
 *   <li>the <b>checkpoint</b>: the whole table and bitmap to the inactive copies, force, then a
 *       header that switches to them and starts a new journal epoch. Growth, standalone, a new
 *       journal after recovery and a clean shutdown all end this way.
 * </ul>
 *
 * <p>A failed round or checkpoint latches the image (see {@link GroupCommit}): after a failed force
 * nobody can tell what reached the disk.
 */
final class Committer {

  private final Storage storage;
  private final ChunkStore chunks;
  private final CloneLayer clone;
  private final Journal journal;
  private final GroupCommit groupCommit;
  private volatile Header header;

  Committer(Storage storage, Header header, ChunkStore chunks, CloneLayer clone) {
    this.storage = storage;
    this.header = header;
    this.chunks = chunks;
    this.clone = clone;
    this.journal = new Journal(storage, header);
    this.groupCommit = new GroupCommit(storage.description(), this::commitRound);
  }

  /** The header in force; replaced, never changed, so a caller may keep the one it read. */
  Header header() {
    return header;
  }

  /** Returns once every write that returned before this call is durable. */
  void commit() throws IOException {
    groupCommit.commit();
  }

  /** Why the image is latched, or null while it is not. */
  @Nullable Throwable failure() {
    return groupCommit.failure();
  }

  /** Latches the image after a metadata change failed part-way. */
  void fail(Throwable error) {
    groupCommit.fail(error);
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

  /**
   * One group-commit round. Mappings are taken before the data force, so every slot they point at
   * (its zero-fill included) is durable before the record that points at it.
   */
  private void commitRound() throws IOException {
    ChunkTable t = chunks.table();
    // Blocks before mappings: a block's chunk mapping is queued before the block, so every block
    // taken here has its mapping taken in this round or an earlier one. The other order could
    // write a bit whose chunk a table switch leaves out.
    long[] blocks = clone.takeUnjournalledBlocks();
    List<Integer> mappings = chunks.takeUnjournalledMappings();
    storage.force();
    if (mappings.isEmpty() && blocks.length == 0) {
      return;
    }
    Journal.Batch batch = journalBatch(t, mappings, blocks);
    if (journal.fits(batch.mappingCount(), batch.rangeCount())) {
      journal.append(batch);
      storage.force();
      for (int chunkIndex : mappings) {
        t.markClean(chunkIndex);
      }
      for (long block : blocks) {
        clone.bitmap().markDurable(block);
      }
    } else {
      BitSet committable = new BitSet();
      mappings.forEach(committable::set);
      checkpoint(t, committable, blocks, header.sizeBytes(), header.flags());
    }
  }

  /** The journal records for one round: the mappings, and the blocks merged into ranges. */
  private static Journal.Batch journalBatch(
      ChunkTable t, List<Integer> mappings, long[] sortedBlocks) {
    int[] chunkIndexes = mappings.stream().mapToInt(Integer::intValue).toArray();
    long[] physicalChunks = new long[chunkIndexes.length];
    for (int i = 0; i < chunkIndexes.length; i++) {
      physicalChunks[i] = t.physicalChunk(chunkIndexes[i]);
    }
    long[] firstBlocks = new long[sortedBlocks.length];
    int[] blockCounts = new int[sortedBlocks.length];
    int ranges = 0;
    for (long block : sortedBlocks) {
      if (ranges > 0
          && firstBlocks[ranges - 1] + blockCounts[ranges - 1] == block
          && blockCounts[ranges - 1] < Integer.MAX_VALUE) {
        blockCounts[ranges - 1]++;
      } else {
        firstBlocks[ranges] = block;
        blockCounts[ranges] = 1;
        ranges++;
      }
    }
    return new Journal.Batch(
        chunkIndexes, physicalChunks, chunkIndexes.length, firstBlocks, blockCounts, ranges);
  }

  /**
   * A checkpoint of what is durable already, with {@code flags}: writes nothing new durable, but
   * switches to a new journal epoch and a header with the flags.
   */
  void checkpoint(int flags) throws IOException {
    checkpoint(chunks.table(), new BitSet(), new long[0], header.sizeBytes(), flags);
  }

  /**
   * Writes table {@code t} and the bitmap to the inactive copies, then a header that switches to
   * them with {@code newSizeBytes} and {@code newFlags} and starts a new journal epoch. Until the
   * header write completes the old copies and the old journal stay in force, so a crash at any
   * point leaves complete metadata. Table entries in {@code committable} are written even if DIRTY
   * and {@code committingBlocks} are set in the bitmap copy (their data is durable); other DIRTY
   * entries and fresh bits are left out.
   */
  void checkpoint(
      ChunkTable t, BitSet committable, long[] committingBlocks, long newSizeBytes, int newFlags)
      throws IOException {
    ByteBuffer encoded = t.encode(committable::get);
    int tableCrc = ChunkTable.crc(encoded);
    int target = 1 - header.activeTable();
    storage.write(encoded, header.tableOffset(target));
    int bitmapCrc = header.bitmapCrc();
    if (header.dependsOnBase()) {
      ByteBuffer bits = clone.bitmap().encode(committingBlocks);
      bitmapCrc = Bitmap.crc(bits);
      storage.write(bits, header.bitmapOffset(target));
    }
    storage.force();
    Header next = header.withNewTable(target, tableCrc, bitmapCrc, newSizeBytes, newFlags);
    next.writeTo(storage);
    header = next;
    journal.restart(next.stableEpoch());
    for (int i = committable.nextSetBit(0); i >= 0; i = committable.nextSetBit(i + 1)) {
      t.markClean(i);
    }
    for (long block : committingBlocks) {
      clone.bitmap().markDurable(block);
    }
  }

  long journalUsedSectors() {
    return journal.usedSectors();
  }

  long journalSectorCount() {
    return journal.sectorCount();
  }
}
