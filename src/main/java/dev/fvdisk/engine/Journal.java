package dev.fvdisk.engine;

import dev.fvdisk.engine.io.Storage;
import dev.fvdisk.engine.spi.CommitBatch;
import dev.fvdisk.engine.spi.SnapshotEvent;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32C;
import org.jspecify.annotations.Nullable;

/**
 * The metadata journal: a ring of 512-byte records, each a self-contained, checksummed batch of
 * changed chunk mappings or of clone blocks now present.
 *
 * <p>Record layout (little-endian; unused bytes zero):
 *
 * <pre>
 * offset size field
 *      0    4 magic "FVJR"
 *      4    4 CRC-32C of bytes 8..511
 *      8    8 image tag: the image UUID's two halves XORed, so a sector copied from another
 *             image never verifies
 *     16    8 epoch: must equal the header's stable epoch to be replayed
 *     24    8 sequence number within the epoch, for diagnostics
 *     32    2 kind: 1 = chunk mappings, 2 = block ranges, 3 = zero block ranges (version 2),
 *             4 = snapshot taken or deleted, 5 = preserving mappings, 6 = partial versions (all
 *             three with the snapshots feature)
 *     34    2 count n: 1..59 mappings, 1..39 block ranges or preserving mappings, 1 snapshot,
 *             1..9 partial versions
 *     36    4 kind 5 and 6: the snapshot the previous locations are kept for; kind 4: see below;
 *             else reserved, zero
 *     40  8×n kind 1: virtual chunk index (u32), physical chunk (u32); in format version 2,
 *             0xFFFFFFFF unmaps the chunk
 *     40 12×n kind 2 and 3: first block (u64), block count (u32); the bitmap bits of these blocks
 *             are set
 *     40   24 kind 4: operation (u16: 1 taken, 2 deleted), name length m (u16, 1..64), snapshot id
 *             (u32), creation time in ms (i64), virtual size (i64); then at 64 the name, m bytes
 *             of UTF-8 (for a deletion only the id counts); for a snapshot of a clone that reads
 *             its base, at 36 the first slot of its bitmap copy + 1 (u32, else 0) and at 128 the
 *             copy's slot count (u32) and CRC-32C (u32)
 *     40 12×n kind 5: virtual chunk index (u32), physical chunk (u32, 0xFFFFFFFF unmaps), the
 *             physical chunk it had when the snapshot was taken (u32, 0xFFFFFFFF: none)
 *     40 48×n kind 6: virtual chunk index (u32), physical chunk (u32), backing physical chunk
 *             (u32), flags (u32: bit 0, the change preserves the backing for the snapshot), the
 *             blocks the version holds (32 bytes, bit b%8 of byte b/8)
 * </pre>
 *
 * <p>A partial version (kind 6) maps a chunk to a slot that holds only some of its blocks; the
 * others read from the backing slot, which a snapshot keeps. Each entry carries the version whole,
 * so the newest entry for a chunk is all replay needs, and a torn append leaves each chunk as its
 * previous entry had it: blocks a lost entry named were not acknowledged as durable. A kind 1 or 5
 * entry maps its chunk to a slot holding a whole chunk.
 *
 * <p>A preserving mapping (kind 5) is a chunk's first change after the newest snapshot: the new
 * mapping and the location the snapshot keeps sit in one entry, so no torn append can keep one
 * without the other.
 *
 * <p>A block range only counts where the chunk holding the block is mapped once all mapping records
 * are applied. A write's mapping and its bits may land in different sectors of one journal write,
 * and a torn write may keep the bits but lose the mapping; setting such a bit would make the block
 * read from an unmapped chunk (zeros) instead of the base. Skipping it leaves the old content,
 * which is what a lost, unacknowledged write must show.
 *
 * <p>A zero block range (kind 3) counts wherever its chunk is: it records blocks of a clone that
 * were zeroed while still in the base, and a set bit over an unmapped chunk reads as zeros. Zeroing
 * a clone's whole chunk records all its blocks this way, in an append forced before the one that
 * unmaps the chunk, so the blocks a kind 2 record held never fall back to the base.
 *
 * <p>Every record is judged on its own. A torn or garbage sector fails its checksum and is skipped;
 * a record from before the last table write carries an older epoch and is ignored; a record whose
 * checksum verifies but whose values break the format is reported as corruption.
 *
 * <p>In format version 1 a durable mapping never changes, so replaying the valid records in any
 * order gives the same table. In version 2 a chunk's mapping may move or go (a zeroed chunk), and
 * the newest record wins; within an epoch records are written from the start of the ring upward, so
 * file order is age order. One append names a chunk at most once, and an append is forced before
 * the next is written, so a torn multi-sector append is still safe even when an earlier sector of
 * it was lost and a later one survived: each chunk falls back to its own previous durable state. A
 * slot taken away from a chunk is not given to another before that is durable, so no older record
 * can map a chunk onto another chunk's data. An older record may name a slot past the end of the
 * file, once compaction moved the chunk down and cut the file; only the newest record must lie
 * inside it.
 *
 * <p><b>Thread safety.</b> Not thread-safe: only the image's committer appends.
 */
