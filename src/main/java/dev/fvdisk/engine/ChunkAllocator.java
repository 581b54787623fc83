package dev.fvdisk.engine;

import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.Collection;
import java.util.List;
import java.util.TreeSet;

/**
 * Hands out physical chunk slots and grows the file.
 *
 * <p>Slots come first from chunks found leaked at open (data written, mapping never durable), then
 * from free chunks (taken away from a zeroed chunk, or turned free by a repair), and only then from
 * the frontier, the first never-used slot. A slot taken away from a chunk is <em>quarantined</em>
 * until the unmapping is durable: before that, a crash would bring the old mapping back, and it
 * must find its own data there, not another chunk's. Frontier slots are handed out in increasing
 * order, so chunks land in the file in the order they were first written. The file grows by the
 * growth unit whenever the frontier reaches its end.
 *
 * <p>A reused slot still holds whatever was written there before the crash, so it is handed out
 * with {@link Allocation#needsZeroFill()} set: the caller must zero it before the mapping becomes
 * visible, or never-written sectors of the chunk would show stale data. Frontier slots are holes or
 * zero-extended file space and read as zeros already.
 *
 * <p><b>Thread safety.</b> All methods are synchronized; allocation is short except when the file
 * grows, which is one {@code ftruncate}.
 */
final class ChunkAllocator {

  /** A slot handed out, and whether it must be zeroed before use. */
  record Allocation(long physicalChunk, boolean needsZeroFill) {}

  private final Storage storage;
  private final long dataOffsetBytes;
  private final long chunkSizeBytes;
  private final long growthUnitBytes;
  // Sorted, so the lowest slot goes first: the file fills from its start and its end can be cut.
  private final TreeSet<Long> leaked;
  private final TreeSet<Long> free = new TreeSet<>();
  private final ArrayDeque<Long> quarantined = new ArrayDeque<>();
  private long frontier;
  private long storageBytes;

  ChunkAllocator(
      Storage storage,
      long dataOffsetBytes,
      long chunkSizeBytes,
      long growthUnitBytes,
      long frontier,
      Collection<Long> leaked,
      long storageBytes) {
    this.storage = storage;
    this.dataOffsetBytes = dataOffsetBytes;
    this.chunkSizeBytes = chunkSizeBytes;
    this.growthUnitBytes = growthUnitBytes;
    this.frontier = frontier;
    this.leaked = new TreeSet<>(leaked);
    this.storageBytes = storageBytes;
  }

  synchronized Allocation allocate() throws IOException {
    Long reused = leaked.pollFirst();
    if (reused == null) {
      reused = free.pollFirst();
    }
    if (reused != null) {
      return new Allocation(reused, true);
    }
    if (frontier >= ChunkTable.MAX_PHYSICAL_CHUNKS) {
      throw new IOException(
          storage.description() + ": all " + ChunkTable.MAX_PHYSICAL_CHUNKS + " chunk slots used");
    }
    long endOfSlot = dataOffsetBytes + (frontier + 1) * chunkSizeBytes;
    if (endOfSlot > storageBytes) {
      long grown = dataOffsetBytes + frontier * chunkSizeBytes + growthUnitBytes;
      storage.resize(grown);
      storageBytes = grown;
    }
    return new Allocation(frontier++, false);
  }

  /**
   * Sets aside {@code slots} consecutive slots for the snapshot directory, the lowest run of free
   * ones or else at the frontier (growing the file as needed); returns the first. The caller
   * overwrites them, so they need no zero-fill.
   */
  synchronized long reserveRun(int slots) throws IOException {
    long runStart = -1;
    long runLength = 0;
    for (long slot : free) {
      if (runLength > 0 && slot == runStart + runLength) {
        runLength++;
      } else {
        runStart = slot;
        runLength = 1;
      }
      if (runLength == slots) {
        free.subSet(runStart, runStart + slots).clear();
        return runStart;
      }
    }
    if (frontier + slots > ChunkTable.MAX_PHYSICAL_CHUNKS) {
      throw new IOException(
          storage.description() + ": all " + ChunkTable.MAX_PHYSICAL_CHUNKS + " chunk slots used");
    }
    long end = dataOffsetBytes + (frontier + slots) * chunkSizeBytes;
    if (end > storageBytes) {
      long grown = Math.max(end, dataOffsetBytes + frontier * chunkSizeBytes + growthUnitBytes);
      storage.resize(grown);
      storageBytes = grown;
    }
    long first = frontier;
    frontier += slots;
    return first;
  }

