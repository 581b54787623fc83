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
 *     12    4 header length in bytes, up to the checksum (472)
 *     16    8 generation: incremented by every header write
 *     24   16 image UUID (most significant 8 bytes, then least significant 8 bytes)
 *     40    8 virtual size in bytes (multiple of 512)
 *     48    8 maximum virtual size in bytes the table space is reserved for
 *     56    4 chunk size in bytes (power of two)
 *     60    4 flags: bit 0 clean shutdown, 1 read-only, 2 standalone (holds all its data; the
 *             base and bitmap are ignored), 3 copy-on-read, 4 prefetch enabled; others must be 0
 *     64    4 incompatible features: must be 0 for this version
 *     68    4 active copy of table and bitmap (0 or 1)
 *     72    8 offset of table copy 0
 *     80    8 offset of table copy 1
 *     88    8 bytes reserved for each table copy
 *     96    4 CRC-32C of the active table's entries (one per chunk of the virtual size)
 *    100    4 block size in bytes (bitmap unit; power of two, 512 to chunk size; 0 without base)
 *    104    8 journal offset
 *    112    8 journal size in bytes
 *    120    8 data area offset (chunk slot 0)
 *    128    8 storage growth unit in bytes
 *    136    8 stable journal epoch: records of older epochs are ignored
 *    144    8 creation time, milliseconds since the epoch
 *    152   16 base image UUID; all zero when the image has no base
 *    168    8 base header generation when the clone was made
 *    176    8 base size in bytes covered by the bitmap: min(virtual size, base size)
 *    184    8 offset of bitmap copy 0 (0 without base)
 *    192    8 offset of bitmap copy 1
 *    200    8 bytes reserved for each bitmap copy
 *    208    4 CRC-32C of the active bitmap's ceil(blocks / 8) bytes
 *    212    4 prefetch start delay in seconds
 *    216    2 base locator length n in bytes (at most 254)
 *    218  254 base locator, UTF-8, n bytes then zeros
 *    472    4 CRC-32C of bytes 0..471
 * </pre>
 */
