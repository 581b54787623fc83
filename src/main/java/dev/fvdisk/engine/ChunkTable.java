package dev.fvdisk.engine;

import dev.fvdisk.engine.CorruptImageException.Kind;
import dev.fvdisk.engine.io.Storage;
import dev.fvdisk.engine.spi.Checkpoint;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.zip.CRC32C;

/**
 * The chunk table: for every virtual chunk, the physical chunk slot that holds it, if any.
 *
 * <p>On disk each entry is an unsigned 32-bit little-endian word: {@code 0} means unallocated (the
 * chunk reads as zeros) and any other value {@code v} means physical chunk {@code v - 1}, stored at
 * {@code dataOffset + (v - 1) × chunkSize}. Zero for "unallocated" means a new table, or the part
 * added by growing the image, is a hole in the file that never needs writing. Two copies of the
 * table are reserved; a whole-table write always goes to the inactive copy and the header then
 * switches to it, so a torn table write never damages the table in use. The header holds the
 * CRC-32C of the active copy's entries.
 *
 * <p>In memory an entry may also carry {@link #DIRTY}: the mapping exists and its chunk may be read
 * and written, but it is not yet durable (not in the journal, not in a table copy).
 *
 * <p><b>Thread safety.</b> Entries are read and changed atomically; a mapping becomes visible to
 * other threads only once its slot is ready to be read.
 */
final class ChunkTable {

  /** Largest number of physical chunk slots: entries are 31-bit, and 0 means "unallocated". */
  static final long MAX_PHYSICAL_CHUNKS = Integer.MAX_VALUE - 1L;

  /**
   * Most entries a table may have: 2^28, so that one table copy (1 GiB) fits a single buffer. With
   * 1 MiB chunks that is a 256 TiB virtual disk.
   */
  static final long MAX_ENTRIES = 1L << 28;

  static final int ENTRY_BYTES = 4;
  private static final int LOAD_PIECE_BYTES = 1 << 20;
  private static final int EMPTY = 0;
  private static final int DIRTY = 0x8000_0000;
  private static final int VALUE_MASK = 0x7FFF_FFFF;

  private final AtomicIntegerArray entries;

  ChunkTable(int chunkCount) {
    this.entries = new AtomicIntegerArray(chunkCount);
  }

  int chunkCount() {
    return entries.length();
  }

  /** Bytes reserved for one table copy of {@code chunkCount} entries: whole 4 KiB pages. */
  static long regionBytes(long chunkCount) {
    return Header.ceilDiv(chunkCount * ENTRY_BYTES, 4096) * 4096;
  }

  /** The physical chunk of {@code chunkIndex}, or -1 when the chunk is unallocated. */
  long physicalChunk(int chunkIndex) {
    int e = entries.get(chunkIndex);
    return e == EMPTY ? -1 : (e & VALUE_MASK) - 1L;
  }

  boolean isDirty(int chunkIndex) {
    return (entries.get(chunkIndex) & DIRTY) != 0;
  }

  /** Publishes a new, not yet durable mapping. The slot must be ready to be read. */
  void mapDirty(int chunkIndex, long physicalChunk) {
    if (!entries.compareAndSet(chunkIndex, EMPTY, encode(physicalChunk) | DIRTY)) {
      throw new IllegalStateException("chunk " + chunkIndex + " is mapped already");
    }
  }

  /** Clears DIRTY once the mapping is durable. */
  void markClean(int chunkIndex) {
    entries.getAndUpdate(chunkIndex, e -> e & ~DIRTY);
  }

  /**
   * Applies a durable mapping read from the journal.
   *
   * @return null when applied (or already present), else why it conflicts with the table
   */
  String applyDurable(int chunkIndex, long physicalChunk) {
    int wanted = encode(physicalChunk);
    int before = entries.compareAndExchange(chunkIndex, EMPTY, wanted);
    if (before == EMPTY || (before & VALUE_MASK) == wanted) {
      return null;
    }
    return "chunk "
        + chunkIndex
        + " is mapped to physical chunk "
        + ((before & VALUE_MASK) - 1L)
        + " and to "
        + physicalChunk;
  }