  /** Takes back a slot that was handed out but never mapped (its zero-fill failed). */
  synchronized void giveBack(long physicalChunk) {
    free.add(physicalChunk);
  }

  /**
   * Takes the lowest leaked or free slot below {@code limit}, for compaction to move a chunk into;
   * -1 when there is none. The caller overwrites it whole, so it needs no zero-fill.
   */
  synchronized long takeReusableBelow(long limit) {
    TreeSet<Long> from = free;
    if (from.isEmpty() || (!leaked.isEmpty() && leaked.first() < free.first())) {
      from = leaked;
    }
    if (from.isEmpty() || from.first() >= limit) {
      return -1;
    }
    return from.pollFirst();
  }

  /**
   * Gives the end of the file back to the file system when its last slots are free or leaked:
   * lowers the frontier past them and cuts the file there (growth room after the frontier goes
   * too). No mapping, durable or not, points at such a slot, and the lock keeps them from being
   * handed out meanwhile.
   *
   * @return the bytes the file shrank by
   */
  synchronized long cutFreeTail() throws IOException {
    long newFrontier = frontier;
    while (newFrontier > 0
        && (free.contains(newFrontier - 1) || leaked.contains(newFrontier - 1))) {
      newFrontier--;
    }
    if (newFrontier == frontier) {
      return 0;
    }
    long bytes = dataOffsetBytes + newFrontier * chunkSizeBytes;
    storage.resize(bytes);
    free.tailSet(newFrontier).clear();
    leaked.tailSet(newFrontier).clear();
    frontier = newFrontier;
    long cut = storageBytes - bytes;
    storageBytes = bytes;
    return cut;
  }

  /** Holds back a slot taken away from a chunk until that is durable ({@link #release}). */
  synchronized void quarantine(long physicalChunk) {
    quarantined.add(physicalChunk);
  }

  /** The quarantined slots so far, for a commit that makes their unmapping durable. */
  synchronized long[] takeQuarantined() {
    long[] slots = quarantined.stream().mapToLong(Long::longValue).toArray();
    quarantined.clear();
    return slots;
  }

  /** Frees slots whose unmapping is durable now. */
  synchronized void release(long[] physicalChunks) {
    for (long p : physicalChunks) {
      free.add(p);
    }
  }

  /** Slots not in use that are not free yet: quarantined, or taken by a commit in progress. */
  synchronized List<Long> quarantinedChunks() {
    return List.copyOf(quarantined);
  }

  synchronized List<Long> freeChunks() {
    return List.copyOf(free);
  }

  /** Turns every leaked chunk into a free one; returns how many. */
  synchronized int reclaimLeaked() {
    int n = leaked.size();
    free.addAll(leaked);
    leaked.clear();
    return n;
  }

  synchronized List<Long> leakedChunks() {
    return List.copyOf(leaked);
  }

  synchronized long leakedCount() {
    return leaked.size();
  }

  synchronized long freeCount() {
    return free.size();
  }

  synchronized long frontier() {
    return frontier;
  }

  /** Records the storage size after the caller cut or grew the file itself. */
  synchronized void resetStorageBytes(long sizeBytes) {
    storageBytes = sizeBytes;
  }

  synchronized long storageBytes() {
    return storageBytes;
  }

  /** Bytes the file has grown by that no chunk has been given yet. */
  synchronized long reservedBytes() {
    return Math.max(0, storageBytes - dataOffsetBytes - frontier * chunkSizeBytes);
  }
}
