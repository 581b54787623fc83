package dev.fvdisk.engine;

import dev.fvdisk.engine.CorruptImageException.Kind;
import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.UUID;
import java.util.zip.CRC32C;

/**
 * The image header, and its codec.
 *
 * <p>Two copies live at the start of the file, slot 0 at offset 0 and slot 1 at offset 4096. Each
 * write increments {@link #generation} and goes to slot {@code generation % 2}, so consecutive
 * writes alternate and a torn write can only damage the copy that was already older. Reading takes
 * the newest copy whose checksum verifies.
 *
 * <p>Layout of one copy (little-endian; the rest of the 4096-byte slot is zero):
 *
 * <pre>
 * offset size field
 *      0    8 magic "FVDISK\r\n"
 *      8    4 format version (1)
 *     12    4 header length in bytes, up to the checksum (152)
 *     16    8 generation: incremented by every header write
 *     24   16 image UUID (most significant 8 bytes, then least significant 8 bytes)
 *     40    8 virtual size in bytes (multiple of 512)
 *     48    8 maximum virtual size in bytes the table space is reserved for
 *     56    4 chunk size in bytes (power of two)
 *     60    4 flags: bit 0 = clean shutdown, bit 1 = read-only (data writes refused); other bits
 *               zero and ignored when read
 *     64    4 incompatible features: must be 0 for this version
 *     68    4 active table copy (0 or 1)
 *     72    8 offset of table copy 0
 *     80    8 offset of table copy 1
 *     88    8 bytes reserved for each table copy
 *     96    4 CRC-32C of the active table's entries (one per chunk of the virtual size)
 *    100    4 reserved, zero
 *    104    8 journal offset
 *    112    8 journal size in bytes
 *    120    8 data area offset (chunk slot 0)
 *    128    8 storage growth unit in bytes
 *    136    8 stable journal epoch: records of older epochs are ignored
 *    144    8 creation time, milliseconds since the epoch
 *    152    4 CRC-32C of bytes 0..151
 * </pre>
 */