final class Journal {

  static final int SECTOR_BYTES = 512;
  static final int MAGIC = 0x524A5646; // "FVJR" read as a little-endian int
  static final int KIND_CHUNK_MAPPINGS = 1;
  static final int KIND_BLOCK_RANGES = 2;
  static final int KIND_ZERO_BLOCK_RANGES = 3;
  static final int KIND_SNAPSHOT = 4;
  static final int KIND_PRESERVING_MAPPINGS = 5;
  static final int KIND_PARTIAL_VERSIONS = 6;
  static final int SNAPSHOT_TAKEN = 1;
  static final int SNAPSHOT_DELETED = 2;

  /** The physical chunk of a kind 1 entry that unmaps its chunk (format version 2). */
  static final long UNMAPPED_SLOT = 0xFFFF_FFFFL;

  static final int RECORD_HEADER_BYTES = 40;
  static final int MAPPING_BYTES = 8;
  static final int MAPPINGS_PER_RECORD = (SECTOR_BYTES - RECORD_HEADER_BYTES) / MAPPING_BYTES;
  static final int RANGE_BYTES = 12;
  static final int RANGES_PER_RECORD = (SECTOR_BYTES - RECORD_HEADER_BYTES) / RANGE_BYTES;
  static final int PRESERVING_BYTES = 12;
  static final int PRESERVING_PER_RECORD = (SECTOR_BYTES - RECORD_HEADER_BYTES) / PRESERVING_BYTES;
  static final int PARTIAL_BYTES = 16 + PartialVersions.BITMAP_WORDS * 8;
  static final int PARTIALS_PER_RECORD = (SECTOR_BYTES - RECORD_HEADER_BYTES) / PARTIAL_BYTES;
  private static final int PARTIAL_PRESERVES = 1;
  private static final int SNAPSHOT_NAME_AT = 64;
  private static final int SNAPSHOT_BASE_BLOCKS_AT = SNAPSHOT_NAME_AT + SnapshotSet.MAX_NAME_BYTES;

  private final Storage storage;
  private final long offsetBytes;
  private final long sectorCount;
  private final long imageTag;
  private long epoch;
  private long nextSector;
  private long nextSequence;

  Journal(Storage storage, Header header) {
    this.storage = storage;
    this.offsetBytes = header.journalOffsetBytes();
    this.sectorCount = header.journalSectorCount();
    this.imageTag = imageTag(header);
    this.epoch = header.stableEpoch();
  }

  static long imageTag(Header header) {
    return header.imageId().getMostSignificantBits() ^ header.imageId().getLeastSignificantBits();
  }

  static int recordsFor(int mappingCount, int rangeCount) {
    return (mappingCount + MAPPINGS_PER_RECORD - 1) / MAPPINGS_PER_RECORD
        + (rangeCount + RANGES_PER_RECORD - 1) / RANGES_PER_RECORD;
  }

  /** Records of a whole batch: its zero blocks are written separately, so they start a record. */
  static int recordsFor(CommitBatch batch) {
    int preserving = batch.preservedCount();
    int partial = batch.partialCount();
    return recordsFor(batch.mappingCount() - preserving - partial, batch.presentBlocks().count())
        + recordsFor(0, batch.zeroBlocks().count())
        + (preserving + PRESERVING_PER_RECORD - 1) / PRESERVING_PER_RECORD
        + (partial + PARTIALS_PER_RECORD - 1) / PARTIALS_PER_RECORD
        + batch.snapshotEvents().size();
  }

