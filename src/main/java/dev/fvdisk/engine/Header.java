package dev.fvdisk.engine;

import dev.fvdisk.engine.CorruptImageException.Kind;
import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.StringJoiner;
import java.util.UUID;
import java.util.zip.CRC32C;
import org.jspecify.annotations.Nullable;

/**
 * The image header, and its codec.
 *
 * <p>Two copies live at the start of the file, slot 0 at offset 0 and slot 1 at offset 4096. Each
 * write increments {@link #generation} and goes to slot {@code generation % 2}, so consecutive
 * writes alternate and a torn write can only damage the copy that was already older. Reading takes
 * the newest copy whose checksum verifies.
 *
 * <p>Layout of one copy (little-endian; the rest of the 4096-byte slot is zero). The fields between
 * the frame (magic, version, length; locator and checksum) are listed once, in {@link Field}, and
 * encode, decode and the drafts all work from that list:
 *
 * <pre>
 * offset size field
 *      0    8 magic "FVDISK\r\n"
 *      8    4 format version: 2 is written; 1 is read too (see {@link #FORMAT_VERSION})
 *     12    4 header length in bytes, up to the checksum (472; 496 with snapshots)
 *     16    8 generation: incremented by every header write
 *     24   16 image UUID (most significant 8 bytes, then least significant 8 bytes)
 *     40    8 virtual size in bytes (multiple of 512)
 *     48    8 maximum virtual size in bytes the table space is reserved for
 *     56    4 chunk size in bytes (power of two)
 *     60    4 flags: bit 0 clean shutdown, 1 read-only, 2 standalone (holds all its data; the
 *             base and bitmap are ignored), 3 copy-on-read, 4 prefetch enabled; others must be 0
 *     64    4 incompatible features: bit 0 snapshots (the header is then 496 bytes long and
 *             names the snapshot directory); others must be 0
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
 *    472    4 CRC-32C of bytes 0..471 (without snapshots)
 *
 * with the snapshots feature:
 *    472    8 snapshot directory offset; 0 when the image has no snapshot
 *    480    8 snapshot directory length in bytes
 *    488    4 CRC-32C of the snapshot directory (it carries its own as well)
 *    492    4 reserved, zero
 *    496    4 CRC-32C of bytes 0..495
 * </pre>
 */
final class Header {

  /**
   * The version every header write carries. Version 2 lets a chunk's mapping move forward (a zeroed
   * chunk is unmapped and its slot reused), so a journal record may override an earlier one for the
   * same chunk and may unmap it; the layout is version 1's. A version 1 image opens as it is and
   * becomes version 2 with its first header write, that is at its first writable open.
   */
  static final int FORMAT_VERSION = 2;

  /** The oldest version read. */
  static final int OLDEST_READABLE_VERSION = 1;

  static final int SLOT_BYTES = 4096;
  static final int SLOT_COUNT = 2;
  static final int REGION_BYTES = SLOT_BYTES * SLOT_COUNT;
  static final int LENGTH_BYTES = 472;

  /** The header's length with the snapshots feature: room for the snapshot directory's place. */
  static final int SNAPSHOTS_LENGTH_BYTES = 496;

  /**
   * Incompatible feature bit 0: the image has (or had) snapshots. Set by the first snapshot, kept
   * for good; a reader that does not know it must not open the image, which it would take for one
   * without snapshots and overwrite chunks they hold.
   */
  static final int FEATURE_SNAPSHOTS = 1;

  /**
   * Incompatible feature bit 1: the clone's base is a snapshot of the base image, whose id the
   * base-generation field holds. A reader that does not know it would read the base image's current
   * content in place of the snapshot's.
   */
  static final int FEATURE_SNAPSHOT_BASE = 1 << 1;

  /**
   * Incompatible feature bit 2: a snapshot of this clone reads blocks from the base through a copy
   * of the block bitmap (its directory entry and journal record say where). A reader that does not
   * know it would misread the snapshot directory, or read those blocks as zeros.
   */
  static final int FEATURE_SNAPSHOT_BASE_BLOCKS = 1 << 2;

  private static final int KNOWN_FEATURES =
      FEATURE_SNAPSHOTS | FEATURE_SNAPSHOT_BASE | FEATURE_SNAPSHOT_BASE_BLOCKS;

