package dev.fvdisk.engine.spi;

import java.nio.ByteBuffer;
import org.jspecify.annotations.Nullable;

/**
 * The whole of an image's durable metadata at one moment, replacing the log so far: size, flags,
 * every chunk's location and every clone block that lives in the image. Read through views, so the
 * engine need not copy its tables to describe them; the views stay valid for the call only.
 *
 * @param sizeBytes the virtual disk's size
 * @param flags the image's flag word (read-only, clean shutdown, copy-on-read, prefetch,
 *     standalone), as the format defines it
 * @param chunks the location of every chunk that may be made durable now
 * @param blocks the clone blocks that may be recorded as present now; empty for an image without a
 *     base
 * @param snapshotDirectory the image's snapshots and the chunk versions they hold, encoded as the
 *     format's snapshot directory; null for an image that never had a snapshot
 */
public record Checkpoint(
    long sizeBytes,
    int flags,
    ChunkMap chunks,
    BlockSet blocks,
    @Nullable ByteBuffer snapshotDirectory) {

  /** A checkpoint of an image without snapshots. */
  public Checkpoint(long sizeBytes, int flags, ChunkMap chunks, BlockSet blocks) {
    this(sizeBytes, flags, chunks, blocks, null);
  }

  /** Chunk locations by virtual chunk. */
  public interface ChunkMap {
    int chunkCount();

    /** The chunk's location, or -1 when it has none (reads as zeros). */
    long location(int chunkIndex);
  }

  /** Clone blocks present in the image, 64 to a word. */
  public interface BlockSet {
    /** A set for an image without a base. */
    BlockSet NONE =
        new BlockSet() {
          @Override
          public long blockCount() {
            return 0;
          }

          @Override
          public long word(int wordIndex) {
            throw new IndexOutOfBoundsException(wordIndex);
          }
        };

    long blockCount();

    /** Blocks {@code 64 × wordIndex} to {@code 64 × wordIndex + 63}: block n is bit n % 64. */
    long word(int wordIndex);
  }
}
