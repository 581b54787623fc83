package dev.fvdisk.engine.spi;

/**
 * What one commit round makes durable: changed chunk mappings (virtual chunk to location, or to
 * none) and ranges of clone blocks that now live in the image. The arrays are owned by the batch
 * once built.
 *
 * @param chunkIndexes virtual chunks whose mapping changed, each once, in any order
 * @param locations where each of them lives now, index for index; -1 for a chunk whose location was
 *     taken away (it reads as zeros)
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