  /** Largest snapshot directory, in bytes: one buffer. */
  static final long MAX_SNAPSHOT_DIRECTORY_BYTES = Integer.MAX_VALUE - 8;

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
   * @param baseSnapshotId the snapshot of the base image the clone reads, or 0 when it reads the
   *     image itself
   * @param baseGeneration the base's header generation when the clone was made (0 for a snapshot);
   *     a read-only base never writes its header, so any other value means the base was changed
   * @param baseSizeBytes the part of the virtual disk the base covers: min(virtual size, base size)
   * @param locator how the caller names the base (the service uses the image name); at most {@value
   *     MAX_LOCATOR_BYTES} bytes of UTF-8
   */
  record BaseLink(
      UUID baseId, int baseSnapshotId, long baseGeneration, long baseSizeBytes, String locator) {}

  /**
   * The header's fields: where each sits in a slot and how wide it is. The one list of them that
   * {@link #encode}, {@link #decode} and {@link Draft} work from; adding a field means adding it
   * here (and its accessor). A 4-byte field is read as a signed {@code int}, as Java holds it.
   */
  enum Field {
    GENERATION(0x010, 8),
    IMAGE_ID_HIGH(0x018, 8),
    IMAGE_ID_LOW(0x020, 8),
    SIZE(0x028, 8),
    MAX_SIZE(0x030, 8),
    CHUNK_SIZE(0x038, 4),
    FLAGS(0x03C, 4),
    INCOMPATIBLE_FEATURES(0x040, 4),
    ACTIVE_COPY(0x044, 4),
    TABLE_OFFSET_0(0x048, 8),
    TABLE_OFFSET_1(0x050, 8),
    TABLE_BYTES(0x058, 8),
    TABLE_CRC(0x060, 4),
    BLOCK_SIZE(0x064, 4),
    JOURNAL_OFFSET(0x068, 8),
    JOURNAL_BYTES(0x070, 8),
    DATA_OFFSET(0x078, 8),
    GROWTH_UNIT(0x080, 8),
    STABLE_EPOCH(0x088, 8),
    CREATED_AT(0x090, 8),
    BASE_ID_HIGH(0x098, 8),
    BASE_ID_LOW(0x0A0, 8),
    BASE_GENERATION(0x0A8, 8),
    BASE_SIZE(0x0B0, 8),
    BITMAP_OFFSET_0(0x0B8, 8),
    BITMAP_OFFSET_1(0x0C0, 8),
    BITMAP_BYTES(0x0C8, 8),
    BITMAP_CRC(0x0D0, 4),
    PREFETCH_DELAY(0x0D4, 4),
    // Only in headers with the snapshots feature, after the base locator.
    SNAPSHOT_DIRECTORY_OFFSET(0x1D8, 8),
    SNAPSHOT_DIRECTORY_BYTES(0x1E0, 8),
    SNAPSHOT_DIRECTORY_CRC(0x1E8, 4);

    private final int offset;
    private final int bytes;

    Field(int offset, int bytes) {
      this.offset = offset;
      this.bytes = bytes;
    }

    /** Whether the field exists only in headers with the snapshots feature. */
    boolean snapshotsOnly() {
      return offset >= LENGTH_BYTES;
    }

    long read(ByteBuffer slot) {
      return bytes == Long.BYTES ? slot.getLong(offset) : slot.getInt(offset);
    }

    void write(ByteBuffer slot, long value) {
      if (bytes == Long.BYTES) {
        slot.putLong(offset, value);
      } else {
        slot.putInt(offset, (int) value);
      }
    }
  }

  private static final Field[] FIELDS = Field.values();
  private static final int VERSION_AT = 0x008;
  private static final int LENGTH_AT = 0x00C;
  private static final int LOCATOR_LENGTH_AT = 0x0D8;
  private static final int LOCATOR_AT = 0x0DA;

  /** Every field's value, by {@link Field#ordinal()}. */
  private final long[] values;

  /** How the caller names the base; empty without one. */
  private final String locator;

  private final @Nullable BaseLink base;

  /** The version this header was read with; {@link #FORMAT_VERSION} for one built here. */
  private final int version;

  /**
   * The format version of the header as read: 1 means a journal mapping never changes an existing
   * one (a record that does is damage); 2 means the newest record for a chunk wins.
   */
  int formatVersion() {
    return version;
  }

