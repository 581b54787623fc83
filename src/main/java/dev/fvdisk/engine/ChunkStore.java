package dev.fvdisk.engine;

import dev.fvdisk.engine.spi.ChunkData;
import dev.fvdisk.engine.spi.CommitBatch;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.jspecify.annotations.Nullable;

/**
 * The image's own bytes: reads and writes of virtual offsets through the chunk table to locations
 * of the {@link ChunkData} port, with chunks allocated on first write. Knows nothing of bases, the
 * journal or durability; it only remembers which new mappings have not been journalled yet, for the
 * committer to take. A run of consecutive locations is read in one call; positions in a run count
 * from location 0 ({@code location × chunkSize + offset in chunk}). A chunk zeroed whole loses its
 * slot ({@link #zero}), which goes back to the allocator once the unmapping is durable.
 *
 * <p>A chunk slot is ready before its mapping is published: a reused slot is zeroed first, so a
 * never-written sector of an allocated chunk always reads as zeros. Slots at the frontier are file
 * holes (or space cut off after a crash) and read as zeros already.
 *
 * <p><b>Thread safety.</b> Reads and writes may run from many threads. The first write into a chunk
 * locks one of {@value #MAPPING_LOCK_STRIPES} stripes while a slot is allocated. Every file read
 * and write holds the shared or the exclusive side of its chunks' I/O stripes, so a read never sees
 * half of a write that overlaps it: the page cache does not make a buffered read atomic against an
 * overlapping buffered write, and a disk's sectors must be. A mapping can change under a reader or
 * writer that looked it up (a zero took the slot away, and a later commit handed it to another
 * chunk), so each checks, holding its I/O stripe, that the mapping still stands, and starts again
 * if not; taking a slot away holds its stripe exclusively. {@link #replaceTable} must not run
 * concurrently with reads or writes; the image's lifecycle lock guarantees that.
 *
 * <p><b>Snapshots.</b> A chunk that has not changed since the newest snapshot shares its slot with
 * it (see {@link SnapshotSet}). Its first change preserves the slot for the snapshot, under the
 * chunk's mapping lock: a write first gives the chunk a new slot ({@link #copyOnWrite}) holding a
 * {@linkplain PartialVersions partial version} that reads the blocks it was not written through the
 * old slot, a whole-chunk zero unmaps the chunk without freeing the slot. A snapshot is read under
 * the mapping lock of each chunk, so the location it resolves cannot move or change meanwhile;
 * nothing writes into a shared slot, since every write into it moves the chunk first.
 */
final class ChunkStore {

  static final ByteBuffer ZEROS = ByteBuffer.allocate(1 << 20).asReadOnlyBuffer();

  /** Stripes of the mapping and I/O locks; 64, so a set of stripes fits one {@code long}. */
  private static final int MAPPING_LOCK_STRIPES = 64;

  private final ChunkData data;
  private final long chunkSizeBytes;
  private final ChunkAllocator allocator;
  private final ReentrantLock[] mappingLocks = new ReentrantLock[MAPPING_LOCK_STRIPES];

  /**
   * Reads of a slot share its stripe; writes and zero-fills hold it alone, so a read never sees a
   * half-written range. New readers wait behind a waiting writer; a stamped lock would let steady
   * reads of a stripe starve its writes. A thread holds at most one write stripe at a time, and
   * takes a read's stripes once each.
   */
  private final PlainReadWriteLock[] ioLocks = new PlainReadWriteLock[MAPPING_LOCK_STRIPES];

  private final ConcurrentLinkedQueue<Integer> unjournalledMappings = new ConcurrentLinkedQueue<>();

  /**
   * Held shared while a mapping is published or taken away together with its queue entry, and
   * exclusively while a commit takes the queue: so every change queued is also published, and the
   * commit records it as it is.
   */
  private final ReentrantReadWriteLock publishing = new ReentrantReadWriteLock();

  /** Chunks whose first change since the newest snapshot is not journalled yet: where they were. */
  private final Map<Integer, Long> unjournalledPreserves = new ConcurrentHashMap<>();

  /** Chunks whose partial version gained blocks that are not journalled yet. */
  private final ConcurrentLinkedQueue<Integer> unjournalledPartials = new ConcurrentLinkedQueue<>();

  private final AtomicLong mappedChunks;
  private final SnapshotSet snapshots;
  private final PartialVersions partials;
  private volatile ChunkTable table;