record Header(
    long generation,
    UUID imageId,
    long sizeBytes,
    long maxSizeBytes,
    int chunkSizeBytes,
    int flags,
    int activeTable,
    long tableOffset0,
    long tableOffset1,
    long tableRegionBytes,
    int tableCrc,
    int blockSizeBytes,
    long journalOffsetBytes,
    long journalSizeBytes,
    long dataOffsetBytes,
    long growthUnitBytes,
    long stableEpoch,
    long createdAtMillis,
    BaseLink base,
    long bitmapOffset0,
    long bitmapOffset1,
    long bitmapRegionBytes,
    int bitmapCrc,
    int prefetchStartDelaySeconds) {

  static final int FORMAT_VERSION = 1;
  static final int SLOT_BYTES = 4096;
  static final int SLOT_COUNT = 2;
  static final int REGION_BYTES = SLOT_BYTES * SLOT_COUNT;
  static final int LENGTH_BYTES = 472;
  static final int MAX_LOCATOR_BYTES = 254;
  static final long MAGIC =
      ByteBuffer.wrap("FVDISK\r\n".getBytes(StandardCharsets.US_ASCII))
          .order(ByteOrder.LITTLE_ENDIAN)
          .getLong();

  static final int FLAG_CLEAN_SHUTDOWN = 1;
  static final int FLAG_READ_ONLY = 1 << 1;
  static final int FLAG_STANDALONE = 1 << 2;
  static final int FLAG_COPY_ON_READ = 1 << 3;
  static final int FLAG_PREFETCH = 1 << 4;
  private static final int KNOWN_FLAGS = (1 << 5) - 1;

  /**
   * The base image a clone reads through until it holds all its data.
   *
   * @param baseId the base's image UUID
   * @param baseGeneration the base's header generation when the clone was made; a read-only base
   *     never writes its header, so any other value means the base was changed
   * @param baseSizeBytes the part of the virtual disk the base covers: min(virtual size, base size)
   * @param locator how the caller names the base (the service uses the image name); at most {@value
   *     MAX_LOCATOR_BYTES} bytes of UTF-8
   */
  record BaseLink(UUID baseId, long baseGeneration, long baseSizeBytes, String locator) {}

  boolean cleanShutdown() {
    return (flags & FLAG_CLEAN_SHUTDOWN) != 0;
  }

  boolean readOnly() {
    return (flags & FLAG_READ_ONLY) != 0;
  }

  /** Whether the image holds all its data: its base and bitmap are then ignored for good. */
  boolean standalone() {
    return (flags & FLAG_STANDALONE) != 0;
  }

  boolean copyOnRead() {
    return (flags & FLAG_COPY_ON_READ) != 0;
  }

  boolean prefetchEnabled() {
    return (flags & FLAG_PREFETCH) != 0;
  }

  /** Whether reads may still go to a base image. */
  boolean dependsOnBase() {
    return base != null && !standalone();
  }

  /** Blocks the bitmap covers: the base's range, in blocks (0 without a base). */
  long baseBlockCount() {
    return base == null ? 0 : ceilDiv(base.baseSizeBytes(), blockSizeBytes);
  }

  long tableOffset(int copy) {
    return copy == 0 ? tableOffset0 : tableOffset1;
  }

  long activeTableOffset() {
    return tableOffset(activeTable);
  }

  long bitmapOffset(int copy) {
    return copy == 0 ? bitmapOffset0 : bitmapOffset1;
  }

  long activeBitmapOffset() {
    return bitmapOffset(activeTable);
  }

  long chunkCount() {
    return ceilDiv(sizeBytes, chunkSizeBytes);
  }

  long journalSectorCount() {
    return journalSizeBytes / Journal.SECTOR_BYTES;
  }

  /** The next header: one generation on, with {@code flag} set or cleared. */
  Header withFlag(int flag, boolean on) {
    Draft d = draft();
    d.flags = on ? flags | flag : flags & ~flag;
    return d.build();
  }

  Header withPrefetch(boolean enabled, int startDelaySeconds) {
    Draft d = draft();
    d.flags = enabled ? flags | FLAG_PREFETCH : flags & ~FLAG_PREFETCH;
    d.prefetchStartDelaySeconds = startDelaySeconds;
    return d.build();
  }

  Header withCleanShutdown(boolean clean) {
    return withFlag(FLAG_CLEAN_SHUTDOWN, clean);
  }

  /**
   * The header that makes freshly written table and bitmap copies active and starts a new journal
   * epoch.
   */
  Header withNewTable(
      int newActiveTable, int newTableCrc, int newBitmapCrc, long newSizeBytes, int newFlags) {
    Draft d = draft();
    d.activeTable = newActiveTable;
    d.tableCrc = newTableCrc;
    d.bitmapCrc = newBitmapCrc;
    d.sizeBytes = newSizeBytes;
    d.flags = newFlags;
    d.stableEpoch = stableEpoch + 1;
    return d.build();
  }

  /** A copy of every field, one generation on, for the {@code with} methods to change. */
  Draft draft() {
    return new Draft(this);
  }

  /** Mutable copy of a header; {@link #build()} validates nothing, {@link #decode} does. */
  static final class Draft {
    long generation;
    UUID imageId;
    long sizeBytes;
    long maxSizeBytes;
    int chunkSizeBytes;
    int flags;
    int activeTable;
    long tableOffset0;
    long tableOffset1;
    long tableRegionBytes;
    int tableCrc;
    int blockSizeBytes;
    long journalOffsetBytes;
    long journalSizeBytes;
    long dataOffsetBytes;
    long growthUnitBytes;
    long stableEpoch;
    long createdAtMillis;
    BaseLink base;
    long bitmapOffset0;
    long bitmapOffset1;
    long bitmapRegionBytes;
    int bitmapCrc;
    int prefetchStartDelaySeconds;

    Draft() {}

    private Draft(Header h) {
      generation = h.generation + 1;
      imageId = h.imageId;
      sizeBytes = h.sizeBytes;
      maxSizeBytes = h.maxSizeBytes;
      chunkSizeBytes = h.chunkSizeBytes;
      flags = h.flags;
      activeTable = h.activeTable;
      tableOffset0 = h.tableOffset0;
      tableOffset1 = h.tableOffset1;
      tableRegionBytes = h.tableRegionBytes;
      tableCrc = h.tableCrc;
      blockSizeBytes = h.blockSizeBytes;
      journalOffsetBytes = h.journalOffsetBytes;
      journalSizeBytes = h.journalSizeBytes;
      dataOffsetBytes = h.dataOffsetBytes;
      growthUnitBytes = h.growthUnitBytes;
      stableEpoch = h.stableEpoch;
      createdAtMillis = h.createdAtMillis;
      base = h.base;
      bitmapOffset0 = h.bitmapOffset0;
      bitmapOffset1 = h.bitmapOffset1;
      bitmapRegionBytes = h.bitmapRegionBytes;
      bitmapCrc = h.bitmapCrc;
      prefetchStartDelaySeconds = h.prefetchStartDelaySeconds;
    }

    Header build() {
      return new Header(
          generation,
          imageId,
          sizeBytes,
          maxSizeBytes,
          chunkSizeBytes,
          flags,
          activeTable,
          tableOffset0,
          tableOffset1,
          tableRegionBytes,
          tableCrc,
          blockSizeBytes,
          journalOffsetBytes,
          journalSizeBytes,
          dataOffsetBytes,
          growthUnitBytes,
          stableEpoch,
          createdAtMillis,
          base,
          bitmapOffset0,
          bitmapOffset1,
          bitmapRegionBytes,
          bitmapCrc,
          prefetchStartDelaySeconds);
    }
  }

  ByteBuffer encode() {
    ByteBuffer buf = ByteBuffer.allocate(SLOT_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    UUID baseId = base == null ? new UUID(0, 0) : base.baseId();
    byte[] locator = base == null ? new byte[0] : base.locator().getBytes(StandardCharsets.UTF_8);
    buf.putLong(MAGIC)
        .putInt(FORMAT_VERSION)
        .putInt(LENGTH_BYTES)
        .putLong(generation)
        .putLong(imageId.getMostSignificantBits())
        .putLong(imageId.getLeastSignificantBits())
        .putLong(sizeBytes)
        .putLong(maxSizeBytes)
        .putInt(chunkSizeBytes)
        .putInt(flags)
        .putInt(0)
        .putInt(activeTable)
        .putLong(tableOffset0)
        .putLong(tableOffset1)
        .putLong(tableRegionBytes)
        .putInt(tableCrc)
        .putInt(blockSizeBytes)
        .putLong(journalOffsetBytes)
        .putLong(journalSizeBytes)
        .putLong(dataOffsetBytes)
        .putLong(growthUnitBytes)
        .putLong(stableEpoch)
        .putLong(createdAtMillis)
        .putLong(baseId.getMostSignificantBits())
        .putLong(baseId.getLeastSignificantBits())
        .putLong(base == null ? 0 : base.baseGeneration())
        .putLong(base == null ? 0 : base.baseSizeBytes())
        .putLong(bitmapOffset0)
        .putLong(bitmapOffset1)
        .putLong(bitmapRegionBytes)
        .putInt(bitmapCrc)
        .putInt(prefetchStartDelaySeconds)
        .putShort((short) locator.length)
        .put(locator);
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
      boolean ours = false;
      if (fileBytes >= 8) {
        ByteBuffer magic = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        storage.read(magic, 0);
        ours = magic.getLong(0) == MAGIC;
      }
      throw new CorruptImageException(
          ours ? Kind.CORRUPT : Kind.NOT_AN_IMAGE,
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
        if (e.kind() == Kind.UNSUPPORTED_VERSION) {
          // A verified copy from a newer format: falling back to the other, older copy would read
          // the image as it was before the upgrade.
          throw e;
        }
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

  /**
   * Decodes one slot, checking magic, length, checksum and version in that order, then the values.
   */
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
    // The checksum comes before the version: a flipped bit in the version field is damage, not a
    // newer format. The length field says where the checksum sits, so a newer, longer header can
    // still be verified and then refused for its version.
    int length = buf.getInt(12);
    if (length < 16 || length > SLOT_BYTES - 4) {
      throw corrupt(
          file, slotOffset, "header length " + length + " is outside 16.." + (SLOT_BYTES - 4));
    }
    int storedCrc = buf.getInt(length);
    int actualCrc = crc(buf, length);
    if (storedCrc != actualCrc) {
      throw corrupt(
          file,
          slotOffset,
          String.format("checksum 0x%08x, computed 0x%08x", storedCrc, actualCrc));
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
    if (length != LENGTH_BYTES) {
      throw corrupt(file, slotOffset, "header length " + length + ", expected " + LENGTH_BYTES);
    }
    int incompatibleFeatures = buf.getInt(64);
    if (incompatibleFeatures != 0) {
      throw new CorruptImageException(
          Kind.UNSUPPORTED_VERSION,
          String.format(
              "%s: header at offset %d: unknown incompatible features 0x%08x",
              file, slotOffset, incompatibleFeatures));
    }
    int flags = buf.getInt(60);
    if ((flags & ~KNOWN_FLAGS) != 0) {
      throw new CorruptImageException(
          Kind.UNSUPPORTED_VERSION,
          String.format("%s: header at offset %d: unknown flags 0x%08x", file, slotOffset, flags));
    }
    UUID baseId = new UUID(buf.getLong(152), buf.getLong(160));
    int locatorBytes = Short.toUnsignedInt(buf.getShort(216));
    if (locatorBytes > MAX_LOCATOR_BYTES) {
      throw corrupt(
          file,
          slotOffset,
          "base locator of " + locatorBytes + " bytes, at most " + MAX_LOCATOR_BYTES);
    }
    byte[] locator = new byte[locatorBytes];
    buf.get(218, locator);
    boolean hasBase = baseId.getMostSignificantBits() != 0 || baseId.getLeastSignificantBits() != 0;
    if (!hasBase && (locatorBytes != 0 || buf.getLong(168) != 0 || buf.getLong(176) != 0)) {
      throw corrupt(file, slotOffset, "base fields are set, but the base image id is zero");
    }
    BaseLink base =
        hasBase
            ? new BaseLink(
                baseId,
                buf.getLong(168),
                buf.getLong(176),
                new String(locator, StandardCharsets.UTF_8))
            : null;
    Header h =
        new Header(
            buf.getLong(16),
            new UUID(buf.getLong(24), buf.getLong(32)),
            buf.getLong(40),
            buf.getLong(48),
            buf.getInt(56),
            flags,
            buf.getInt(68),
            buf.getLong(72),
            buf.getLong(80),
            buf.getLong(88),
            buf.getInt(96),
            buf.getInt(100),
            buf.getLong(104),
            buf.getLong(112),
            buf.getLong(120),
            buf.getLong(128),
            buf.getLong(136),
            buf.getLong(144),
            base,
            buf.getLong(184),
            buf.getLong(192),
            buf.getLong(200),
            buf.getInt(208),
            buf.getInt(212));
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
    if (maxChunks > ChunkTable.MAX_ENTRIES) {
      return "maximum virtual size "
          + maxSizeBytes
          + " needs "
          + maxChunks
          + " chunks, more than the "
          + ChunkTable.MAX_ENTRIES
          + " a table may hold";
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
    if (base != null) {
      String problem = baseProblem();
      if (problem != null) {
        return problem;
      }
    } else if (blockSizeBytes != 0
        || bitmapOffset0 != 0
        || bitmapOffset1 != 0
        || bitmapRegionBytes != 0
        || (flags & (FLAG_STANDALONE | FLAG_COPY_ON_READ | FLAG_PREFETCH)) != 0) {
      return "an image without a base has clone settings (block size, bitmap or clone flags)";
    }
    long[][] regions = {
      {REGION_BYTES, REGION_BYTES},
      {tableOffset0, tableRegionBytes},
      {tableOffset1, tableRegionBytes},
      {journalOffsetBytes, journalSizeBytes},
      {bitmapOffset0, bitmapRegionBytes},
      {bitmapOffset1, bitmapRegionBytes}
    };
    String[] names = {
      "header", "table copy 0", "table copy 1", "journal", "bitmap copy 0", "bitmap copy 1"
    };
    for (int i = 1; i < regions.length; i++) {
      long start = regions[i][0];
      long length = regions[i][1];
      if (length == 0 && i >= 4) {
        continue; // no bitmap without a base
      }
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

  /** Checks the base link and the block size against each other and the bitmap region. */
  private String baseProblem() {
    if (Integer.bitCount(blockSizeBytes) != 1
        || blockSizeBytes < ImageOptions.SECTOR_BYTES
        || blockSizeBytes > chunkSizeBytes) {
      return "block size "
          + Integer.toUnsignedString(blockSizeBytes)
          + " is not a power of two between 512 and the chunk size "
          + chunkSizeBytes;
    }
    long baseSize = base.baseSizeBytes();
    if (baseSize <= 0 || baseSize % ImageOptions.SECTOR_BYTES != 0 || baseSize > sizeBytes) {
      return "base size " + baseSize + " is not a positive multiple of 512 up to the virtual size";
    }
    if (ceilDiv(baseSize, blockSizeBytes) > ImageOptions.MAX_BITMAP_BLOCKS) {
      return "base of "
          + baseSize
          + " bytes has more than "
          + ImageOptions.MAX_BITMAP_BLOCKS
          + " blocks of "
          + blockSizeBytes
          + " bytes";
    }
    if (bitmapRegionBytes < Bitmap.regionBytes(baseBlockCount())) {
      return "bitmap copies of "
          + bitmapRegionBytes
          + " bytes cannot hold "
          + baseBlockCount()
          + " bits";
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
