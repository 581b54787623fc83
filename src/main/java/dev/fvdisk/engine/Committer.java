package dev.fvdisk.engine;

import dev.fvdisk.engine.spi.Checkpoint;
import dev.fvdisk.engine.spi.ChunkData;
import dev.fvdisk.engine.spi.CommitBatch;
import dev.fvdisk.engine.spi.MetadataLog;
import dev.fvdisk.engine.spi.SnapshotEvent;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.Supplier;
import java.util.stream.LongStream;
import org.jspecify.annotations.Nullable;

/**
 * Makes an open image's writes durable through the persistence ports ({@link ChunkData}, {@link
 * MetadataLog}). Two ways, one order:
 *
 * <ul>
 *   <li>the <b>commit round</b> (every flush, shared by concurrent callers through {@link
 *       GroupCommit}): take the new mappings and blocks, seal the chunk data, then append them to
 *       the metadata log, then mark them clean; when the log has no room, a checkpoint instead;
 *   <li>the <b>checkpoint</b>: the whole chunk map and block set, replacing the log so far. Growth,
 *       standalone, a new journal after recovery and a clean shutdown all end this way.
 * </ul>
 *
 * <p>A failed round or checkpoint latches the image (see {@link GroupCommit}): after a failed force
 * nobody can tell what reached the disk.
 */
final class Committer {

  private final ChunkData data;
  private final MetadataLog log;
  private final Supplier<Header> header;
  private final ChunkStore chunks;
  private final CloneLayer clone;
  private final GroupCommit groupCommit;

  /** Snapshots taken or deleted and not journalled yet, in order. */
  private final Queue<SnapshotEvent> snapshotEvents = new ConcurrentLinkedQueue<>();

  /**
   * @param header the header in force, for the size and flags a checkpoint carries on
   */
  Committer(
      String description,
      ChunkData data,
      MetadataLog log,
      Supplier<Header> header,
      ChunkStore chunks,
      CloneLayer clone) {
    this.data = data;
    this.log = log;
    this.header = header;
    this.chunks = chunks;
    this.clone = clone;
    this.groupCommit = new GroupCommit(description, this::commitRound);
  }

  /** Returns once every write that returned before this call is durable. */
  void commit() throws IOException {
    groupCommit.commit();
  }

  /**
   * Queues a snapshot taken or deleted for the next round; the caller then {@linkplain #commit
   * commits}, holding the image exclusively, so the round records nothing else.
   */
  void queue(SnapshotEvent event) {
    snapshotEvents.add(event);
  }

  /** Why the image is latched, or null while it is not. */
  @Nullable Throwable failure() {
    return groupCommit.failure();
  }

  /** Latches the image after a metadata change failed part-way. */
  void fail(Throwable error) {
    groupCommit.fail(error);
  }

  /**
   * One group-commit round. Mappings are taken before the data is sealed, so every slot they point
   * at (its zero-fill included) is durable before the record that points at it.
   */
  private void commitRound() throws IOException {
    ChunkTable t = chunks.table();
    // Blocks before mappings: a block's chunk mapping is queued before the block, so every block
    // taken here has its mapping taken in this round or an earlier one. The other order could
    // write a bit whose chunk a table switch leaves out.
    long[] blocks = clone.takeUnjournalledBlocks();
    ChunkStore.Unjournalled changes = chunks.takeUnjournalled();
    // Zero blocks after mappings, for the opposite reason: a chunk is unmapped only once the zero
    // blocks of its base range are queued, so every unmapping taken here goes with its zero blocks.
    long[] zeroBlocks = clone.takeUnjournalledZeroBlocks();
    ChunkTable.Taken mappings = changes.changes();
    List<SnapshotEvent> events = new ArrayList<>();
    for (SnapshotEvent e; (e = snapshotEvents.poll()) != null; ) {
      events.add(e);
    }
    data.seal();
    // The blocks taken are durable now, so a checkpoint may record them from here on.
    for (int i = 0; i < changes.versions().length; i++) {
      if (changes.versions()[i] != null) {
        changes.versions()[i].markSealed(changes.versionBits()[i]);
      }
    }
    CommitBatch batch = batch(mappings, changes, blocks, zeroBlocks, events);
    if (batch.isEmpty()) {
      chunks.allocator().release(changes.unmappedSlots());
      return;
    }
    if (log.fits(batch)) {
      log.append(batch);
      markClean(t, mappings);
      markDurable(blocks);
      markDurable(zeroBlocks);
    } else {
      Header h = header.get();
      long[] allBlocks =
          LongStream.concat(Arrays.stream(blocks), Arrays.stream(zeroBlocks)).toArray();
      checkpoint(t, mappings, allBlocks, h.sizeBytes(), h.flags());
    }
    // Only now can no durable mapping point at them.
    chunks.allocator().release(changes.unmappedSlots());
  }