record Header(
    long generation,
    UUID imageId,
    long sizeBytes,
    long maxSizeBytes,
    int chunkSizeBytes,
    boolean cleanShutdown,
    boolean readOnly,
    int activeTable,
    long tableOffset0,
    long tableOffset1,
    long tableRegionBytes,
    int tableCrc,
    long journalOffsetBytes,
    long journalSizeBytes,
    long dataOffsetBytes,
    long growthUnitBytes,
    long stableEpoch,
    long createdAtMillis) {

  static final int FORMAT_VERSION = 1;
  static final int SLOT_BYTES = 4096;
  static final int SLOT_COUNT = 2;
  static final int REGION_BYTES = SLOT_BYTES * SLOT_COUNT;
  static final int LENGTH_BYTES = 152;
  static final long MAGIC =
      ByteBuffer.wrap("FVDISK\r\n".getBytes(StandardCharsets.US_ASCII))
          .order(ByteOrder.LITTLE_ENDIAN)
          .getLong();

  private static final int FLAG_CLEAN_SHUTDOWN = 1;
  private static final int FLAG_READ_ONLY = 2;

  long tableOffset(int copy) {
    return copy == 0 ? tableOffset0 : tableOffset1;
  }

  long activeTableOffset() {
    return tableOffset(activeTable);
  }

  long chunkCount() {
    return ceilDiv(sizeBytes, chunkSizeBytes);
  }

  long journalSectorCount() {
    return journalSizeBytes / Journal.SECTOR_BYTES;
  }

  Header withCleanShutdown(boolean clean) {
    return new Header(
        generation + 1,
        imageId,
        sizeBytes,
        maxSizeBytes,
        chunkSizeBytes,
        clean,
        readOnly,
        activeTable,
        tableOffset0,
        tableOffset1,
        tableRegionBytes,
        tableCrc,
        journalOffsetBytes,
        journalSizeBytes,
        dataOffsetBytes,
        growthUnitBytes,
        stableEpoch,
        createdAtMillis);
  }

  Header withReadOnly(boolean newReadOnly) {
    return new Header(
        generation + 1,
        imageId,
        sizeBytes,
        maxSizeBytes,
        chunkSizeBytes,
        cleanShutdown,
        newReadOnly,
        activeTable,
        tableOffset0,
        tableOffset1,
        tableRegionBytes,
        tableCrc,
        journalOffsetBytes,
        journalSizeBytes,
        dataOffsetBytes,
        growthUnitBytes,
        stableEpoch,
        createdAtMillis);
  }

  /** The header that makes a freshly written table copy active and starts a new journal epoch. */
  Header withNewTable(int newActiveTable, int newTableCrc, long newSizeBytes, boolean clean) {
    return new Header(
        generation + 1,
        imageId,
        newSizeBytes,
        maxSizeBytes,
        chunkSizeBytes,
        clean,
        readOnly,
        newActiveTable,
        tableOffset0,
        tableOffset1,
        tableRegionBytes,
        newTableCrc,
        journalOffsetBytes,
        journalSizeBytes,
        dataOffsetBytes,
        growthUnitBytes,
        stableEpoch + 1,
        createdAtMillis);
  }

  ByteBuffer encode() {
    ByteBuffer buf = ByteBuffer.allocate(SLOT_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    buf.putLong(MAGIC)
        .putInt(FORMAT_VERSION)
        .putInt(LENGTH_BYTES)
        .putLong(generation)
        .putLong(imageId.getMostSignificantBits())
        .putLong(imageId.getLeastSignificantBits())
        .putLong(sizeBytes)
        .putLong(maxSizeBytes)
        .putInt(chunkSizeBytes)
        .putInt((cleanShutdown ? FLAG_CLEAN_SHUTDOWN : 0) | (readOnly ? FLAG_READ_ONLY : 0))
        .putInt(0)
        .putInt(activeTable)
        .putLong(tableOffset0)
        .putLong(tableOffset1)
        .putLong(tableRegionBytes)
        .putInt(tableCrc)
        .putInt(0)
        .putLong(journalOffsetBytes)
        .putLong(journalSizeBytes)
        .putLong(dataOffsetBytes)
        .putLong(growthUnitBytes)
        .putLong(stableEpoch)
        .putLong(createdAtMillis);
    buf.putInt(LENGTH_BYTES, crc(buf, LENGTH_BYTES));
    buf.clear();
    return buf;
  }

  /** Writes this header into its slot and forces it. */
  void writeTo(Storage storage) throws IOException {
    storage.write(encode(), slotOffset(generation));
    storage.force();
  }

  static long slotOffset(long generation) {
    return Math.floorMod(generation, SLOT_COUNT) * (long) SLOT_BYTES;
  }

  /**
   * Reads both slots and returns the newest valid header.
   *
   * @throws CorruptImageException when no slot holds a valid header; the message explains what is
   *     wrong with each slot
   */
  static Header read(Storage storage) throws IOException {
    long fileBytes = storage.sizeBytes();
    if (fileBytes < REGION_BYTES) {
      throw new CorruptImageException(
          fileBytes < 8 ? Kind.NOT_AN_IMAGE : Kind.CORRUPT,
          storage.description()
              + ": file is "
              + fileBytes
              + " bytes long, shorter than the "
              + REGION_BYTES
              + "-byte header region; not an fvdisk image or truncated");
    }
    Header best = null;
    CorruptImageException[] failures = new CorruptImageException[SLOT_COUNT];
    for (int slot = 0; slot < SLOT_COUNT; slot++) {
      ByteBuffer buf = ByteBuffer.allocate(SLOT_BYTES).order(ByteOrder.LITTLE_ENDIAN);
      storage.read(buf, (long) slot * SLOT_BYTES);
      try {
        Header h = decode(buf, storage.description(), (long) slot * SLOT_BYTES);
        if (best == null || h.generation > best.generation) {
          best = h;
        }
      } catch (CorruptImageException e) {
        failures[slot] = e;
      }
    }
    if (best != null) {
      return best;
    }
    // Report the most telling failure: a foreign file only when neither slot looks like ours.
    for (CorruptImageException e : failures) {
      if (e.kind() != Kind.NOT_AN_IMAGE) {
        throw new CorruptImageException(
            e.kind(), e.getMessage() + " (the other header copy is not valid either)");
      }
    }
    throw failures[0];
  }

  /** Decodes one slot, checking magic, version and checksum in that order, then the values. */
  static Header decode(ByteBuffer buf, String file, long slotOffset) throws CorruptImageException {
    long magic = buf.getLong(0);
    if (magic != MAGIC) {
      throw new CorruptImageException(
          Kind.NOT_AN_IMAGE,
          String.format(
              "%s: header at offset %d: magic is 0x%016x, expected 0x%016x (\"FVDISK\\r\\n\"):"
                  + " not an fvdisk image",
              file, slotOffset, magic, MAGIC));
    }
    int version = buf.getInt(8);
    if (version != FORMAT_VERSION) {
      throw new CorruptImageException(
          Kind.UNSUPPORTED_VERSION,
          file
              + ": header at offset "
              + slotOffset
              + ": format version "
              + Integer.toUnsignedString(version)
              + ", this build reads only version "
              + FORMAT_VERSION);
    }
    int length = buf.getInt(12);
    if (length != LENGTH_BYTES) {
      throw corrupt(file, slotOffset, "header length " + length + ", expected " + LENGTH_BYTES);
    }
    int storedCrc = buf.getInt(LENGTH_BYTES);
    int actualCrc = crc(buf, LENGTH_BYTES);
    if (storedCrc != actualCrc) {
      throw corrupt(
          file,
          slotOffset,
          String.format("checksum 0x%08x, computed 0x%08x", storedCrc, actualCrc));
    }
    int incompatibleFeatures = buf.getInt(64);
    if (incompatibleFeatures != 0) {
      throw new CorruptImageException(
          Kind.UNSUPPORTED_VERSION,
          String.format(
              "%s: header at offset %d: unknown incompatible features 0x%08x",
              file, slotOffset, incompatibleFeatures));
    }
    Header h =
        new Header(
            buf.getLong(16),
            new UUID(buf.getLong(24), buf.getLong(32)),
            buf.getLong(40),
            buf.getLong(48),
            buf.getInt(56),
            (buf.getInt(60) & FLAG_CLEAN_SHUTDOWN) != 0,
            (buf.getInt(60) & FLAG_READ_ONLY) != 0,
            buf.getInt(68),
            buf.getLong(72),
            buf.getLong(80),
            buf.getLong(88),
            buf.getInt(96),
            buf.getLong(104),
            buf.getLong(112),
            buf.getLong(120),
            buf.getLong(128),
            buf.getLong(136),
            buf.getLong(144));
    String problem = h.layoutProblem();
    if (problem != null) {
      throw corrupt(file, slotOffset, problem);
    }
    return h;
  }

  /**
   * Checks the values a valid checksum cannot vouch for (a bug or a hand-made file could write
   * them): every size sane, every region aligned, inside the metadata area and disjoint.
   *
   * @return a description of the first problem, or null when the layout is sound
   */
  String layoutProblem() {
    if (Integer.bitCount(chunkSizeBytes) != 1
        || chunkSizeBytes < ImageOptions.MIN_CHUNK_SIZE_BYTES
        || chunkSizeBytes > ImageOptions.MAX_CHUNK_SIZE_BYTES) {
      return "chunk size "
          + Integer.toUnsignedString(chunkSizeBytes)
          + " is not a power of two between "
          + ImageOptions.MIN_CHUNK_SIZE_BYTES
          + " and "
          + ImageOptions.MAX_CHUNK_SIZE_BYTES;
    }
    if (sizeBytes <= 0 || sizeBytes % 512 != 0) {
      return "virtual size " + sizeBytes + " is not a positive multiple of 512";
    }
    if (maxSizeBytes < sizeBytes || maxSizeBytes > ImageOptions.MAX_SIZE_LIMIT_BYTES) {
      return "maximum virtual size "
          + maxSizeBytes
          + " is below the virtual size "
          + sizeBytes
          + " or above "
          + ImageOptions.MAX_SIZE_LIMIT_BYTES;
    }
    long maxChunks = ceilDiv(maxSizeBytes, chunkSizeBytes);
    if (maxChunks > ChunkTable.MAX_PHYSICAL_CHUNKS) {
      return "maximum virtual size "
          + maxSizeBytes
          + " needs "
          + maxChunks
          + " chunks, more than the format's "
          + ChunkTable.MAX_PHYSICAL_CHUNKS;
    }
    if (activeTable != 0 && activeTable != 1) {
      return "active table copy " + activeTable + " is neither 0 nor 1";
    }
    if (tableRegionBytes < ChunkTable.regionBytes(maxChunks)) {
      return "table copies of " + tableRegionBytes + " bytes cannot hold " + maxChunks + " entries";
    }
    if (journalSizeBytes < Journal.SECTOR_BYTES
        || journalSizeBytes % Journal.SECTOR_BYTES != 0
        || journalSizeBytes > ImageOptions.MAX_JOURNAL_SIZE_BYTES) {
      return "journal size "
          + journalSizeBytes
          + " is not a multiple of "
          + Journal.SECTOR_BYTES
          + " between "
          + Journal.SECTOR_BYTES
          + " and "
          + ImageOptions.MAX_JOURNAL_SIZE_BYTES;
    }
    if (growthUnitBytes < chunkSizeBytes
        || growthUnitBytes % chunkSizeBytes != 0
        || growthUnitBytes > ImageOptions.MAX_GROWTH_UNIT_BYTES) {
      return "growth unit "
          + growthUnitBytes
          + " is not a multiple of the chunk size "
          + chunkSizeBytes
          + " up to "
          + ImageOptions.MAX_GROWTH_UNIT_BYTES;
    }
    long[][] regions = {
      {REGION_BYTES, REGION_BYTES},
      {tableOffset0, tableRegionBytes},
      {tableOffset1, tableRegionBytes},
      {journalOffsetBytes, journalSizeBytes}
    };
    String[] names = {"header", "table copy 0", "table copy 1", "journal"};
    for (int i = 1; i < regions.length; i++) {
      long start = regions[i][0];
      long length = regions[i][1];
      if (start % 4096 != 0
          || start < REGION_BYTES
          || start > dataOffsetBytes
          || length > dataOffsetBytes - start) {
        return names[i]
            + " at offset "
            + start
            + " ("
            + length
            + " bytes) is not 4096-aligned inside the metadata area before the data offset "
            + dataOffsetBytes;
      }
      for (int j = 1; j < i; j++) {
        if (start < regions[j][0] + regions[j][1] && regions[j][0] < start + length) {
          return names[i] + " overlaps " + names[j];
        }
      }
    }
    if (dataOffsetBytes % 4096 != 0) {
      return "data offset " + dataOffsetBytes + " is not 4096-aligned";
    }
    return null;
  }

  private static CorruptImageException corrupt(String file, long slotOffset, String what) {
    return new CorruptImageException(
        Kind.CORRUPT, file + ": header at offset " + slotOffset + ": " + what);
  }

  private static int crc(ByteBuffer buf, int length) {
    CRC32C crc = new CRC32C();
    crc.update(buf.duplicate().position(0).limit(length));
    return (int) crc.getValue();
  }

  static long ceilDiv(long x, long y) {
    return (x + y - 1) / y;
  }
}
