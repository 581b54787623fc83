package dev.fvdisk.engine.spi;

/**
 * What one commit round makes durable: new chunk mappings (virtual chunk to location) and ranges of
 * clone blocks that now live in the image. The arrays are owned by the batch once built.
 *
 * @param chunkIndexes virtual chunks newly mapped, in any order
 * @param locations where each of them lives, index for index
 * @param firstBlocks first block of each range, ascending, ranges neither touching nor overlapping
 * @param blockCounts blocks in each range, index for index
 */
public record CommitBatch(
    int[] chunkIndexes, long[] locations, long[] firstBlocks, int[] blockCounts) {

  public CommitBatch {
    if (chunkIndexes.length != locations.length || firstBlocks.length != blockCounts.length) {
      throw new IllegalArgumentException(
          "a batch needs one location per chunk, one count per range");
    }
  }

  public int mappingCount() {
    return chunkIndexes.length;
  }

  public int rangeCount() {
    return firstBlocks.length;
  }
}