  private Header(long[] values, String locator, int version) {
    this.values = values;
    this.version = version;
    this.locator = locator;
    boolean hasBase = get(Field.BASE_ID_HIGH) != 0 || get(Field.BASE_ID_LOW) != 0;
    this.base =
        hasBase
            ? new BaseLink(
                uuid(Field.BASE_ID_HIGH, Field.BASE_ID_LOW),
                snapshotBase() ? (int) get(Field.BASE_GENERATION) : 0,
                snapshotBase() ? 0 : get(Field.BASE_GENERATION),
                get(Field.BASE_SIZE),
                locator)
            : null;
  }

  long get(Field field) {
    return values[field.ordinal()];
  }

  private UUID uuid(Field high, Field low) {
    return new UUID(get(high), get(low));
  }

  long generation() {
    return get(Field.GENERATION);
  }

  UUID imageId() {
    return uuid(Field.IMAGE_ID_HIGH, Field.IMAGE_ID_LOW);
  }

  long sizeBytes() {
    return get(Field.SIZE);
  }

  long maxSizeBytes() {
    return get(Field.MAX_SIZE);
  }

  int chunkSizeBytes() {
    return (int) get(Field.CHUNK_SIZE);
  }

  int flags() {
    return (int) get(Field.FLAGS);
  }

  /** Which table copy (and, in a clone, bitmap copy) is active: 0 or 1. */
  int activeTable() {
    return (int) get(Field.ACTIVE_COPY);
  }

  long tableOffset0() {
    return get(Field.TABLE_OFFSET_0);
  }

  long tableOffset1() {
    return get(Field.TABLE_OFFSET_1);
  }

  long tableRegionBytes() {
    return get(Field.TABLE_BYTES);
  }

  int tableCrc() {
    return (int) get(Field.TABLE_CRC);
  }

  int blockSizeBytes() {
    return (int) get(Field.BLOCK_SIZE);
  }

  long journalOffsetBytes() {
    return get(Field.JOURNAL_OFFSET);
  }

  long journalSizeBytes() {
    return get(Field.JOURNAL_BYTES);
  }

  long dataOffsetBytes() {
    return get(Field.DATA_OFFSET);
  }

  long growthUnitBytes() {
    return get(Field.GROWTH_UNIT);
  }

  long stableEpoch() {
    return get(Field.STABLE_EPOCH);
  }

  long createdAtMillis() {
    return get(Field.CREATED_AT);
  }

  /** The base link, or null when the image was not made as a clone. */
  @Nullable BaseLink base() {
    return base;
  }

  long bitmapOffset0() {
    return get(Field.BITMAP_OFFSET_0);
  }

  long bitmapOffset1() {
    return get(Field.BITMAP_OFFSET_1);
  }

  long bitmapRegionBytes() {
    return get(Field.BITMAP_BYTES);
  }

  int bitmapCrc() {
    return (int) get(Field.BITMAP_CRC);
  }

  int prefetchStartDelaySeconds() {
    return (int) get(Field.PREFETCH_DELAY);
  }

  /** Whether the clone's base is a snapshot of the base image. */
  private boolean snapshotBase() {
    return (get(Field.INCOMPATIBLE_FEATURES) & FEATURE_SNAPSHOT_BASE) != 0;
  }

  /** Whether the image has the snapshots feature (it has or had snapshots). */
  boolean hasSnapshotsFeature() {
    return (get(Field.INCOMPATIBLE_FEATURES) & FEATURE_SNAPSHOTS) != 0;
  }

  /** Where the snapshot directory starts; 0 when there is none. */
  long snapshotDirectoryOffset() {
    return get(Field.SNAPSHOT_DIRECTORY_OFFSET);
  }

  long snapshotDirectoryBytes() {
    return get(Field.SNAPSHOT_DIRECTORY_BYTES);
  }

  int snapshotDirectoryCrc() {
    return (int) get(Field.SNAPSHOT_DIRECTORY_CRC);
  }

  private int lengthBytes() {
    return hasSnapshotsFeature() ? SNAPSHOTS_LENGTH_BYTES : LENGTH_BYTES;
  }

  boolean cleanShutdown() {
    return (flags() & FLAG_CLEAN_SHUTDOWN) != 0;
  }

  boolean readOnly() {
    return (flags() & FLAG_READ_ONLY) != 0;
  }