  ChunkStore(
      ChunkData data,
      long chunkSizeBytes,
      ChunkTable table,
      long mappedChunks,
      ChunkAllocator allocator,
      SnapshotSet snapshots) {
    this.data = data;
    this.chunkSizeBytes = chunkSizeBytes;
    this.table = table;
    this.mappedChunks = new AtomicLong(mappedChunks);
    this.allocator = allocator;
    this.snapshots = snapshots;
    this.partials = snapshots.partials();
    for (int i = 0; i < mappingLocks.length; i++) {
      mappingLocks[i] = new ReentrantLock();
      ioLocks[i] = new PlainReadWriteLock();
    }
  }

  ChunkTable table() {
    return table;
  }

  /** Swaps in a grown table; the caller has stopped all reads and writes. */
  void replaceTable(ChunkTable grown) {
    table = grown;
  }

  long chunkSizeBytes() {
    return chunkSizeBytes;
  }

  ChunkAllocator allocator() {
    return allocator;
  }

  long mappedChunks() {
    return mappedChunks.get();
  }

  SnapshotSet snapshots() {
    return snapshots;
  }

  /** Reads {@code dst.remaining()} bytes at a virtual offset; unallocated chunks read as zeros. */
  void read(long offsetBytes, ByteBuffer dst) throws IOException {
    int start = dst.position();
    while (!tryRead(offsetBytes, dst)) {
      dst.position(start); // a slot was taken away meanwhile: read the range again
    }
  }

  /** One attempt of {@link #read}; false when a mapping it looked up changed before it read. */
  private boolean tryRead(long offsetBytes, ByteBuffer dst) throws IOException {
    ChunkTable t = table;
    // Consecutive pieces that sit next to each other in the file are read in one call.
    int end = dst.limit();
    long runDataOffset = -1;
    long runVirtualOffset = -1;
    int runStart = dst.position();
    int runLength = 0;
    for (RangeWalk w = new RangeWalk(offsetBytes, dst.remaining(), chunkSizeBytes);
        !w.done();
        w.next()) {
      int pieceStart = dst.position() + runLength;
      int n = w.intLength();
      long physical = t.physicalChunk((int) w.unit());
      PartialVersions.Version partial = physical < 0 ? null : partials.get(physical);
      long dataOffset = physical < 0 ? -1 : physical * chunkSizeBytes + w.offsetInUnit();
      if (runLength > 0
          && (dataOffset < 0 || partial != null || dataOffset != runDataOffset + runLength)) {
        if (!readRun(t, dst, runStart, runLength, runDataOffset, runVirtualOffset, end)) {
          return false;
        }
        runLength = 0;
      }
      if (partial != null) {
        if (!readPartial(t, (int) w.unit(), partial, w.offsetInUnit(), n, dst, end)) {
          return false;
        }
      } else if (dataOffset < 0) {
        // A chunk may be larger than the zero buffer, so one piece can need several puts.
        for (int done = 0; done < n; done += ZEROS.capacity()) {
          dst.put(ZEROS.duplicate().limit(Math.min(n - done, ZEROS.capacity())));
        }
      } else {
        if (runLength == 0) {
          runStart = pieceStart;
          runDataOffset = dataOffset;
          runVirtualOffset = w.position();
        }
        runLength += n;
      }
    }
    return runLength == 0
        || readRun(t, dst, runStart, runLength, runDataOffset, runVirtualOffset, end);
  }

  /**
   * Reads one run into {@code dst} at {@code start}, leaving the position after it. The stripes of
   * the run's chunks are read-locked in ascending stripe order, each once, so readers and writers
   * can never wait on each other in a cycle.
   *
   * @return false, having read nothing, when a chunk of the run no longer has the slot it had
   */
  private boolean readRun(
      ChunkTable t,
      ByteBuffer dst,
      int start,
      int length,
      long dataOffset,
      long virtualOffset,
      int end)
      throws IOException {
    long firstSlot = dataOffset / chunkSizeBytes;
    long lastSlot = (dataOffset + length - 1) / chunkSizeBytes;
    // One bit per stripe (there are 64), so the hot path allocates nothing.
    long stripes = 0;
    for (long slot = firstSlot;
        slot <= lastSlot && slot < firstSlot + MAPPING_LOCK_STRIPES;
        slot++) {
      stripes |= 1L << (slot % MAPPING_LOCK_STRIPES);
    }
    long locked = 0;
    dst.limit(start + length).position(start);
    try {
      for (long rest = stripes; rest != 0; rest &= rest - 1) {
        int stripe = Long.numberOfTrailingZeros(rest);
        ioLocks[stripe].lockShared();
        locked |= 1L << stripe;
      }
      long firstChunk = virtualOffset / chunkSizeBytes;
      for (long slot = firstSlot; slot <= lastSlot; slot++) {
        if (t.physicalChunk((int) (firstChunk + slot - firstSlot)) != slot) {
          return false;
        }
      }
      data.read(firstSlot, dataOffset % chunkSizeBytes, dst);
      return true;
    } finally {
      for (long rest = locked; rest != 0; rest &= rest - 1) {
        ioLocks[Long.numberOfTrailingZeros(rest)].unlockShared();
      }
      dst.limit(end);
    }
  }

