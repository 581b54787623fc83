package dev.fvdisk.engine.spi;

import java.util.Arrays;

/**
 * What one commit round makes durable: changed chunk mappings (virtual chunk to location, or to
 * none), ranges of clone blocks that now live in the image, and ranges of clone blocks that were
 * zeroed and read as zeros whether or not their chunk has a location. The arrays are owned by the
 * batch once built.
 *
 * <p><b>Order.</b> A log must never keep a batch's mappings while losing its zero blocks: a chunk
 * is unmapped only after the zero blocks of its base range are recorded, and without them a block
 * the clone held could read the base's bytes again. Keeping the zero blocks without the rest is
 * harmless, so a log that cannot write the batch atomically writes the zero blocks durably first.
 *
 * @param chunkIndexes virtual chunks whose mapping changed, each once, in any order
 * @param locations where each of them lives now, index for index; -1 for a chunk whose location was
 *     taken away (it reads as zeros)
 * @param presentBlocks clone blocks whose data is now in the image
 * @param zeroBlocks clone blocks that now read as zeros (the zero of a block still in the base)
 */
public record CommitBatch(
    int[] chunkIndexes, long[] locations, BlockRanges presentBlocks, BlockRanges zeroBlocks) {

  public CommitBatch {
    if (chunkIndexes.length != locations.length) {
      throw new IllegalArgumentException("a batch needs one location per chunk");
    }
  }

  public int mappingCount() {
    return chunkIndexes.length;
  }

  public boolean isEmpty() {
    return chunkIndexes.length == 0 && presentBlocks.count() == 0 && zeroBlocks.count() == 0;
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
