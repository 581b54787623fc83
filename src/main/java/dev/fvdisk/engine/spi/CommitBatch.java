package dev.fvdisk.engine.spi;

import java.util.Arrays;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * What one commit round makes durable: changed chunk mappings (virtual chunk to location, or to
 * none), ranges of clone blocks that now live in the image, ranges of clone blocks that were zeroed
 * and read as zeros whether or not their chunk has a location, and snapshots taken or deleted. The
 * arrays are owned by the batch once built.
 *
 * <p><b>Order.</b> A log must never keep a batch's mappings while losing its zero blocks: a chunk
 * is unmapped only after the zero blocks of its base range are recorded, and without them a block
 * the clone held could read the base's bytes again. Keeping the zero blocks without the rest is
 * harmless, so a log that cannot write the batch atomically writes the zero blocks durably first. A
 * mapping that preserves a chunk's previous location for a snapshot must be kept together with that
 * location, or not at all: kept alone, the snapshot would read the chunk's new content.
 *
 * @param chunkIndexes virtual chunks whose mapping changed, each once, in any order
 * @param locations where each of them lives now, index for index; -1 for a chunk whose location was
 *     taken away (it reads as zeros)
 * @param previousLocations index for index, where the chunk was when snapshot {@code preservedFor}
 *     was taken, for a change that is the chunk's first since then (-1: nowhere), else {@link
 *     #NOT_PRESERVED}
 * @param preservedFor the newest snapshot, which the previous locations are kept for; 0 if none
 * @param partialVersions index for index, for a chunk whose location holds a partial version (some
 *     blocks, the rest read through a backing slot): that version as taken; null for a whole chunk
 *     or none. A chunk may appear only for this, its mapping unchanged.
 * @param presentBlocks clone blocks whose data is now in the image
 * @param zeroBlocks clone blocks that now read as zeros (the zero of a block still in the base)
 * @param snapshotEvents snapshots taken or deleted, in order; a batch that has any has nothing else
 */
public record CommitBatch(
    int[] chunkIndexes,
    long[] locations,
    long[] previousLocations,
    int preservedFor,
    @Nullable PartialVersion[] partialVersions,
    BlockRanges presentBlocks,
    BlockRanges zeroBlocks,
    List<SnapshotEvent> snapshotEvents) {

  /** In {@link #previousLocations}: the change preserved nothing. */
  public static final long NOT_PRESERVED = Long.MIN_VALUE;

  public CommitBatch {
    if (chunkIndexes.length != locations.length
        || previousLocations.length != locations.length
        || partialVersions.length != locations.length) {
      throw new IllegalArgumentException("a batch needs one location per chunk");
    }
    snapshotEvents = List.copyOf(snapshotEvents);
  }

  /** A batch of an image without snapshots. */
  public CommitBatch(
      int[] chunkIndexes, long[] locations, BlockRanges presentBlocks, BlockRanges zeroBlocks) {
    this(
        chunkIndexes,
        locations,
        notPreserved(chunkIndexes.length),
        0,
        new PartialVersion[chunkIndexes.length],
        presentBlocks,
        zeroBlocks,
        List.of());
  }

  private static long[] notPreserved(int count) {
    long[] none = new long[count];
    Arrays.fill(none, NOT_PRESERVED);
    return none;
  }

  /**
   * A chunk version that holds only some blocks of its chunk.
   *
   * @param backing the slot its other blocks read from
   * @param presentBits the blocks it holds: bit {@code b % 64} of word {@code b / 64}
   */
  public record PartialVersion(long backing, long[] presentBits) {}

  /** How many mappings preserve a previous location and are whole chunks. */
  public int preservedCount() {
    int n = 0;
    for (int i = 0; i < previousLocations.length; i++) {
      if (previousLocations[i] != NOT_PRESERVED && partialVersions[i] == null) {
        n++;
      }
    }
    return n;
  }

  /** How many mappings name a partial version. */
  public int partialCount() {
    int n = 0;
    for (PartialVersion v : partialVersions) {
      if (v != null) {
        n++;
      }
    }
    return n;
  }

  public int mappingCount() {
    return chunkIndexes.length;
  }

  public boolean isEmpty() {
    return chunkIndexes.length == 0
        && presentBlocks.count() == 0
        && zeroBlocks.count() == 0
        && snapshotEvents.isEmpty();
  }

  /**
   * Runs of consecutive clone blocks.
   *
   * @param firstBlocks first block of each range, ascending, ranges neither touching nor
   *     overlapping
   * @param blockCounts blocks in each range, index for index
   */
  public record BlockRanges(long[] firstBlocks, int[] blockCounts) {

    public static final BlockRanges NONE = new BlockRanges(new long[0], new int[0]);

    public BlockRanges {
      if (firstBlocks.length != blockCounts.length) {
        throw new IllegalArgumentException("block ranges need one count per range");
      }
    }

    /** The ranges of ascending, distinct block numbers. */
    public static BlockRanges of(long[] sortedBlocks) {
      long[] firsts = new long[sortedBlocks.length];
      int[] counts = new int[sortedBlocks.length];
      int ranges = 0;
      for (long block : sortedBlocks) {
        if (ranges > 0
            && firsts[ranges - 1] + counts[ranges - 1] == block
            && counts[ranges - 1] < Integer.MAX_VALUE) {
          counts[ranges - 1]++;
        } else {
          firsts[ranges] = block;
          counts[ranges] = 1;
          ranges++;
        }
      }
      return new BlockRanges(Arrays.copyOf(firsts, ranges), Arrays.copyOf(counts, ranges));
    }

    public int count() {
      return firstBlocks.length;
    }
  }
}