  /** Whether the image holds all its data: its base and bitmap are then ignored for good. */
  boolean standalone() {
    return (flags() & FLAG_STANDALONE) != 0;
  }

  boolean copyOnRead() {
    return (flags() & FLAG_COPY_ON_READ) != 0;
  }

  boolean prefetchEnabled() {
    return (flags() & FLAG_PREFETCH) != 0;
  }

  /** Whether reads may still go to a base image. */
  boolean dependsOnBase() {
    return base != null && !standalone();
  }

  /** Blocks the bitmap covers: the base's range, in blocks (0 without a base). */
  long baseBlockCount() {
    return base == null ? 0 : ceilDiv(base.baseSizeBytes(), blockSizeBytes());
  }

  long tableOffset(int copy) {
    return copy == 0 ? tableOffset0() : tableOffset1();
  }

  long activeTableOffset() {
    return tableOffset(activeTable());
  }

  long bitmapOffset(int copy) {
    return copy == 0 ? bitmapOffset0() : bitmapOffset1();
  }

  long activeBitmapOffset() {
    return bitmapOffset(activeTable());
  }

  long chunkCount() {
    return ceilDiv(sizeBytes(), chunkSizeBytes());
  }

  long journalSectorCount() {
    return journalSizeBytes() / Journal.SECTOR_BYTES;
  }

  /** The next header: one generation on, with {@code flag} set or cleared. */
  Header withFlag(int flag, boolean on) {
    return draft().set(Field.FLAGS, on ? flags() | flag : flags() & ~flag).build();
  }

  Header withPrefetch(boolean enabled, int startDelaySeconds) {
    return draft()
        .set(Field.FLAGS, enabled ? flags() | FLAG_PREFETCH : flags() & ~FLAG_PREFETCH)
        .set(Field.PREFETCH_DELAY, startDelaySeconds)
        .build();
  }

  Header withCleanShutdown(boolean clean) {
    return withFlag(FLAG_CLEAN_SHUTDOWN, clean);
  }

  /** Whether a snapshot of this clone may read blocks from the base. */
  boolean hasSnapshotBaseBlocksFeature() {
    return (get(Field.INCOMPATIBLE_FEATURES) & FEATURE_SNAPSHOT_BASE_BLOCKS) != 0;
  }

  /** The next header, with the feature bit that snapshots may read blocks from the base. */
  Header withSnapshotBaseBlocksFeature() {
    return draft()
        .set(
            Field.INCOMPATIBLE_FEATURES,
            get(Field.INCOMPATIBLE_FEATURES) | FEATURE_SNAPSHOT_BASE_BLOCKS)
        .build();
  }

  /**
   * The next header, with the snapshots feature (and no snapshot directory yet, if it had none).
   */
  Header withSnapshotsFeature() {
    return draft()
        .set(Field.INCOMPATIBLE_FEATURES, get(Field.INCOMPATIBLE_FEATURES) | FEATURE_SNAPSHOTS)
        .build();
  }

  /**
   * The header that makes freshly written table and bitmap copies active and starts a new journal
   * epoch.
   */
  Header withNewTable(
      int newActiveTable, int newTableCrc, int newBitmapCrc, long newSizeBytes, int newFlags) {
    return withNewTable(
        newActiveTable,
        newTableCrc,
        newBitmapCrc,
        newSizeBytes,
        newFlags,
        snapshotDirectoryOffset(),
        snapshotDirectoryBytes(),
        snapshotDirectoryCrc());
  }

  /** Like the other, and puts a freshly written snapshot directory in force too. */
  Header withNewTable(
      int newActiveTable,
      int newTableCrc,
      int newBitmapCrc,
      long newSizeBytes,
      int newFlags,
      long directoryOffset,
      long directoryBytes,
      int directoryCrc) {
    return draft()
        .set(Field.SNAPSHOT_DIRECTORY_OFFSET, directoryOffset)
        .set(Field.SNAPSHOT_DIRECTORY_BYTES, directoryBytes)
        .set(Field.SNAPSHOT_DIRECTORY_CRC, directoryCrc)
        .set(Field.ACTIVE_COPY, newActiveTable)
        .set(Field.TABLE_CRC, newTableCrc)
        .set(Field.BITMAP_CRC, newBitmapCrc)
        .set(Field.SIZE, newSizeBytes)
        .set(Field.FLAGS, newFlags)
        .set(Field.STABLE_EPOCH, stableEpoch() + 1)
        .build();
  }