  boolean fits(CommitBatch batch) {
    return nextSector + recordsFor(batch) <= sectorCount;
  }

  long usedSectors() {
    return nextSector;
  }

  long sectorCount() {
    return sectorCount;
  }

  /** Starts writing at the ring's beginning again, in a new epoch the header has made stable. */
  void restart(long newEpoch) {
    this.epoch = newEpoch;
    this.nextSector = 0;
    this.nextSequence = 0;
  }

  /**
   * Writes the batch's mappings and present blocks as consecutive records in one write; the caller
   * forces afterwards. Its zero blocks are left to {@link #appendZeroBlocks}.
   */
  void append(CommitBatch batch) throws IOException {
    int events = batch.snapshotEvents().size();
    int preserving = batch.preservedCount();
    int partial = batch.partialCount();
    int plain = batch.mappingCount() - preserving - partial;
    int preservingRecords = (preserving + PRESERVING_PER_RECORD - 1) / PRESERVING_PER_RECORD;
    int partialRecords = (partial + PARTIALS_PER_RECORD - 1) / PARTIALS_PER_RECORD;
    int mappingRecords = recordsFor(plain, 0);
    int records =
        events
            + preservingRecords
            + partialRecords
            + mappingRecords
            + recordsFor(0, batch.presentBlocks().count());
    ByteBuffer buf = newRecords(records);
    int r = 0;
    for (SnapshotEvent event : batch.snapshotEvents()) {
      putSnapshotEvent(buf, r++ * SECTOR_BYTES, event);
    }
    // Mappings in three sequences: partial versions (kind 6), preserving whole chunks (kind 5)
    // and plain ones (kind 1).
    int nextPartial = 0;
    for (int p = 0; p < partialRecords; p++, r++) {
      int base = r * SECTOR_BYTES;
      int n = Math.min(PARTIALS_PER_RECORD, partial - p * PARTIALS_PER_RECORD);
      int at = startRecord(buf, base, KIND_PARTIAL_VERSIONS, n);
      buf.putInt(base + 36, batch.preservedFor());
      for (int i = 0; i < n; i++, at += PARTIAL_BYTES) {
        while (batch.partialVersions()[nextPartial] == null) {
          nextPartial++;
        }
        CommitBatch.PartialVersion v = batch.partialVersions()[nextPartial];
        boolean preserves = batch.previousLocations()[nextPartial] != CommitBatch.NOT_PRESERVED;
        buf.putInt(at, batch.chunkIndexes()[nextPartial]);
        buf.putInt(at + 4, (int) batch.locations()[nextPartial]);
        buf.putInt(at + 8, (int) v.backing());
        buf.putInt(at + 12, preserves ? PARTIAL_PRESERVES : 0);
        for (int w = 0; w < PartialVersions.BITMAP_WORDS; w++) {
          buf.putLong(at + 16 + w * 8, v.presentBits()[w]);
        }
        nextPartial++;
      }
    }
    int nextPreserving = 0;
    int nextPlain = 0;
    for (int p = 0; p < preservingRecords; p++, r++) {
      int base = r * SECTOR_BYTES;
      int n = Math.min(PRESERVING_PER_RECORD, preserving - p * PRESERVING_PER_RECORD);
      int at = startRecord(buf, base, KIND_PRESERVING_MAPPINGS, n);
      buf.putInt(base + 36, batch.preservedFor());
      for (int i = 0; i < n; i++, at += PRESERVING_BYTES) {
        while (batch.previousLocations()[nextPreserving] == CommitBatch.NOT_PRESERVED
            || batch.partialVersions()[nextPreserving] != null) {
          nextPreserving++;
        }
        buf.putInt(at, batch.chunkIndexes()[nextPreserving]);
        buf.putInt(at + 4, (int) batch.locations()[nextPreserving]);
        buf.putInt(at + 8, (int) batch.previousLocations()[nextPreserving]);
        nextPreserving++;
      }
    }
    for (int m = 0; m < mappingRecords; m++, r++) {
      int base = r * SECTOR_BYTES;
      int n = Math.min(MAPPINGS_PER_RECORD, plain - m * MAPPINGS_PER_RECORD);
      int at = startRecord(buf, base, KIND_CHUNK_MAPPINGS, n);
      for (int i = 0; i < n; i++, at += MAPPING_BYTES) {
        while (batch.previousLocations()[nextPlain] != CommitBatch.NOT_PRESERVED
            || batch.partialVersions()[nextPlain] != null) {
          nextPlain++;
        }
        buf.putInt(at, batch.chunkIndexes()[nextPlain]);
        buf.putInt(at + 4, (int) batch.locations()[nextPlain]);
        nextPlain++;
      }
    }
    for (int b = 0; r < records; b++, r++) {
      putRanges(buf, r * SECTOR_BYTES, KIND_BLOCK_RANGES, batch.presentBlocks(), b);
    }
    for (int i = 0; i < records; i++) {
      buf.putInt(i * SECTOR_BYTES + 4, recordCrc(buf, i * SECTOR_BYTES));
    }
    write(buf, records);
  }

