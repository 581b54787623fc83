package dev.fvdisk.engine;

import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.UUID;
import org.jspecify.annotations.Nullable;

/**
 * Where the regions of a new image go, and the writing of its first metadata: header, empty table
 * (a file hole), a clone's first bitmap, an empty journal. Regions follow each other in the order
 * the package documentation lists them; the data area starts on a 1 MiB boundary.
 */
final class ImageLayout {

  private ImageLayout() {}

  /**
   * Lays out a new image in empty storage, leaving it closed and clean.
   *
   * @param base the read-only image, or the snapshot, a clone reads through, or null
   * @throws IOException if the storage is not empty or cannot be written
   */
  static void format(
      Storage storage, ImageOptions options, @Nullable BaseImage base, String locator)
      throws IOException {
    if (storage.sizeBytes() != 0) {
      throw new IOException(
          storage.description() + ": cannot create an image in storage that is not empty");
    }
    Header.Draft d =
        new Header.Draft()
            .set(Header.Field.GENERATION, 1)
            .imageId(UUID.randomUUID())
            .set(Header.Field.SIZE, options.sizeBytes())
            .set(Header.Field.MAX_SIZE, options.maxSizeBytes())
            .set(Header.Field.CHUNK_SIZE, options.chunkSizeBytes())
            .set(Header.Field.CREATED_AT, System.currentTimeMillis())
            .set(Header.Field.STABLE_EPOCH, 1)
            .set(Header.Field.GROWTH_UNIT, options.growthUnitBytes());
    int flags = Header.FLAG_CLEAN_SHUTDOWN;
    long maxChunks = Header.ceilDiv(options.maxSizeBytes(), options.chunkSizeBytes());
    long tableBytes = ChunkTable.regionBytes(maxChunks);
    d.set(Header.Field.TABLE_BYTES, tableBytes)
        .set(Header.Field.TABLE_OFFSET_0, Header.REGION_BYTES)
        .set(Header.Field.TABLE_OFFSET_1, Header.REGION_BYTES + tableBytes);
    long next = Header.REGION_BYTES + 2 * tableBytes;
    long chunkCount = Header.ceilDiv(options.sizeBytes(), options.chunkSizeBytes());
    // A new table is all zeros ("unallocated"), which the file's hole already holds.
    d.set(
        Header.Field.TABLE_CRC,
        ChunkTable.crc(
            FileMetadataLog.encodeTable(
                new ChunkTable(Math.toIntExact(chunkCount)).durableWith(ChunkTable.Taken.NONE))));
    Bitmap bitmap = Bitmap.none();
    long bitmapOffset0 = 0;
    if (base != null) {
      Header.BaseLink link = baseLink(base, options, locator);
      int blockSize = options.blockSizeBytes();
      d.base(link)
          .set(Header.Field.BLOCK_SIZE, blockSize)
          .set(Header.Field.PREFETCH_DELAY, options.prefetchStartDelaySeconds());
      flags |= options.copyOnRead() ? Header.FLAG_COPY_ON_READ : 0;
      flags |= options.prefetchEnabled() ? Header.FLAG_PREFETCH : 0;
      long blocks = Header.ceilDiv(link.baseSizeBytes(), blockSize);
      if (blocks > ImageOptions.MAX_BITMAP_BLOCKS) {
        throw new IllegalArgumentException(
            "a base of "
                + link.baseSizeBytes()
                + " bytes needs more than "
                + ImageOptions.MAX_BITMAP_BLOCKS
                + " blocks of "
                + blockSize
                + " bytes; use larger blocks");
      }
      long bitmapBytes = Bitmap.regionBytes(blocks);
      bitmapOffset0 = next;
      d.set(Header.Field.BITMAP_BYTES, bitmapBytes)
          .set(Header.Field.BITMAP_OFFSET_0, next)
          .set(Header.Field.BITMAP_OFFSET_1, next + bitmapBytes);
      next += 2 * bitmapBytes;
      bitmap = new Bitmap(blocks);
      if (options.detectZeroBlocks()) {
        CloneLayer.markZeroBlocks(base, bitmap, blockSize, link.baseSizeBytes());
      }
    }
    d.set(Header.Field.FLAGS, flags);
    long journalBytes = options.journalSizeBytes();
    // The data area starts on a 1 MiB boundary so chunk slots line up with large device blocks.
    long dataOffset = Header.ceilDiv(next + journalBytes, 1 << 20) << 20;
    d.set(Header.Field.JOURNAL_OFFSET, next)
        .set(Header.Field.JOURNAL_BYTES, journalBytes)
        .set(Header.Field.DATA_OFFSET, dataOffset);
    storage.resize(dataOffset);
    if (base != null) {
      ByteBuffer encoded = FileMetadataLog.encodeBitmap(bitmap.durableWith(new long[0]));
      d.set(Header.Field.BITMAP_CRC, Bitmap.crc(encoded));
      storage.write(encoded, bitmapOffset0);
    }
    d.build().writeTo(storage);
  }

  private static Header.BaseLink baseLink(BaseImage base, ImageOptions options, String locator) {
    if (!base.isReadOnly()) {
      throw new IllegalArgumentException(
          base.description() + ": a base image must be marked read-only");
    }
    if (locator.getBytes(StandardCharsets.UTF_8).length > Header.MAX_LOCATOR_BYTES) {
      throw new IllegalArgumentException(
          "base locator is longer than " + Header.MAX_LOCATOR_BYTES + " bytes: " + locator);
    }
    long baseSize = Math.min(options.sizeBytes(), base.sizeBytes());
    return new Header.BaseLink(base.id(), base.snapshotId(), base.generation(), baseSize, locator);
  }
}
