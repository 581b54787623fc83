package dev.fvdisk.engine;

/**
 * How to lay out a new image. Build one with {@link #builder(long)}; every value other than the
 * virtual size has a default.
 *
 * @param sizeBytes virtual disk size in bytes; a positive multiple of 512
 * @param chunkSizeBytes allocation unit of the chunk table, a power of two from 4 KiB to 1 GiB;
 *     default 1 MiB
 * @param maxSizeBytes the largest virtual size the image may later grow to without moving data;
 *     table space for it is reserved but stays a hole in the file until used. Default: the larger
 *     of the virtual size and {@code min(16 TiB, chunkSize × 2^24)}, which reserves at most 64 MiB
 *     of (sparse) table space per copy
 * @param journalSizeBytes size of the metadata journal, a multiple of 512; default 16 MiB. A larger
 *     journal rewrites the whole table less often
 * @param growthUnitBytes how much the file grows by when chunks run out, a multiple of the chunk
 *     size; default 100 MiB rounded up to whole chunks
 * @param blockSizeBytes for clones: the copy-on-write unit tracked by the bitmap, a power of two
 *     from 512 bytes to the chunk size; default 64 KiB (or the chunk size, if smaller). Ignored
 *     without a base
 * @param copyOnRead for clones: store blocks read from the base in the image too; default off
 * @param prefetchEnabled for clones: copy the whole base into the image in the background; default
 *     off
 * @param prefetchStartDelaySeconds seconds after open before prefetching starts; 0 starts at once
 * @param detectZeroBlocks for clones: at creation, scan the base and mark all-zero blocks as
 *     present without copying them; default off
 */