  /**
   * Reads {@code length} bytes of a chunk whose slot holds a partial version, holding the slot's
   * stripe shared; false, having read nothing, when the chunk no longer has that slot.
   */
  private boolean readPartial(
      ChunkTable t,
      int chunkIndex,
      PartialVersions.Version version,
      long offsetInChunk,
      int length,
      ByteBuffer dst,
      int end)
      throws IOException {
    PlainReadWriteLock io = ioLock(version.slot);
    io.lockShared();
    int start = dst.position();
    try {
      if (t.physicalChunk(chunkIndex) != version.slot) {
        return false;
      }
      dst.limit(start + length);
      readVersion(version.slot, offsetInChunk, dst);
      return true;
    } finally {
      io.unlockShared();
      dst.limit(end);
    }
  }

  /**
   * Reads {@code dst.remaining()} bytes of the chunk version in {@code slot} (-1: zeros): from the
   * slot itself, or, for the blocks a partial version does not hold yet, through its backing. The
   * caller holds the slot's stripe; backing slots are kept by snapshots, and nothing writes them
   * but a fill while the image is held exclusively.
   */
  private void readVersion(long slot, long offsetInChunk, ByteBuffer dst) throws IOException {
    PartialVersions.Version version = slot < 0 ? null : partials.get(slot);
    if (version == null) {
      if (slot < 0) {
        putZeros(dst);
      } else {
        data.read(slot, offsetInChunk, dst);
      }
      return;
    }
    int end = dst.limit();
    long blockBytes = partials.blockSizeBytes();
    try {
      for (long position = offsetInChunk; dst.position() < end; ) {
        boolean here = version.has((int) (position / blockBytes));
        long runEnd = (position / blockBytes + 1) * blockBytes;
        long wanted = position + (end - dst.position());
        while (runEnd < wanted && version.has((int) (runEnd / blockBytes)) == here) {
          runEnd += blockBytes;
        }
        int n = (int) (Math.min(runEnd, wanted) - position);
        dst.limit(dst.position() + n);
        if (here) {
          data.read(slot, position, dst);
        } else {
          readVersion(version.backing, position, dst);
        }
        position += n;
      }
    } finally {
      dst.limit(end);
    }
  }

  private static void putZeros(ByteBuffer dst) {
    while (dst.hasRemaining()) {
      dst.put(ZEROS.duplicate().limit(Math.min(ZEROS.capacity(), dst.remaining())));
    }
  }

  private PlainReadWriteLock ioLock(long physicalChunk) {
    return ioLocks[(int) (physicalChunk % MAPPING_LOCK_STRIPES)];
  }

  /** Writes {@code src.remaining()} bytes at a virtual offset, allocating chunks on first touch. */
  void write(long offsetBytes, ByteBuffer src) throws IOException {
    int end = src.limit();
    try {
      for (RangeWalk w = new RangeWalk(offsetBytes, src.remaining(), chunkSizeBytes);
          !w.done();
          w.next()) {
        int chunkIndex = (int) w.unit();
        src.limit(src.position() + w.intLength());
        while (true) {
          long physical = physicalChunkForWrite(chunkIndex);
          PlainReadWriteLock lock = ioLock(physical);
          lock.lockExclusive();
          try {
            if (table.physicalChunk(chunkIndex) == physical) {
              PartialVersions.Version partial = partials.get(physical);
              if (partial == null) {
                data.write(physical, w.offsetInUnit(), src);
              } else {
                writePartial(chunkIndex, partial, w.offsetInUnit(), src);
              }
              break;
            }
            // Its slot was taken away meanwhile: the chunk needs a new one.
          } finally {
            lock.unlockExclusive();
          }
        }
        src.limit(end);
      }
    } finally {
      src.limit(end);
    }
  }