  private static void markClean(ChunkTable t, ChunkTable.Taken taken) {
    for (int i = 0; i < taken.size(); i++) {
      t.markClean(taken.chunkIndexes()[i], taken.raws()[i]);
    }
  }

  private void markDurable(long[] blocks) {
    for (long block : blocks) {
      clone.bitmap().markDurable(block);
    }
  }

  /**
   * One round's batch: the mappings as taken (location -1: unmapped), with the locations they
   * preserve for the newest snapshot, blocks merged into ranges, and the snapshot events.
   */
  private CommitBatch batch(
      ChunkTable.Taken mappings,
      ChunkStore.Unjournalled changes,
      long[] sortedBlocks,
      long[] sortedZeroBlocks,
      List<SnapshotEvent> events) {
    int[] chunkIndexes = mappings.chunkIndexes();
    long[] locations = new long[chunkIndexes.length];
    CommitBatch.PartialVersion[] partials = new CommitBatch.PartialVersion[chunkIndexes.length];
    for (int i = 0; i < chunkIndexes.length; i++) {
      locations[i] = mappings.location(i);
      PartialVersions.Version v = changes.versions()[i];
      if (v != null) {
        partials[i] = new CommitBatch.PartialVersion(v.backing, changes.versionBits()[i]);
      }
    }
    SnapshotSet.Snapshot newest = chunks.snapshots().newest();
    return new CommitBatch(
        chunkIndexes,
        locations,
        changes.previousLocations(),
        newest == null ? 0 : newest.id(),
        partials,
        CommitBatch.BlockRanges.of(sortedBlocks),
        CommitBatch.BlockRanges.of(sortedZeroBlocks),
        events);
  }

  /**
   * Seals the chunk data, then writes a checkpoint of what is durable with the header's flags: for
   * a change made while the image is held exclusively that must not reach the log as records.
   */
  void sealAndCheckpoint() throws IOException {
    data.seal();
    checkpoint(header.get().flags());
  }

  /**
   * A checkpoint of what is durable already, with {@code flags}: makes nothing new durable, but
   * starts a new log under a header with the flags.
   */
  void checkpoint(int flags) throws IOException {
    checkpoint(chunks.table(), ChunkTable.Taken.NONE, new long[0], header.get().sizeBytes(), flags);
  }

  /**
   * Writes a checkpoint of table {@code t} and the bitmap with {@code newSizeBytes} and {@code
   * newFlags}, then marks what it covered clean. Entries in {@code committing} are recorded as
   * taken and {@code committingBlocks} as present (their data is sealed); other DIRTY entries are
   * recorded as unmapped and fresh bits are left out.
   */
  void checkpoint(
      ChunkTable t,
      ChunkTable.Taken committing,
      long[] committingBlocks,
      long newSizeBytes,
      int newFlags)
      throws IOException {
    Checkpoint.BlockSet blocks =
        clone.dependsOnBase()
            ? clone.bitmap().durableWith(committingBlocks)
            : Checkpoint.BlockSet.NONE;
    ByteBuffer directory = header.get().hasSnapshotsFeature() ? chunks.snapshots().encode() : null;
    log.checkpoint(
        new Checkpoint(newSizeBytes, newFlags, t.durableWith(committing), blocks, directory));
    markClean(t, committing);
    markDurable(committingBlocks);
  }
}
