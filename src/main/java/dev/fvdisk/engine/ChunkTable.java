package dev.fvdisk.engine;

import dev.fvdisk.engine.CorruptImageException.Kind;
import dev.fvdisk.engine.io.Storage;
import dev.fvdisk.engine.spi.Checkpoint;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.ConcurrentHashMap;
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
 * and written, but it is not yet durable (not in the journal, not in a table copy). {@link
 * #UNMAPPED} (DIRTY without a slot) is a chunk whose slot was taken away (it was zeroed whole)
 * while the table on disk may still map it: it reads as zeros, and its old slot stays out of use
 * until the unmapping is durable. A chunk moved to another slot by compaction ({@link
 * #relocateDirty}) is DIRTY at its new slot while the table on disk still maps the old one; until
 * the move is durable a checkpoint records the old slot, whose content is the same.
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
  private static final int UNMAPPED = DIRTY;
  private static final int VALUE_MASK = 0x7FFF_FFFF;

  private final AtomicIntegerArray entries;

  /** Chunks moved whose new slot is not durable yet: the entry they got, and the durable slot. */
  private final ConcurrentHashMap<Integer, Relocation> relocations = new ConcurrentHashMap<>();

  private record Relocation(int raw, long durableSlot) {}

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
    return location(entries.get(chunkIndex));
  }

  /** The physical chunk an entry's raw value names, or -1 for none (empty or unmapped). */
  static long location(int raw) {
    return (raw & VALUE_MASK) - 1L;
  }

  /** The entry's raw value, to be passed back to {@link #markClean(int, int)}. */
  int raw(int chunkIndex) {
    return entries.get(chunkIndex);
  }

  boolean isDirty(int chunkIndex) {
    return isDirtyRaw(entries.get(chunkIndex));
  }

  static boolean isDirtyRaw(int raw) {
    return (raw & DIRTY) != 0;
  }

  /**
   * Publishes a new, not yet durable mapping. The slot must be ready to be read. The caller holds
   * the chunk's mapping lock, which keeps out every change of the entry but one: a commit marking
   * it clean (an unmapping becoming durable). That one only clears the DIRTY bit, so a compare and
   * set it beats is tried again.
   */
  void mapDirty(int chunkIndex, long physicalChunk) {
    int after = encode(physicalChunk) | DIRTY;
    while (true) {
      int before = entries.get(chunkIndex);
      if (location(before) >= 0) {
        throw new IllegalStateException("chunk " + chunkIndex + " is mapped already");
      }
      if (entries.compareAndSet(chunkIndex, before, after)) {
        return;
      }
    }
  }

  /**
   * Takes the chunk's slot away: the chunk reads as zeros from now on. Like {@link #mapDirty},
   * tries again when a commit marked the entry clean between its read and the compare and set.
   *
   * @return false when the chunk is no longer mapped to {@code physicalChunk}
   */
  boolean unmapDirty(int chunkIndex, long physicalChunk) {
    while (true) {
      int before = entries.get(chunkIndex);
      if (location(before) != physicalChunk) {
        return false;
      }
      if (entries.compareAndSet(chunkIndex, before, UNMAPPED)) {
        forgetRelocation(chunkIndex, before);
        return true;
      }
    }
  }

  /**
   * Moves a chunk whose mapping is durable ({@code from}, not DIRTY) to slot {@code to}, which the
   * caller has made hold the same bytes. Until a commit records the move, a checkpoint that does
   * not take it records {@code from}.
   *
   * @return false when the entry is not a durable mapping to {@code from}; nothing changed
   */
  boolean relocateDirty(int chunkIndex, long from, long to) {
    int before = entries.get(chunkIndex);
    if ((before & DIRTY) != 0 || location(before) != from) {
      return false;
    }
    int after = encode(to) | DIRTY;
    // Recorded before the entry changes, so a checkpoint that sees the new entry finds it.
    relocations.put(chunkIndex, new Relocation(after, from));
    if (!entries.compareAndSet(chunkIndex, before, after)) {
      forgetRelocation(chunkIndex, after);
      return false;
    }
    return true;
  }

  /**
   * Moves a chunk copied on write for a snapshot from slot {@code from} to slot {@code to}, which
   * holds the same bytes. Like {@link #relocateDirty}, but the entry may be DIRTY from a move by
   * compaction; until a commit records the copy, a checkpoint records the chunk's durable slot. The
   * caller holds the chunk's mapping lock, so only a commit marking the entry clean can change it
   * meanwhile.
   *
   * @return false when the chunk is not at {@code from}; nothing changed
   */
  boolean copyOnWriteDirty(int chunkIndex, long from, long to) {
    int after = encode(to) | DIRTY;
    while (true) {
      int before = entries.get(chunkIndex);
      if (location(before) != from) {
        return false;
      }
      long durable = -1;
      if ((before & DIRTY) == 0) {
        durable = from;
      } else {
        Relocation moved = relocations.get(chunkIndex);
        if (moved != null && moved.raw() == before) {
          durable = moved.durableSlot();
        }
      }
      Relocation mine = durable < 0 ? null : new Relocation(after, durable);
      if (mine != null) {
        relocations.put(chunkIndex, mine);
      }
      if (entries.compareAndSet(chunkIndex, before, after)) {
        return true;
      }
      if (mine != null) {
        relocations.remove(chunkIndex, mine);
      }
    }
  }

  private void forgetRelocation(int chunkIndex, int raw) {
    if (!relocations.isEmpty()) {
      relocations.computeIfPresent(chunkIndex, (k, r) -> r.raw() == raw ? null : r);
    }
  }

  /**
   * Clears DIRTY once the entry a commit took, {@code takenRaw}, is durable; an entry changed since
   * stays dirty for the next commit.
   */
  void markClean(int chunkIndex, int takenRaw) {
    if (entries.compareAndSet(chunkIndex, takenRaw, takenRaw & ~DIRTY)) {
      forgetRelocation(chunkIndex, takenRaw);
    } else if (!relocations.isEmpty()) {
      // Changed again since the commit took it (copied on write after a move): the slot taken is
      // the durable one now, and a checkpoint before the next commit must record that one.
      long durable = location(takenRaw);
      relocations.computeIfPresent(
          chunkIndex, (k, r) -> durable < 0 ? null : new Relocation(r.raw(), durable));
    }
  }

  /**
   * Applies a durable mapping read from a version 1 journal, where a mapping never changes.
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

  /**
   * Applies a durable mapping, or with {@code physicalChunk} -1 an unmapping, read from a version 2
   * journal in the order it was written: the newest record for a chunk wins.
   */
  void applyNewer(int chunkIndex, long physicalChunk) {
    entries.set(chunkIndex, physicalChunk < 0 ? EMPTY : encode(physicalChunk));
  }

  private static int encode(long physicalChunk) {
    if (physicalChunk < 0 || physicalChunk >= MAX_PHYSICAL_CHUNKS) {
      throw new IllegalArgumentException("physical chunk " + physicalChunk + " out of range");
    }
    return (int) (physicalChunk + 1);
  }

  /**
   * The table as a checkpoint may record it: clean entries as they are, the entries a commit took
   * ({@code committing}, their slots' content is durable) as they were taken, a chunk moved since
   * at its durable slot, and every other DIRTY entry as without a location. A view: entries changed
   * meanwhile show up in it.
   *
   * <p>Leaving out a mapping that is not durable yet, or writing an unmapping early, records a
   * state the disk really had: a zeroed chunk, or one never written.
   */
  Checkpoint.ChunkMap durableWith(Taken committing) {
    java.util.Map<Integer, Integer> taken = committing.byChunk();
    return new Checkpoint.ChunkMap() {
      @Override
      public int chunkCount() {
        return entries.length();
      }

      @Override
      public long location(int chunkIndex) {
        int e = entries.get(chunkIndex);
        if ((e & DIRTY) != 0) {
          Integer t = taken.get(chunkIndex);
          if (t != null) {
            return ChunkTable.location(t);
          }
          Relocation r = relocations.get(chunkIndex);
          return r != null && r.raw() == e ? r.durableSlot() : -1;
        }
        return ChunkTable.location(e);
      }
    };
  }

  /**
   * Entries a commit took: the chunks and their raw values at the time, which is what the commit
   * records, whatever they change to while it runs.
   */
  record Taken(int[] chunkIndexes, int[] raws) {
    static final Taken NONE = new Taken(new int[0], new int[0]);

    int size() {
      return chunkIndexes.length;
    }

    /** Where chunk {@code i} of this list lives, -1 for an unmapping. */
    long location(int i) {
      return ChunkTable.location(raws[i]);
    }

    java.util.Map<Integer, Integer> byChunk() {
      java.util.Map<Integer, Integer> m = new java.util.HashMap<>();
      for (int i = 0; i < chunkIndexes.length; i++) {
        m.put(chunkIndexes[i], raws[i]);
      }
      return m;
    }
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
    grown.relocations.putAll(relocations);
    return grown;
  }
}
