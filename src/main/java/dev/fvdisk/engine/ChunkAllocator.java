package dev.fvdisk.engine;

import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.Collection;
import java.util.List;

/**
 * Hands out physical chunk slots and grows the file.
 *
 * <p>Slots come first from chunks found leaked at open (data written, mapping never durable), then
 * from chunks a repair turned free, and only then from the frontier, the first never-used slot.
 * Frontier slots are handed out in increasing order, so chunks land in the file in the order they
 * were first written. The file grows by the growth unit whenever the frontier reaches its end.
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
  private final ArrayDeque<Long> leaked;
  private final ArrayDeque<Long> free = new ArrayDeque<>();
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
    this.leaked = new ArrayDeque<>(leaked);
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

  /** Takes back a slot that was handed out but never mapped (its zero-fill failed). */
  synchronized void giveBack(long physicalChunk) {
    free.addFirst(physicalChunk);
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