  private static int encode(long physicalChunk) {
    if (physicalChunk < 0 || physicalChunk >= MAX_PHYSICAL_CHUNKS) {
      throw new IllegalArgumentException("physical chunk " + physicalChunk + " out of range");
    }
    return (int) (physicalChunk + 1);
  }

  /**
   * The table as a checkpoint may record it: clean entries as they are, DIRTY entries as without a
   * location unless {@code committable} says that their slot content is durable and they may be
   * recorded now. A view: entries mapped meanwhile show up in it.
   */
  Checkpoint.ChunkMap durableWith(ChunkSet committable) {
    return new Checkpoint.ChunkMap() {
      @Override
      public int chunkCount() {
        return entries.length();
      }

      @Override
      public long location(int chunkIndex) {
        int e = entries.get(chunkIndex);
        if (e == EMPTY || ((e & DIRTY) != 0 && !committable.contains(chunkIndex))) {
          return -1;
        }
        return (e & VALUE_MASK) - 1L;
      }
    };
  }

  static int crc(ByteBuffer encoded) {
    CRC32C crc = new CRC32C();
    crc.update(encoded.duplicate());
    return (int) crc.getValue();
  }

  /**
   * Loads the active table copy and verifies it against the header's checksum. Whether the chunks
   * it maps lie inside the file is checked by the caller, which knows the file's size.
   */
  static ChunkTable load(Storage storage, Header header) throws IOException {
    long count = header.chunkCount();
    long offset = header.activeTableOffset();
    ChunkTable table = new ChunkTable((int) count);
    // Read piece by piece straight into the entries, so a large table is not held twice.
    ByteBuffer buf =
        ByteBuffer.allocate((int) Math.min(count * ENTRY_BYTES, LOAD_PIECE_BYTES))
            .order(ByteOrder.LITTLE_ENDIAN);
    CRC32C crc = new CRC32C();
    int badEntry = -1;
    int badRaw = 0;
    for (int first = 0; first < count; ) {
      int n = (int) Math.min(count - first, buf.capacity() / ENTRY_BYTES);
      buf.clear().limit(n * ENTRY_BYTES);
      storage.read(buf, offset + (long) first * ENTRY_BYTES);
      buf.flip();
      crc.update(buf.duplicate());
      for (int i = 0; i < n; i++) {
        int raw = buf.getInt(i * ENTRY_BYTES);
        if (raw < 0 && badEntry < 0) {
          badEntry = first + i;
          badRaw = raw;
        }
        table.entries.set(first + i, raw);
      }
      first += n;
    }
    if ((int) crc.getValue() != header.tableCrc()) {
      throw new CorruptImageException(
          Kind.CORRUPT,
          String.format(
              "%s: chunk table copy %d at offset %d: checksum 0x%08x, header expects 0x%08x",
              storage.description(),
              header.activeTable(),
              offset,
              (int) crc.getValue(),
              header.tableCrc()));
    }
    if (badEntry >= 0) {
      throw new CorruptImageException(
          Kind.CORRUPT,
          String.format(
              "%s: chunk table entry %d at offset %d holds 0x%08x, above the largest chunk id",
              storage.description(), badEntry, offset + (long) badEntry * ENTRY_BYTES, badRaw));
    }
    return table;
  }

  /** A copy of this table with room for {@code newCount} chunks; the new ones unallocated. */
  ChunkTable grownTo(int newCount) {
    ChunkTable grown = new ChunkTable(newCount);
    for (int i = 0; i < entries.length(); i++) {
      grown.entries.set(i, entries.get(i));
    }
    return grown;
  }

  /** Membership test over chunk indexes, so callers can pass a set without boxing. */
  @FunctionalInterface
  interface ChunkSet {
    ChunkSet NONE = i -> false;

    boolean contains(int chunkIndex);
  }
}