  /**
   * Writes into a partial version, holding its slot's stripe exclusively: blocks the range covers
   * whole, and blocks the version holds, are written as they are; a block it covers in part and the
   * version does not hold yet is first read through the backing, so the block it writes is whole. A
   * block counts as held only once its data is written.
   */
  private void writePartial(
      int chunkIndex, PartialVersions.Version version, long offsetInChunk, ByteBuffer src)
      throws IOException {
    long blockBytes = partials.blockSizeBytes();
    long end = offsetInChunk + src.remaining();
    int limit = src.limit();
    boolean gained = false;
    try {
      for (long position = offsetInChunk; position < end; ) {
        long blockStart = position / blockBytes * blockBytes;
        int block = (int) (blockStart / blockBytes);
        if (position == blockStart && end - position >= blockBytes) {
          // Whole blocks, as many as the range covers, in one write.
          long wholeEnd = end / blockBytes * blockBytes;
          src.limit(src.position() + (int) (wholeEnd - position));
          data.write(version.slot, position, src);
          for (long b = block; b < wholeEnd / blockBytes; b++) {
            gained |= version.set((int) b);
          }
          position = wholeEnd;
          continue;
        }
        long pieceEnd = Math.min(end, blockStart + blockBytes);
        src.limit(src.position() + (int) (pieceEnd - position));
        if (version.has(block)) {
          data.write(version.slot, position, src);
        } else {
          ByteBuffer whole = ByteBuffer.allocate((int) blockBytes);
          readVersion(version.backing, blockStart, whole);
          whole.clear().position((int) (position - blockStart));
          whole.put(src).clear();
          data.write(version.slot, blockStart, whole);
          gained |= version.set(block);
        }
        position = pieceEnd;
      }
    } finally {
      src.limit(limit);
    }
    if (gained) {
      unjournalledPartials.add(chunkIndex);
    }
  }

  /**
   * Makes a range read as zeros: a chunk the range covers whole loses its slot, zeros are written
   * over the allocated parts of the others, and unallocated chunks read as zeros already.
   */
  void zero(long offsetBytes, long lengthBytes) throws IOException {
    ChunkTable t = table;
    for (RangeWalk w = new RangeWalk(offsetBytes, lengthBytes, chunkSizeBytes);
        !w.done();
        w.next()) {
      int chunkIndex = (int) w.unit();
      if (w.length() == chunkSizeBytes) {
        unmap(chunkIndex);
        continue;
      }
      zeroPart(t, chunkIndex, w.offsetInUnit(), w.length());
    }
  }

  /**
   * Writes zeros over part of a chunk's slot. The slot is looked up again under its stripe: when
   * the chunk lost it meanwhile it reads as zeros already, and when compaction moved it the zeros
   * go to the new slot.
   */
  private void zeroPart(ChunkTable t, int chunkIndex, long offsetInChunk, long length)
      throws IOException {
    long mapped = t.physicalChunk(chunkIndex);
    if (mapped >= 0 && snapshots.needsPreserve(chunkIndex)) {
      mapped = copyOnWrite(chunkIndex);
    }
    for (long physical = mapped; physical >= 0; ) {
      PlainReadWriteLock lock = ioLock(physical);
      lock.lockExclusive();
      try {
        long now = t.physicalChunk(chunkIndex);
        if (now == physical) {
          PartialVersions.Version partial = partials.get(physical);
          if (partial == null) {
            data.zero(physical, offsetInChunk, length);
          } else {
            writePartial(chunkIndex, partial, offsetInChunk, zeros((int) length));
          }
          return;
        }
        physical = now;
      } finally {
        lock.unlockExclusive();
      }
    }
  }

  private static ByteBuffer zeros(int length) {
    return length <= ZEROS.capacity()
        ? ZEROS.duplicate().limit(length).slice()
        : ByteBuffer.allocate(length);
  }