  /** A copy of every field, one generation on, for the {@code with} methods to change. */
  Draft draft() {
    return new Draft(this);
  }

  /** Mutable copy of a header; {@link #build()} validates nothing, {@link #decode} does. */
  static final class Draft {
    private final long[] values;
    private String locator = "";

    /** All fields zero: no base, generation 0. */
    Draft() {
      values = new long[FIELDS.length];
    }

    private Draft(Header h) {
      values = h.values.clone();
      values[Field.GENERATION.ordinal()]++;
      locator = h.locator;
    }

    Draft set(Field field, long value) {
      values[field.ordinal()] = value;
      return this;
    }

    long get(Field field) {
      return values[field.ordinal()];
    }

    Draft imageId(UUID id) {
      return set(Field.IMAGE_ID_HIGH, id.getMostSignificantBits())
          .set(Field.IMAGE_ID_LOW, id.getLeastSignificantBits());
    }

    Draft base(BaseLink link) {
      locator = link.locator();
      return set(Field.BASE_ID_HIGH, link.baseId().getMostSignificantBits())
          .set(Field.BASE_ID_LOW, link.baseId().getLeastSignificantBits())
          .set(
              Field.BASE_GENERATION,
              link.baseSnapshotId() != 0 ? link.baseSnapshotId() : link.baseGeneration())
          .set(
              Field.INCOMPATIBLE_FEATURES,
              link.baseSnapshotId() != 0
                  ? get(Field.INCOMPATIBLE_FEATURES) | FEATURE_SNAPSHOT_BASE
                  : get(Field.INCOMPATIBLE_FEATURES) & ~FEATURE_SNAPSHOT_BASE)
          .set(Field.BASE_SIZE, link.baseSizeBytes());
    }

    Header build() {
      return new Header(values.clone(), locator, FORMAT_VERSION);
    }
  }

  /** This header's bytes, with the version it was read with. */
  ByteBuffer encode() {
    return encode(version);
  }