  private void putSnapshotEvent(ByteBuffer buf, int base, SnapshotEvent event) {
    int at = startRecord(buf, base, KIND_SNAPSHOT, 1);
    buf.putInt(at + 4, event.id());
    if (event instanceof SnapshotEvent.Created created) {
      byte[] name = created.name().getBytes(StandardCharsets.UTF_8);
      buf.putShort(at, (short) SNAPSHOT_TAKEN)
          .putShort(at + 2, (short) name.length)
          .putLong(at + 8, created.createdAtMillis())
          .putLong(at + 16, created.sizeBytes())
          .put(base + SNAPSHOT_NAME_AT, name);
      if (created.baseBlocksSlot() >= 0) {
        buf.putInt(base + 36, Math.toIntExact(created.baseBlocksSlot() + 1))
            .putInt(base + SNAPSHOT_BASE_BLOCKS_AT, created.baseBlocksSlots())
            .putInt(base + SNAPSHOT_BASE_BLOCKS_AT + 4, created.baseBlocksCrc());
      }
    } else {
      buf.putShort(at, (short) SNAPSHOT_DELETED);
    }
  }

  /** Writes zero block ranges (kind 3) as consecutive records in one write; the caller forces. */
  void appendZeroBlocks(CommitBatch.BlockRanges zeroBlocks) throws IOException {
    int records = recordsFor(0, zeroBlocks.count());
    ByteBuffer buf = newRecords(records);
    for (int r = 0; r < records; r++) {
      int base = r * SECTOR_BYTES;
      putRanges(buf, base, KIND_ZERO_BLOCK_RANGES, zeroBlocks, r);
      buf.putInt(base + 4, recordCrc(buf, base));
    }
    write(buf, records);
  }

  private ByteBuffer newRecords(int records) {
    if (nextSector + records > sectorCount) {
      throw new IllegalStateException("journal append of " + records + " records does not fit");
    }
    return ByteBuffer.allocate(records * SECTOR_BYTES).order(ByteOrder.LITTLE_ENDIAN);
  }

  /** Fills in a record's header but its checksum; returns where its entries start. */
  private int startRecord(ByteBuffer buf, int base, int kind, int count) {
    buf.putInt(base, MAGIC);
    buf.putLong(base + 8, imageTag);
    buf.putLong(base + 16, epoch);
    buf.putLong(base + 24, nextSequence++);
    buf.putShort(base + 32, (short) kind);
    buf.putShort(base + 34, (short) count);
    return base + RECORD_HEADER_BYTES;
  }

  /** Puts the {@code index}th record's worth of {@code ranges}. */
  private void putRanges(
      ByteBuffer buf, int base, int kind, CommitBatch.BlockRanges ranges, int index) {
    int first = index * RANGES_PER_RECORD;
    int n = Math.min(RANGES_PER_RECORD, ranges.count() - first);
    int at = startRecord(buf, base, kind, n);
    for (int i = 0; i < n; i++, at += RANGE_BYTES) {
      buf.putLong(at, ranges.firstBlocks()[first + i]);
      buf.putInt(at + 8, ranges.blockCounts()[first + i]);
    }
  }