  /**
   * Takes a chunk's slot away, so it reads as zeros and its space can be used again once that is
   * durable. Waits for the reads and writes of the slot in progress; the ones that looked up the
   * mapping before and start after see that it changed.
   */
  private void unmap(int chunkIndex) {
    ChunkTable t = table;
    ReentrantLock lock = mappingLocks[chunkIndex % MAPPING_LOCK_STRIPES];
    lock.lock();
    try {
      long physical = t.physicalChunk(chunkIndex);
      if (physical < 0) {
        return;
      }
      PlainReadWriteLock io = ioLock(physical);
      io.lockExclusive();
      publishing.readLock().lock();
      try {
        unjournalledMappings.add(chunkIndex);
        // A slot the newest snapshot shares is kept for it rather than freed.
        boolean keep = snapshots.needsPreserve(chunkIndex);
        if (t.unmapDirty(chunkIndex, physical)) {
          if (keep) {
            preserveForNewest(chunkIndex, physical);
          } else {
            allocator.quarantine(physical);
            partials.remove(physical);
          }
          mappedChunks.decrementAndGet();
        }
      } finally {
        publishing.readLock().unlock();
        io.unlockExclusive();
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * Up to {@code max} chunks in the highest slots, highest first: {@code {chunk, slot}} pairs, for
   * compaction to move down. One pass over the table.
   */
  List<long[]> chunksInHighestSlots(int max) {
    ChunkTable t = table;
    PriorityQueue<long[]> highest = new PriorityQueue<>(Comparator.comparingLong(c -> c[1]));
    for (int chunk = 0; chunk < t.chunkCount(); chunk++) {
      long slot = t.physicalChunk(chunk);
      if (slot >= 0
          && (highest.size() < max || slot > highest.peek()[1])
          && partials.get(slot) == null) {
        highest.add(new long[] {chunk, slot});
        if (highest.size() > max) {
          highest.poll();
        }
      }
    }
    List<long[]> descending = new ArrayList<>(highest);
    descending.sort(Comparator.comparingLong((long[] c) -> c[1]).reversed());
    return descending;
  }

  /**
   * Moves a chunk whose mapping is durable from slot {@code from} into the unused slot {@code to}:
   * copies the slot's bytes through {@code buffer} holding the old slot's stripe exclusively, then
   * maps the chunk to the new slot and quarantines the old one until the move is durable. Reads and
   * writes that looked up the old slot find the mapping changed and start again, so none is lost or
   * torn. A chunk whose mapping is not durable yet is left where it is.
   *
   * @return false, having changed nothing, when the chunk is not durably mapped to {@code from}
   */
  boolean relocate(int chunkIndex, long from, long to, ByteBuffer buffer) throws IOException {
    ChunkTable t = table;
    ReentrantLock lock = mappingLocks[chunkIndex % MAPPING_LOCK_STRIPES];
    lock.lock();
    try {
      // The mapping lock keeps the entry from changing but for a commit marking it clean.
      int raw = t.raw(chunkIndex);
      // A partial version stays where it is: its blocks are not all in its slot.
      if (ChunkTable.isDirtyRaw(raw)
          || ChunkTable.location(raw) != from
          || partials.get(from) != null) {
        return false;
      }
      PlainReadWriteLock io = ioLock(from);
      io.lockExclusive();
      try {
        for (long done = 0; done < chunkSizeBytes; done += buffer.capacity()) {
          buffer.clear().limit((int) Math.min(buffer.capacity(), chunkSizeBytes - done));
          data.read(from, done, buffer);
          data.write(to, done, buffer.flip());
        }
        publishing.readLock().lock();
        try {
          unjournalledMappings.add(chunkIndex);
          if (!t.relocateDirty(chunkIndex, from, to)) {
            throw new IllegalStateException("chunk " + chunkIndex + " changed during its move");
          }
          allocator.quarantine(from);
        } finally {
          publishing.readLock().unlock();
        }
        return true;
      } finally {
        io.unlockExclusive();
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * Adds the range's extents to {@code out}: DATA where a chunk has a slot, ZERO where it has none.
   *
   * @return false when {@code out} is full and the walk stopped early
   */
  boolean extents(long offsetBytes, long lengthBytes, ExtentList out) {
    ChunkTable t = table;
    for (RangeWalk w = new RangeWalk(offsetBytes, lengthBytes, chunkSizeBytes);
        !w.done();
        w.next()) {
      boolean mapped = t.physicalChunk((int) w.unit()) >= 0;
      w.extendWhile(chunk -> (t.physicalChunk((int) chunk) >= 0) == mapped, Long.MAX_VALUE);
      if (!out.add(w.position(), w.length(), mapped ? Extent.State.DATA : Extent.State.ZERO)) {
        return false;
      }
    }
    return true;
  }

  /**
   * Adds the range's extents in snapshot {@code snapshotId} to {@code out}: DATA where the chunk it
   * reads has a slot, ZERO where it has none. Each chunk is looked up under its mapping lock, as a
   * snapshot read does, so a first change racing the walk is seen before or after, never halfway.
   *
   * @return false when {@code out} is full and the walk stopped early
   */
  boolean snapshotExtents(int snapshotId, long offsetBytes, long lengthBytes, ExtentList out) {
    for (RangeWalk w = new RangeWalk(offsetBytes, lengthBytes, chunkSizeBytes);
        !w.done();
        w.next()) {
      int chunkIndex = (int) w.unit();
      ReentrantLock lock = mappingLocks[chunkIndex % MAPPING_LOCK_STRIPES];
      long location;
      lock.lock();
      try {
        location = snapshots.resolve(snapshotId, chunkIndex, table.physicalChunk(chunkIndex));
      } finally {
        lock.unlock();
      }
      if (!out.add(
          w.position(), w.length(), location >= 0 ? Extent.State.DATA : Extent.State.ZERO)) {
        return false;
      }
    }
    return true;
  }

  /** Whether the chunk holding a virtual offset has a slot (durable or not). */
  boolean isMapped(long offsetBytes) {
    return table.physicalChunk((int) (offsetBytes / chunkSizeBytes)) >= 0;
  }

  /**
   * At most how many bytes of new file space a write of the range would take: a chunk for each
   * unallocated chunk it touches and for each chunk it copies for a snapshot, less the slots the
   * allocator reuses first.
   */
  long bytesToAllocate(long offsetBytes, long lengthBytes) {
    if (lengthBytes == 0) {
      return 0;
    }
    ChunkTable t = table;
    long unallocated = 0;
    for (RangeWalk w = new RangeWalk(offsetBytes, lengthBytes, chunkSizeBytes);
        !w.done();
        w.next()) {
      if (t.physicalChunk((int) w.unit()) < 0 || snapshots.needsPreserve((int) w.unit())) {
        unallocated++;
      }
    }
    long reusable = allocator.leakedCount() + allocator.freeCount();
    return Math.max(0, unallocated - reusable) * chunkSizeBytes;
  }

  /**
   * What a commit records: the chunks whose mappings changed and are not journalled yet, each as it
   * is now, and the slots taken away from them, free once this is durable. A chunk whose slot holds
   * a partial version is recorded with it ({@code versions} and the blocks it held when taken,
   * index for index; null for a whole chunk), also when only its blocks changed.
   */
  record Unjournalled(
      ChunkTable.Taken changes,
      long[] previousLocations,
      PartialVersions.@Nullable Version[] versions,
      long @Nullable [][] versionBits,
      long[] unmappedSlots) {}

  /** Takes the changes not journalled yet (see {@link Unjournalled}). */
  Unjournalled takeUnjournalled() {
    ChunkTable t = table;
    publishing.writeLock().lock();
    try {
      Set<Integer> chunks = new LinkedHashSet<>();
      for (Integer chunkIndex; (chunkIndex = unjournalledMappings.poll()) != null; ) {
        chunks.add(chunkIndex);
      }
      // A block's bit is set before its chunk is queued, so every bit set before this poll is
      // taken with it.
      for (Integer chunkIndex; (chunkIndex = unjournalledPartials.poll()) != null; ) {
        chunks.add(chunkIndex);
      }
      int[] indexes = new int[chunks.size()];
      int[] raws = new int[chunks.size()];
      long[] previous = new long[chunks.size()];
      PartialVersions.Version[] versions = new PartialVersions.Version[chunks.size()];
      long[][] bits = new long[chunks.size()][];
      int n = 0;
      for (int chunkIndex : chunks) {
        int raw = t.raw(chunkIndex);
        long location = ChunkTable.location(raw);
        PartialVersions.Version version = location < 0 ? null : partials.get(location);
        boolean dirty = ChunkTable.isDirtyRaw(raw);
        if (dirty || version != null) { // else a commit has recorded it already
          indexes[n] = chunkIndex;
          Long preserved = dirty ? unjournalledPreserves.remove(chunkIndex) : null;
          previous[n] = preserved == null ? CommitBatch.NOT_PRESERVED : preserved;
          versions[n] = version;
          bits[n] = version == null ? null : version.presentBits();
          raws[n++] = raw;
        }
      }
      return new Unjournalled(
          new ChunkTable.Taken(Arrays.copyOf(indexes, n), Arrays.copyOf(raws, n)),
          Arrays.copyOf(previous, n),
          Arrays.copyOf(versions, n),
          Arrays.copyOf(bits, n),
          allocator.takeQuarantined());
    } finally {
      publishing.writeLock().unlock();
    }
  }

  /**
   * The chunk's slot, allocating (and, for a reused slot, zeroing) one on first write, or copying
   * the chunk to a new one when the newest snapshot shares it.
   */
  private long physicalChunkForWrite(int chunkIndex) throws IOException {
    ChunkTable t = table;
    long physical = t.physicalChunk(chunkIndex);
    if (physical >= 0) {
      return snapshots.needsPreserve(chunkIndex) ? copyOnWrite(chunkIndex) : physical;
    }
    ReentrantLock lock = mappingLocks[chunkIndex % MAPPING_LOCK_STRIPES];
    lock.lock();
    try {
      physical = t.physicalChunk(chunkIndex);
      if (physical >= 0) {
        return physical;
      }
      ChunkAllocator.Allocation allocation = allocator.allocate();
      if (allocation.needsZeroFill()) {
        try {
          data.zero(allocation.physicalChunk(), 0, chunkSizeBytes);
        } catch (IOException e) {
          allocator.giveBack(allocation.physicalChunk());
          throw e;
        }
      }
      // Queued with its publication, under the shared side of the publishing lock: a writer that
      // sees the mapping and then flushes must find it in the queue, or its flush could return
      // before the mapping is durable.
      publishing.readLock().lock();
      try {
        unjournalledMappings.add(chunkIndex);
        if (snapshots.needsPreserve(chunkIndex)) {
          preserveForNewest(chunkIndex, -1); // the snapshot reads it as zeros
        }
        t.mapDirty(chunkIndex, allocation.physicalChunk());
      } finally {
        publishing.readLock().unlock();
      }
      mappedChunks.incrementAndGet();
      return allocation.physicalChunk();
    } finally {
      lock.unlock();
    }
  }

  /**
   * Gives a chunk the newest snapshot shares a slot of its own and keeps the old slot for the
   * snapshot. Nothing is copied: the new slot is a {@linkplain PartialVersions partial version}
   * that reads every block through the old one until a write gives it its own. Returns the chunk's
   * slot now (a caller that lost a race finds it moved or copied already).
   */
  private long copyOnWrite(int chunkIndex) throws IOException {
    ChunkTable t = table;
    ReentrantLock lock = mappingLocks[chunkIndex % MAPPING_LOCK_STRIPES];
    lock.lock();
    try {
      // Looked up again under the lock: the chunk may have been copied, zeroed or moved by
      // compaction meanwhile; a moved chunk is still shared and is based on where it is now.
      long shared = t.physicalChunk(chunkIndex);
      if (shared < 0) {
        return physicalChunkForWrite(chunkIndex);
      }
      if (!snapshots.needsPreserve(chunkIndex)) {
        return shared;
      }
      // A reused slot is not zeroed: none of its blocks is read before a write gives it data.
      long slot = allocator.allocate().physicalChunk();
      // The shared slot's stripe is held alone until the new mapping is published: a writer that
      // looked the chunk up before waits, then finds it moved, so nothing lands in the shared slot.
      PlainReadWriteLock io = ioLock(shared);
      io.lockExclusive();
      try {
        publishing.readLock().lock();
        try {
          unjournalledMappings.add(chunkIndex);
          preserveForNewest(chunkIndex, shared);
          partials.create(slot, shared); // before the mapping, so a reader finds it with it
          if (!t.copyOnWriteDirty(chunkIndex, shared, slot)) {
            throw new IllegalStateException("chunk " + chunkIndex + " changed under its lock");
          }
        } finally {
          publishing.readLock().unlock();
        }
      } finally {
        io.unlockExclusive();
      }
      return slot;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Before slot {@code freed} goes back to the allocator: when a partial version reads through it,
   * copies the blocks that version does not hold into it, so it holds the whole chunk and no longer
   * needs the slot. Runs while the image is held exclusively; the caller makes the filled data
   * durable, and records that the version is whole, before the slot can be reused.
   *
   * @return whether a version was filled
   */
  boolean fillDependent(long freed) throws IOException {
    PartialVersions.Version dependent = partials.dependentOf(freed);
    if (dependent == null) {
      return false;
    }
    int blockBytes = partials.blockSizeBytes();
    ByteBuffer block = ByteBuffer.allocate(blockBytes);
    for (int b = 0; b < partials.blocksPerChunk(); b++) {
      if (!dependent.has(b)) {
        readVersion(freed, (long) b * blockBytes, block.clear());
        data.write(dependent.slot, (long) b * blockBytes, block.flip());
      }
    }
    partials.remove(dependent.slot);
    return true;
  }

  /**
   * The blocks of a chunk in which snapshot {@code toId} (0: the live image) may read differently
   * from snapshot {@code from}: those written into the partial versions between them, when the
   * newer version is a chain of partial versions that reaches the older one; null when that is not
   * known (a whole-chunk version between them, or a chunk past {@code from}'s size), and the whole
   * chunk counts.
   */
  long @Nullable [] changedBlocks(SnapshotSet.Snapshot from, int toId, int chunkIndex) {
    if (partials.isEmpty() || (chunkIndex + 1L) * chunkSizeBytes > from.sizeBytes()) {
      return null;
    }
    ReentrantLock lock = mappingLocks[chunkIndex % MAPPING_LOCK_STRIPES];
    lock.lock();
    try {
      long live = table.physicalChunk(chunkIndex);
      long older = snapshots.resolve(from.id(), chunkIndex, live);
      long newer = toId == 0 ? live : snapshots.resolve(toId, chunkIndex, live);
      long[] blocks = new long[PartialVersions.BITMAP_WORDS];
      for (long slot = newer; slot != older; ) {
        PartialVersions.Version version = slot < 0 ? null : partials.get(slot);
        if (version == null) {
          return null;
        }
        long[] present = version.presentBits();
        for (int i = 0; i < blocks.length; i++) {
          blocks[i] |= present[i];
        }
        slot = version.backing;
      }
      return blocks;
    } finally {
      lock.unlock();
    }
  }

  /** Keeps {@code location} for the newest snapshot; the caller holds the chunk's mapping lock. */
  private void preserveForNewest(int chunkIndex, long location) {
    snapshots.preserve(snapshots.newest().id(), chunkIndex, location);
    unjournalledPreserves.put(chunkIndex, location);
  }

  /**
   * Writes a snapshot's copy of the clone's bitmap into consecutive fresh slots and makes it
   * durable, before the record of the snapshot that names them.
   */
  SnapshotSet.BaseBlocks writeBaseBlocks(ByteBuffer bitmapBytes) throws IOException {
    int slots = (int) Header.ceilDiv(bitmapBytes.remaining(), chunkSizeBytes);
    int crc = Bitmap.crc(bitmapBytes);
    long first = allocator.reserveRun(slots);
    try {
      ByteBuffer src = bitmapBytes.duplicate();
      for (int i = 0; i < slots; i++) {
        src.limit((int) Math.min(src.capacity(), (i + 1L) * chunkSizeBytes));
        data.write(first + i, 0, src);
      }
      data.seal();
    } catch (IOException | RuntimeException e) {
      for (int i = 0; i < slots; i++) {
        allocator.giveBack(first + i);
      }
      throw e;
    }
    return new SnapshotSet.BaseBlocks(first, slots, crc);
  }

  /**
   * Reads {@code dst.remaining()} bytes of snapshot {@code snapshotId} at a virtual offset inside
   * it. Each chunk is read under its mapping lock, so the slot it resolves to stays where it is and
   * as it is.
   */
  void readSnapshot(int snapshotId, long offsetBytes, ByteBuffer dst) throws IOException {
    ChunkTable t = table;
    int end = dst.limit();
    try {
      for (RangeWalk w = new RangeWalk(offsetBytes, dst.remaining(), chunkSizeBytes);
          !w.done();
          w.next()) {
        int chunkIndex = (int) w.unit();
        dst.limit(dst.position() + w.intLength());
        ReentrantLock lock = mappingLocks[chunkIndex % MAPPING_LOCK_STRIPES];
        lock.lock();
        try {
          long location = snapshots.resolve(snapshotId, chunkIndex, t.physicalChunk(chunkIndex));
          if (location < 0) {
            while (dst.hasRemaining()) {
              dst.put(ZEROS.duplicate().limit(Math.min(ZEROS.capacity(), dst.remaining())));
            }
          } else {
            PlainReadWriteLock io = ioLock(location);
            io.lockShared();
            try {
              readVersion(location, w.offsetInUnit(), dst);
            } finally {
              io.unlockShared();
            }
          }
        } finally {
          lock.unlock();
        }
      }
    } finally {
      dst.limit(end);
    }
  }
}
