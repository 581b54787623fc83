package dev.fvdisk.engine;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.function.LongPredicate;
import org.jspecify.annotations.Nullable;

/**
 * Chunk versions that hold only some of their blocks. The first write into a chunk after a snapshot
 * gives the chunk a new slot but copies nothing into it: the slot is a <em>partial version</em>
 * whose blocks read from the slot once written and from the version before it, the <em>backing</em>
 * slot the snapshot keeps, until then. So that first write costs a block, not a chunk. The backing
 * may be partial itself (a version preserved by a later snapshot before all its blocks were
 * written), which makes a chain as long as the snapshots between them at most.
 *
 * <p>A slot has at most one version based on it: the next version of the same chunk. A backing slot
 * is never freed while that version still reads from it; deleting the snapshot that held it first
 * {@linkplain ChunkStore#fillDependent fills} the dependent version.
 *
 * <p>A block is {@value #MIN_BLOCK_BYTES} bytes, or a 256th of the chunk for chunks above 1 MiB, so
 * a version's present blocks fit 32 bytes of a journal record.
 *
 * <p><b>Thread safety.</b> Versions are added and removed under their chunk's mapping lock, and
 * while the image is held exclusively; a block's bit is set under its slot's I/O stripe, after the
 * block's data is written, and read at any time.
 */
final class PartialVersions {

  static final int MAX_BLOCKS = 256;
  static final int BITMAP_WORDS = MAX_BLOCKS / 64;
  static final int MIN_BLOCK_BYTES = 4096;

  /** One partial version: where it lives, what it reads through, which blocks it holds. */
  static final class Version {
    final long slot;
    final long backing;
    private final AtomicLongArray present = new AtomicLongArray(BITMAP_WORDS);

    /** Blocks whose data was sealed: a checkpoint may record them (see {@link #markSealed}). */
    private final long[] sealed = new long[BITMAP_WORDS];

    Version(long slot, long backing) {
      this.slot = slot;
      this.backing = backing;
    }

    boolean has(int block) {
      return (present.get(block >>> 6) & (1L << block)) != 0;
    }

    /** Marks a block present; true when it was not yet. */
    boolean set(int block) {
      long bit = 1L << block;
      return (present.getAndUpdate(block >>> 6, w -> w | bit) & bit) == 0;
    }

    /** The present blocks now, as {@value #BITMAP_WORDS} words, bit {@code b % 64} of word b/64. */
    long[] presentBits() {
      long[] bits = new long[BITMAP_WORDS];
      for (int i = 0; i < BITMAP_WORDS; i++) {
        bits[i] = present.get(i);
      }
      return bits;
    }

    /** Records that the data of these blocks is durable. */
    synchronized void markSealed(long[] bits) {
      for (int i = 0; i < BITMAP_WORDS; i++) {
        sealed[i] |= bits[i];
      }
    }

    synchronized long[] sealedBits() {
      return sealed.clone();
    }

    void loadBits(long[] bits) {
      for (int i = 0; i < BITMAP_WORDS; i++) {
        present.set(i, bits[i]);
      }
      markSealed(bits);
    }
  }

  private final int blockSizeBytes;
  private final int blocksPerChunk;
  private final Map<Long, Version> bySlot = new ConcurrentHashMap<>();
  private final Map<Long, Long> dependents = new ConcurrentHashMap<>();

  PartialVersions(long chunkSizeBytes) {
    this.blockSizeBytes = blockSizeBytes(chunkSizeBytes);
    this.blocksPerChunk = (int) (chunkSizeBytes / blockSizeBytes);
  }

  static int blockSizeBytes(long chunkSizeBytes) {
    return (int) Math.max(MIN_BLOCK_BYTES, chunkSizeBytes / MAX_BLOCKS);
  }

  int blockSizeBytes() {
    return blockSizeBytes;
  }

  int blocksPerChunk() {
    return blocksPerChunk;
  }

  boolean isEmpty() {
    return bySlot.isEmpty();
  }

  int size() {
    return bySlot.size();
  }

  /** The partial version in {@code slot}, or null when the slot holds a whole chunk. */
  @Nullable Version get(long slot) {
    return bySlot.isEmpty() ? null : bySlot.get(slot);
  }

  /** Makes {@code slot} a partial version reading through {@code backing}, with no block yet. */
  Version create(long slot, long backing) {
    Version v = new Version(slot, backing);
    put(v);
    return v;
  }

  /** Adds a version as a journal record or the directory has it, replacing one in its slot. */
  void load(long slot, long backing, long[] bits) {
    Version v = new Version(slot, backing);
    v.loadBits(bits);
    put(v);
  }

  private void put(Version v) {
    remove(v.slot);
    bySlot.put(v.slot, v);
    dependents.put(v.backing, v.slot);
  }

  /** The slot holds a whole chunk again, or none: it was filled, freed or reused. */
  void remove(long slot) {
    Version gone = bySlot.remove(slot);
    if (gone != null) {
      dependents.remove(gone.backing, slot);
    }
  }

  /** The partial version that reads through {@code slot}, or null. */
  @Nullable Version dependentOf(long slot) {
    Long dependent = dependents.get(slot);
    return dependent == null ? null : bySlot.get(dependent);
  }

  /** Drops the versions in slots nothing holds any more (after loading). */
  void retain(LongPredicate held) {
    for (Long slot : bySlot.keySet().toArray(new Long[0])) {
      if (!held.test(slot)) {
        remove(slot);
      }
    }
  }

  Iterable<Version> all() {
    return bySlot.values();
  }
}