  private void write(ByteBuffer buf, int records) throws IOException {
    storage.write(buf, offsetBytes + nextSector * SECTOR_BYTES);
    nextSector += records;
  }

  private static int recordCrc(ByteBuffer buf, int base) {
    CRC32C crc = new CRC32C();
    crc.update(buf.duplicate().limit(base + SECTOR_BYTES).position(base + 8));
    return (int) crc.getValue();
  }

  /** What replay found, for the opener and the checker. */
  record Replay(
      long appliedRecords,
      long appliedMappings,
      long staleRecords,
      long skippedSectors,
      long skippedBlocks,
      List<String> problems) {

    static final Replay NONE = new Replay(0, 0, 0, 0, 0, List.of());
  }

  /**
   * Applies every valid record of the header's stable epoch: all mappings to {@code table} first,
   * then the block ranges to {@code bitmap}, each block only if its chunk is mapped.
   *
   * @param physicalChunkLimit a mapping to a slot at or past this lies outside the file
   */
  static Replay replay(
      Storage storage,
      Header header,
      ChunkTable table,
      Bitmap bitmap,
      SnapshotSet snapshots,
      long physicalChunkLimit)
      throws IOException {
    long tag = imageTag(header);
    // Version 1 never changed a durable mapping, so a record that does is damage there.
    boolean movable = header.formatVersion() >= 2;
    long applied = 0;
    long appliedMappings = 0;
    long stale = 0;
    long skipped = 0;
    List<String> problems = new ArrayList<>();
    List<long[]> blockRanges = new ArrayList<>();
    List<long[]> zeroBlockRanges = new ArrayList<>();
    Map<Integer, String> outsideFile = new TreeMap<>();
    int sectorsPerRead = 2048;
    ByteBuffer buf =
        ByteBuffer.allocate(sectorsPerRead * SECTOR_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    long sectors = header.journalSectorCount();
    for (long first = 0; first < sectors; first += sectorsPerRead) {
      int n = (int) Math.min(sectorsPerRead, sectors - first);
      buf.clear().limit(n * SECTOR_BYTES);
      storage.read(buf, header.journalOffsetBytes() + first * SECTOR_BYTES);
      for (int s = 0; s < n; s++) {
        int base = s * SECTOR_BYTES;
        long sectorOffset = header.journalOffsetBytes() + (first + s) * SECTOR_BYTES;
        if (buf.getInt(base) != MAGIC || buf.getInt(base + 4) != recordCrc(buf, base)) {
          if (!isBlank(buf, base)) {
            skipped++;
          }
          continue;
        }
        if (buf.getLong(base + 8) != tag) {
          skipped++;
          continue;
        }
        long epoch = buf.getLong(base + 16);
        if (epoch < header.stableEpoch()) {
          stale++;
          continue;
        }
        if (epoch > header.stableEpoch()) {
          problems.add(
              where(storage, sectorOffset)
                  + ": epoch "
                  + epoch
                  + " is newer than the stable epoch "
                  + header.stableEpoch());
          continue;
        }
        int kind = Short.toUnsignedInt(buf.getShort(base + 32));
        int count = Short.toUnsignedInt(buf.getShort(base + 34));
        int limit =
            switch (kind) {
              case KIND_CHUNK_MAPPINGS -> MAPPINGS_PER_RECORD;
              case KIND_BLOCK_RANGES -> RANGES_PER_RECORD;
              case KIND_ZERO_BLOCK_RANGES -> movable ? RANGES_PER_RECORD : 0;
              case KIND_SNAPSHOT -> header.hasSnapshotsFeature() ? 1 : 0;
              case KIND_PRESERVING_MAPPINGS ->
                  header.hasSnapshotsFeature() ? PRESERVING_PER_RECORD : 0;
              case KIND_PARTIAL_VERSIONS -> header.hasSnapshotsFeature() ? PARTIALS_PER_RECORD : 0;
              default -> 0;
            };
        if (count < 1 || count > limit) {
          problems.add(
              where(storage, sectorOffset)
                  + ": kind "
                  + kind
                  + " with "
                  + count
                  + " entries is not valid");
          continue;
        }
        int at = base + RECORD_HEADER_BYTES;
        if (kind == KIND_SNAPSHOT) {
          String problem = applySnapshotEvent(buf, base, snapshots);
          if (problem != null) {
            problems.add(where(storage, sectorOffset) + ": " + problem);
          }
          applied++;
          continue;
        }
        if (kind == KIND_BLOCK_RANGES || kind == KIND_ZERO_BLOCK_RANGES) {
          for (int i = 0; i < count; i++, at += RANGE_BYTES) {
            long firstBlock = buf.getLong(at);
            long blockCount = Integer.toUnsignedLong(buf.getInt(at + 8));
            if (firstBlock < 0
                || blockCount == 0
                || firstBlock > bitmap.blockCount() - blockCount) {
              problems.add(
                  where(storage, sectorOffset)
                      + ": block range of "
                      + blockCount
                      + " blocks from "
                      + firstBlock
                      + " is outside the bitmap ("
                      + bitmap.blockCount()
                      + " blocks)");
            } else {
              (kind == KIND_BLOCK_RANGES ? blockRanges : zeroBlockRanges)
                  .add(new long[] {firstBlock, blockCount});
            }
          }
          applied++;
          continue;
        }
        boolean partial = kind == KIND_PARTIAL_VERSIONS;
        boolean preserving = kind == KIND_PRESERVING_MAPPINGS;
        int preservedFor = buf.getInt(base + 36);
        if ((preserving || (partial && preservesAny(buf, at, count)))
            && snapshots.byId(preservedFor) == null) {
          problems.add(
              where(storage, sectorOffset)
                  + ": preserves chunks for snapshot "
                  + preservedFor
                  + ", which does not exist");
          continue;
        }
        int entryBytes = partial ? PARTIAL_BYTES : preserving ? PRESERVING_BYTES : MAPPING_BYTES;
        for (int i = 0; i < count; i++, at += entryBytes) {
          long chunkIndex = Integer.toUnsignedLong(buf.getInt(at));
          long physical = Integer.toUnsignedLong(buf.getInt(at + 4));
          long backing = partial ? Integer.toUnsignedLong(buf.getInt(at + 8)) : -1;
          if (partial && (physical == UNMAPPED_SLOT || backing == physical)) {
            problems.add(
                where(storage, sectorOffset)
                    + ": partial version of chunk "
                    + chunkIndex
                    + " in slot "
                    + physical
                    + " over "
                    + backing);
            continue;
          }
          if (partial
              && (buf.getInt(at + 12) & PARTIAL_PRESERVES) != 0
              && chunkIndex < table.chunkCount()) {
            snapshots.preserve(preservedFor, (int) chunkIndex, backing);
          }
          if (preserving && chunkIndex < table.chunkCount()) {
            long previous = Integer.toUnsignedLong(buf.getInt(at + 8));
            // Not checked against the file here: a later deletion may have freed the slot and
            // compaction cut it off. A slot still held at the end is checked by the scan.
            snapshots.preserve(
                preservedFor, (int) chunkIndex, previous == UNMAPPED_SLOT ? -1 : previous);
          }
          boolean unmapping = movable && physical == UNMAPPED_SLOT;
          if (chunkIndex >= table.chunkCount() || (!unmapping && physical >= physicalChunkLimit)) {
            String problem =
                where(storage, sectorOffset)
                    + ": maps chunk "
                    + chunkIndex
                    + " to physical chunk "
                    + physical
                    + ", outside the table ("
                    + table.chunkCount()
                    + " chunks) or the file ("
                    + physicalChunkLimit
                    + " chunk slots)";
            if (movable && chunkIndex < table.chunkCount()) {
              // Compaction may have moved the chunk down since and cut the file: only damage if no
              // newer record for the chunk follows.
              outsideFile.put((int) chunkIndex, problem);
            } else {
              problems.add(problem);
            }
            continue;
          }
          if (partial) {
            long[] bits = new long[PartialVersions.BITMAP_WORDS];
            for (int w = 0; w < bits.length; w++) {
              bits[w] = buf.getLong(at + 16 + w * 8);
            }
            snapshots.partials().load(physical, backing, bits);
          } else if (!unmapping) {
            snapshots.partials().remove(physical); // the slot holds a whole chunk now
          }
          if (movable) {
            // Records are read in the order they were written, so the newest one wins.
            table.applyNewer((int) chunkIndex, unmapping ? -1 : physical);
            outsideFile.remove((int) chunkIndex);
            appliedMappings++;
            continue;
          }
          String conflict = table.applyDurable((int) chunkIndex, physical);
          if (conflict != null) {
            problems.add(where(storage, sectorOffset) + ": " + conflict);
          } else {
            appliedMappings++;
          }
        }
        applied++;
      }
    }
    for (long[] range : zeroBlockRanges) {
      for (long b = range[0]; b < range[0] + range[1]; b++) {
        bitmap.markDurable(b);
      }
    }
    problems.addAll(outsideFile.values());
    long skippedBlocks = 0;
    long blocksPerChunk =
        header.base() == null ? 1 : header.chunkSizeBytes() / header.blockSizeBytes();
    for (long[] range : blockRanges) {
      for (long b = range[0]; b < range[0] + range[1]; b++) {
        if (table.physicalChunk((int) (b / blocksPerChunk)) >= 0) {
          bitmap.markDurable(b);
        } else if (!bitmap.isSet(b)) {
          skippedBlocks++;
        }
      }
    }
    return new Replay(
        applied, appliedMappings, stale, skipped, skippedBlocks, List.copyOf(problems));
  }

  private static boolean preservesAny(ByteBuffer buf, int at, int count) {
    for (int i = 0; i < count; i++) {
      if ((buf.getInt(at + i * PARTIAL_BYTES + 12) & PARTIAL_PRESERVES) != 0) {
        return true;
      }
    }
    return false;
  }

  /** Applies a kind 4 record; returns what is wrong with it, or null. */
  private static @Nullable String applySnapshotEvent(
      ByteBuffer buf, int base, SnapshotSet snapshots) {
    int at = base + RECORD_HEADER_BYTES;
    int op = Short.toUnsignedInt(buf.getShort(at));
    int id = buf.getInt(at + 4);
    if (op == SNAPSHOT_DELETED) {
      if (snapshots.byId(id) == null) {
        return "deletes snapshot " + id + ", which does not exist";
      }
      snapshots.delete(id);
      return null;
    }
    int nameBytes = Short.toUnsignedInt(buf.getShort(at + 2));
    long sizeBytes = buf.getLong(at + 16);
    if (op != SNAPSHOT_TAKEN
        || nameBytes == 0
        || nameBytes > SnapshotSet.MAX_NAME_BYTES
        || sizeBytes <= 0
        || sizeBytes % 512 != 0) {
      return "snapshot record with operation "
          + op
          + ", name of "
          + nameBytes
          + " bytes, size "
          + sizeBytes
          + " is not valid";
    }
    byte[] name = new byte[nameBytes];
    buf.get(base + SNAPSHOT_NAME_AT, name);
    SnapshotSet.BaseBlocks baseBlocks = null;
    long firstSlot = Integer.toUnsignedLong(buf.getInt(base + 36)) - 1;
    if (firstSlot >= 0) {
      long slots = Integer.toUnsignedLong(buf.getInt(base + SNAPSHOT_BASE_BLOCKS_AT));
      if (slots == 0 || firstSlot + slots > ChunkTable.MAX_PHYSICAL_CHUNKS) {
        return "snapshot record with a bitmap copy of " + slots + " slots at " + firstSlot;
      }
      baseBlocks =
          new SnapshotSet.BaseBlocks(
              firstSlot, (int) slots, buf.getInt(base + SNAPSHOT_BASE_BLOCKS_AT + 4));
    }
    return snapshots.add(
        new SnapshotSet.Snapshot(
            id,
            new String(name, StandardCharsets.UTF_8),
            buf.getLong(at + 8),
            sizeBytes,
            baseBlocks));
  }

  /** Names a record in a problem; built only when there is one, since replay sees many records. */
  private static String where(Storage storage, long sectorOffset) {
    return storage.description() + ": journal record at offset " + sectorOffset;
  }

  private static boolean isBlank(ByteBuffer buf, int base) {
    for (int i = 0; i < SECTOR_BYTES; i += 8) {
      if (buf.getLong(base + i) != 0) {
        return false;
      }
    }
    return true;
  }
}