  private ByteBuffer encode(int version) {
    ByteBuffer buf = ByteBuffer.allocate(SLOT_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    int length = lengthBytes();
    buf.putLong(0, MAGIC).putInt(VERSION_AT, version).putInt(LENGTH_AT, length);
    for (Field f : FIELDS) {
      if (!f.snapshotsOnly() || hasSnapshotsFeature()) {
        f.write(buf, get(f));
      }
    }
    byte[] name = locator.getBytes(StandardCharsets.UTF_8);
    buf.putShort(LOCATOR_LENGTH_AT, (short) name.length).put(LOCATOR_AT, name);
    buf.putInt(length, crc(buf, length));
    return buf.clear();
  }

  @Override
  public String toString() {
    StringJoiner fields = new StringJoiner(", ", "Header[", "]");
    for (Field f : FIELDS) {
      fields.add(f.name().toLowerCase(java.util.Locale.ROOT) + "=" + get(f));
    }
    return fields.add("locator=" + locator).toString();
  }

  /** Writes this header into its slot, as the current {@link #FORMAT_VERSION}, and forces it. */
  void writeTo(Storage storage) throws IOException {
    storage.write(encode(FORMAT_VERSION), slotOffset(generation()));
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
        if (best == null || h.generation() > best.generation()) {
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
    int length = buf.getInt(LENGTH_AT);
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
    int version = buf.getInt(VERSION_AT);
    if (version < OLDEST_READABLE_VERSION || version > FORMAT_VERSION) {
      throw new CorruptImageException(
          Kind.UNSUPPORTED_VERSION,
          file
              + ": header at offset "
              + slotOffset
              + ": format version "
              + Integer.toUnsignedString(version)
              + ", this build reads versions "
              + OLDEST_READABLE_VERSION
              + " to "
              + FORMAT_VERSION);
    }
    int incompatibleFeatures = (int) Field.INCOMPATIBLE_FEATURES.read(buf);
    boolean snapshots = (incompatibleFeatures & FEATURE_SNAPSHOTS) != 0;
    int expectedLength = snapshots ? SNAPSHOTS_LENGTH_BYTES : LENGTH_BYTES;
    if (length != expectedLength) {
      throw corrupt(file, slotOffset, "header length " + length + ", expected " + expectedLength);
    }
    long[] values = new long[FIELDS.length];
    for (Field f : FIELDS) {
      values[f.ordinal()] = f.snapshotsOnly() && !snapshots ? 0 : f.read(buf);
    }
    if ((incompatibleFeatures & ~KNOWN_FEATURES) != 0
        || (incompatibleFeatures != 0 && version < 2)) {
      throw new CorruptImageException(
          Kind.UNSUPPORTED_VERSION,
          String.format(
              "%s: header at offset %d: unknown incompatible features 0x%08x",
              file, slotOffset, incompatibleFeatures));
    }
    int flags = (int) values[Field.FLAGS.ordinal()];
    if ((flags & ~KNOWN_FLAGS) != 0) {
      throw new CorruptImageException(
          Kind.UNSUPPORTED_VERSION,
          String.format("%s: header at offset %d: unknown flags 0x%08x", file, slotOffset, flags));
    }
    int locatorBytes = Short.toUnsignedInt(buf.getShort(LOCATOR_LENGTH_AT));
    if (locatorBytes > MAX_LOCATOR_BYTES) {
      throw corrupt(
          file,
          slotOffset,
          "base locator of " + locatorBytes + " bytes, at most " + MAX_LOCATOR_BYTES);
    }
    byte[] locator = new byte[locatorBytes];
    buf.get(LOCATOR_AT, locator);
    boolean hasBase =
        values[Field.BASE_ID_HIGH.ordinal()] != 0 || values[Field.BASE_ID_LOW.ordinal()] != 0;
    if (!hasBase
        && (locatorBytes != 0
            || values[Field.BASE_GENERATION.ordinal()] != 0
            || values[Field.BASE_SIZE.ordinal()] != 0
            || (incompatibleFeatures & (FEATURE_SNAPSHOT_BASE | FEATURE_SNAPSHOT_BASE_BLOCKS))
                != 0)) {
      throw corrupt(file, slotOffset, "base fields are set, but the base image id is zero");
    }
    long baseSnapshot = values[Field.BASE_GENERATION.ordinal()];
    if ((incompatibleFeatures & FEATURE_SNAPSHOT_BASE) != 0
        && (baseSnapshot < 1 || baseSnapshot > Integer.MAX_VALUE)) {
      throw corrupt(file, slotOffset, "base snapshot id " + baseSnapshot + " is not positive");
    }
    Header h = new Header(values, new String(locator, StandardCharsets.UTF_8), version);
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
    if (Integer.bitCount(chunkSizeBytes()) != 1
        || chunkSizeBytes() < ImageOptions.MIN_CHUNK_SIZE_BYTES
        || chunkSizeBytes() > ImageOptions.MAX_CHUNK_SIZE_BYTES) {
      return "chunk size "
          + Integer.toUnsignedString(chunkSizeBytes())
          + " is not a power of two between "
          + ImageOptions.MIN_CHUNK_SIZE_BYTES
          + " and "
          + ImageOptions.MAX_CHUNK_SIZE_BYTES;
    }
    if (sizeBytes() <= 0 || sizeBytes() % 512 != 0) {
      return "virtual size " + sizeBytes() + " is not a positive multiple of 512";
    }
    if (maxSizeBytes() < sizeBytes() || maxSizeBytes() > ImageOptions.MAX_SIZE_LIMIT_BYTES) {
      return "maximum virtual size "
          + maxSizeBytes()
          + " is below the virtual size "
          + sizeBytes()
          + " or above "
          + ImageOptions.MAX_SIZE_LIMIT_BYTES;
    }
    long maxChunks = ceilDiv(maxSizeBytes(), chunkSizeBytes());
    if (maxChunks > ChunkTable.MAX_ENTRIES) {
      return "maximum virtual size "
          + maxSizeBytes()
          + " needs "
          + maxChunks
          + " chunks, more than the "
          + ChunkTable.MAX_ENTRIES
          + " a table may hold";
    }
    if (activeTable() != 0 && activeTable() != 1) {
      return "active table copy " + activeTable() + " is neither 0 nor 1";
    }
    if (tableRegionBytes() < ChunkTable.regionBytes(maxChunks)) {
      return "table copies of "
          + tableRegionBytes()
          + " bytes cannot hold "
          + maxChunks
          + " entries";
    }
    if (journalSizeBytes() < Journal.SECTOR_BYTES
        || journalSizeBytes() % Journal.SECTOR_BYTES != 0
        || journalSizeBytes() > ImageOptions.MAX_JOURNAL_SIZE_BYTES) {
      return "journal size "
          + journalSizeBytes()
          + " is not a multiple of "
          + Journal.SECTOR_BYTES
          + " between "
          + Journal.SECTOR_BYTES
          + " and "
          + ImageOptions.MAX_JOURNAL_SIZE_BYTES;
    }
    if (growthUnitBytes() < chunkSizeBytes()
        || growthUnitBytes() % chunkSizeBytes() != 0
        || growthUnitBytes() > ImageOptions.MAX_GROWTH_UNIT_BYTES) {
      return "growth unit "
          + growthUnitBytes()
          + " is not a multiple of the chunk size "
          + chunkSizeBytes()
          + " up to "
          + ImageOptions.MAX_GROWTH_UNIT_BYTES;
    }
    if (base != null) {
      String problem = baseProblem();
      if (problem != null) {
        return problem;
      }
    } else if (blockSizeBytes() != 0
        || bitmapOffset0() != 0
        || bitmapOffset1() != 0
        || bitmapRegionBytes() != 0
        || (flags() & (FLAG_STANDALONE | FLAG_COPY_ON_READ | FLAG_PREFETCH)) != 0) {
      return "an image without a base has clone settings (block size, bitmap or clone flags())";
    }
    long[][] regions = {
      {REGION_BYTES, REGION_BYTES},
      {tableOffset0(), tableRegionBytes()},
      {tableOffset1(), tableRegionBytes()},
      {journalOffsetBytes(), journalSizeBytes()},
      {bitmapOffset0(), bitmapRegionBytes()},
      {bitmapOffset1(), bitmapRegionBytes()}
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
          || start > dataOffsetBytes()
          || length > dataOffsetBytes() - start) {
        return names[i]
            + " at offset "
            + start
            + " ("
            + length
            + " bytes) is not 4096-aligned inside the metadata area before the data offset "
            + dataOffsetBytes();
      }
      for (int j = 1; j < i; j++) {
        if (start < regions[j][0] + regions[j][1] && regions[j][0] < start + length) {
          return names[i] + " overlaps " + names[j];
        }
      }
    }
    if (dataOffsetBytes() % 4096 != 0) {
      return "data offset " + dataOffsetBytes() + " is not 4096-aligned";
    }
    return snapshotDirectoryProblem();
  }

  /** The snapshot directory starts at a chunk slot and has a sane length, or there is none. */
  private @Nullable String snapshotDirectoryProblem() {
    long offset = snapshotDirectoryOffset();
    long bytes = snapshotDirectoryBytes();
    if (offset == 0 && bytes == 0) {
      return null;
    }
    if (offset < dataOffsetBytes()
        || (offset - dataOffsetBytes()) % chunkSizeBytes() != 0
        || bytes <= 0
        || bytes > MAX_SNAPSHOT_DIRECTORY_BYTES) {
      return "snapshot directory at offset "
          + offset
          + " ("
          + bytes
          + " bytes) does not start at a chunk slot or has a bad length";
    }
    return null;
  }

  /** Checks the base link and the block size against each other and the bitmap region. */
  private String baseProblem() {
    if (Integer.bitCount(blockSizeBytes()) != 1
        || blockSizeBytes() < ImageOptions.SECTOR_BYTES
        || blockSizeBytes() > chunkSizeBytes()) {
      return "block size "
          + Integer.toUnsignedString(blockSizeBytes())
          + " is not a power of two between 512 and the chunk size "
          + chunkSizeBytes();
    }
    long baseSize = base.baseSizeBytes();
    if (baseSize <= 0 || baseSize % ImageOptions.SECTOR_BYTES != 0 || baseSize > sizeBytes()) {
      return "base size " + baseSize + " is not a positive multiple of 512 up to the virtual size";
    }
    if (ceilDiv(baseSize, blockSizeBytes()) > ImageOptions.MAX_BITMAP_BLOCKS) {
      return "base of "
          + baseSize
          + " bytes has more than "
          + ImageOptions.MAX_BITMAP_BLOCKS
          + " blocks of "
          + blockSizeBytes()
          + " bytes";
    }
    if (bitmapRegionBytes() < Bitmap.regionBytes(baseBlockCount())) {
      return "bitmap copies of "
          + bitmapRegionBytes()
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