public record ImageOptions(
    long sizeBytes,
    int chunkSizeBytes,
    long maxSizeBytes,
    long journalSizeBytes,
    long growthUnitBytes,
    int blockSizeBytes,
    boolean copyOnRead,
    boolean prefetchEnabled,
    int prefetchStartDelaySeconds,
    boolean detectZeroBlocks) {

  public static final int SECTOR_BYTES = 512;
  public static final int DEFAULT_CHUNK_SIZE_BYTES = 1 << 20;
  public static final int MIN_CHUNK_SIZE_BYTES = 4096;
  public static final int MAX_CHUNK_SIZE_BYTES = 1 << 30;
  public static final long DEFAULT_MAX_SIZE_BYTES = 16L << 40;
  public static final long MAX_SIZE_LIMIT_BYTES = 1L << 56;
  public static final long DEFAULT_JOURNAL_SIZE_BYTES = 16L << 20;
  public static final long MAX_JOURNAL_SIZE_BYTES = 1L << 30;
  public static final long DEFAULT_GROWTH_UNIT_BYTES = 100L << 20;
  public static final long MAX_GROWTH_UNIT_BYTES = 64L << 30;
  public static final int DEFAULT_BLOCK_SIZE_BYTES = 64 << 10;

  /** Most blocks a bitmap may track: 2^31 bits, 256 MiB per bitmap copy. */
  public static final long MAX_BITMAP_BLOCKS = 1L << 31;

  /** Validates every value; the message names the offending one. */
  public ImageOptions {
    if (sizeBytes <= 0 || sizeBytes % SECTOR_BYTES != 0) {
      throw new IllegalArgumentException(
          "sizeBytes must be a positive multiple of 512, was " + sizeBytes);
    }
    if (Integer.bitCount(chunkSizeBytes) != 1
        || chunkSizeBytes < MIN_CHUNK_SIZE_BYTES
        || chunkSizeBytes > MAX_CHUNK_SIZE_BYTES) {
      throw new IllegalArgumentException(
          "chunkSizeBytes must be a power of two from "
              + MIN_CHUNK_SIZE_BYTES
              + " to "
              + MAX_CHUNK_SIZE_BYTES
              + ", was "
              + chunkSizeBytes);
    }
    if (maxSizeBytes < sizeBytes || maxSizeBytes > MAX_SIZE_LIMIT_BYTES) {
      throw new IllegalArgumentException(
          "maxSizeBytes must be between sizeBytes ("
              + sizeBytes
              + ") and "
              + MAX_SIZE_LIMIT_BYTES
              + ", was "
              + maxSizeBytes);
    }
    if (Header.ceilDiv(maxSizeBytes, chunkSizeBytes) > ChunkTable.MAX_ENTRIES) {
      throw new IllegalArgumentException(
          "maxSizeBytes "
              + maxSizeBytes
              + " needs more than "
              + ChunkTable.MAX_ENTRIES
              + " chunks of "
              + chunkSizeBytes
              + " bytes; use larger chunks");
    }
    if (journalSizeBytes < SECTOR_BYTES
        || journalSizeBytes % SECTOR_BYTES != 0
        || journalSizeBytes > MAX_JOURNAL_SIZE_BYTES) {
      throw new IllegalArgumentException(
          "journalSizeBytes must be a multiple of 512 from 512 to "
              + MAX_JOURNAL_SIZE_BYTES
              + ", was "
              + journalSizeBytes);
    }
    if (growthUnitBytes < chunkSizeBytes
        || growthUnitBytes % chunkSizeBytes != 0
        || growthUnitBytes > MAX_GROWTH_UNIT_BYTES) {
      throw new IllegalArgumentException(
          "growthUnitBytes must be a multiple of chunkSizeBytes ("
              + chunkSizeBytes
              + ") up to "
              + MAX_GROWTH_UNIT_BYTES
              + ", was "
              + growthUnitBytes);
    }
    if (Integer.bitCount(blockSizeBytes) != 1
        || blockSizeBytes < SECTOR_BYTES
        || blockSizeBytes > chunkSizeBytes) {
      throw new IllegalArgumentException(
          "blockSizeBytes must be a power of two from 512 to chunkSizeBytes ("
              + chunkSizeBytes
              + "), was "
              + blockSizeBytes);
    }
    if (prefetchStartDelaySeconds < 0) {
      throw new IllegalArgumentException(
          "prefetchStartDelaySeconds must not be negative, was " + prefetchStartDelaySeconds);
    }
  }

  public static Builder builder(long sizeBytes) {
    return new Builder(sizeBytes);
  }

  /** Collects options; {@link #build()} fills in the defaults that depend on other values. */
  public static final class Builder {
    private final long sizeBytes;
    private int chunkSizeBytes = DEFAULT_CHUNK_SIZE_BYTES;
    private long maxSizeBytes;
    private long journalSizeBytes = DEFAULT_JOURNAL_SIZE_BYTES;
    private long growthUnitBytes;
    private int blockSizeBytes;
    private boolean copyOnRead;
    private boolean prefetchEnabled;
    private int prefetchStartDelaySeconds;
    private boolean detectZeroBlocks;

    private Builder(long sizeBytes) {
      this.sizeBytes = sizeBytes;
    }

    public Builder chunkSizeBytes(int value) {
      this.chunkSizeBytes = value;
      return this;
    }

    public Builder maxSizeBytes(long value) {
      this.maxSizeBytes = value;
      return this;
    }

    public Builder journalSizeBytes(long value) {
      this.journalSizeBytes = value;
      return this;
    }

    public Builder growthUnitBytes(long value) {
      this.growthUnitBytes = value;
      return this;
    }

    public Builder blockSizeBytes(int value) {
      this.blockSizeBytes = value;
      return this;
    }

    public Builder copyOnRead(boolean value) {
      this.copyOnRead = value;
      return this;
    }

    public Builder prefetch(boolean enabled, int startDelaySeconds) {
      this.prefetchEnabled = enabled;
      this.prefetchStartDelaySeconds = startDelaySeconds;
      return this;
    }

    public Builder detectZeroBlocks(boolean value) {
      this.detectZeroBlocks = value;
      return this;
    }

    public ImageOptions build() {
      long max = maxSizeBytes;
      if (max == 0) {
        long reserve = Math.min(DEFAULT_MAX_SIZE_BYTES, (long) chunkSizeBytes << 24);
        max = Math.max(sizeBytes, reserve);
      }
      long growth = growthUnitBytes;
      if (growth == 0 && chunkSizeBytes > 0) {
        growth = Header.ceilDiv(DEFAULT_GROWTH_UNIT_BYTES, chunkSizeBytes) * chunkSizeBytes;
      }
      int block = blockSizeBytes;
      if (block == 0) {
        block = Math.min(DEFAULT_BLOCK_SIZE_BYTES, chunkSizeBytes);
      }
      return new ImageOptions(
          sizeBytes,
          chunkSizeBytes,
          max,
          journalSizeBytes,
          growth,
          block,
          copyOnRead,
          prefetchEnabled,
          prefetchStartDelaySeconds,
          detectZeroBlocks);
    }
  }
}
