package dev.fvdisk.engine;

import dev.fvdisk.engine.CorruptImageException.Kind;
import dev.fvdisk.engine.io.Storage;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * An open fvdisk image: a virtual disk of {@link #sizeBytes()} bytes that can be read and written
 * at any byte offset.
 *
 * <p><b>Durability.</b> {@link #write} returns once the bytes are visible to reads; they are not
 * yet durable. {@link #flush()} makes every write that returned before it was called durable: the
 * data is forced first, then the journal records for chunks those writes allocated are written and
 * forced. After a crash, a flushed write reads back exactly; any other write leaves each 512-byte
 * sector with its old or its new content (a chunk whose mapping never became durable reads as its
 * old content, zeros, and is reported as leaked).
 *
 * <p><b>Thread safety.</b> Every method may be called from many threads at once. Reads and writes
 * of different chunks run in parallel; the first write into a chunk briefly locks that chunk's
 * stripe while a slot is allocated. Concurrent {@link #flush()} calls share their forces. Writes to
 * overlapping ranges that run at the same time have no defined order, as on a real disk. {@link
 * #grow} and {@link #close} wait for running operations and block new ones.
 */
public final class Image implements Closeable {

  private static final int MAPPING_LOCK_STRIPES = 64;
  private static final ByteBuffer ZEROS = ByteBuffer.allocate(1 << 20).asReadOnlyBuffer();

  private final Storage storage;
  private final boolean writable;
  private final ReentrantReadWriteLock lifecycle = new ReentrantReadWriteLock();
  private final ReentrantLock[] mappingLocks = new ReentrantLock[MAPPING_LOCK_STRIPES];
  private final ConcurrentLinkedQueue<Integer> unjournalledMappings = new ConcurrentLinkedQueue<>();
  private final AtomicLong mappedChunks;

  /** Changes of content or metadata since open; part of {@link #changeTag()}. */
  private final AtomicLong changeCount = new AtomicLong();

  private final ChunkAllocator allocator;
  private final Journal journal;
  private final GroupCommit groupCommit;
  private final RecoveredMetadata recovered;
  private volatile Header header;
  private volatile ChunkTable table;
  private volatile boolean closed;

  /** The header generation once open; every writable open writes a header, so it only grows. */
  private long openGeneration;

  private Image(Storage storage, boolean writable, RecoveredMetadata recovered, Header header)
      throws IOException {
    this.storage = storage;
    this.writable = writable;
    this.recovered = recovered;
    this.header = header;
    this.table = recovered.table();
    this.mappedChunks = new AtomicLong(recovered.mappedChunks());
    this.allocator =
        new ChunkAllocator(
            storage,
            header.dataOffsetBytes(),
            header.chunkSizeBytes(),
            header.growthUnitBytes(),
            recovered.frontier(),
            recovered.leakedChunks(),
            storage.sizeBytes());
    this.journal = new Journal(storage, header);
    this.groupCommit = new GroupCommit(storage.description(), this::commitRound);
    for (int i = 0; i < mappingLocks.length; i++) {
      mappingLocks[i] = new ReentrantLock();
    }
  }

  /**
   * Lays out a new image in empty storage and opens it for writing.
   *
   * @throws IOException if the storage is not empty or cannot be written
   */
  public static Image create(Storage storage, ImageOptions options) throws IOException {
    if (storage.sizeBytes() != 0) {
      throw new IOException(
          storage.description() + ": cannot create an image in storage that is not empty");
    }
    long maxChunks = Header.ceilDiv(options.maxSizeBytes(), options.chunkSizeBytes());
    long tableRegionBytes = ChunkTable.regionBytes(maxChunks);
    long table0 = Header.REGION_BYTES;
    long table1 = table0 + tableRegionBytes;
    long journalOffset = table1 + tableRegionBytes;
    long journalBytes = options.journalSizeBytes();
    // The data area starts on a 1 MiB boundary so chunk slots line up with large device blocks.
    long dataOffset = Header.ceilDiv(journalOffset + journalBytes, 1 << 20) << 20;
    long chunkCount = Header.ceilDiv(options.sizeBytes(), options.chunkSizeBytes());
    // A new table is all zeros ("unallocated"), which the file's hole already holds.
    int tableCrc =
        ChunkTable.crc(
            new ChunkTable(Math.toIntExact(chunkCount)).encode(ChunkTable.ChunkSet.NONE));
    Header header =
        new Header(
            1,
            UUID.randomUUID(),
            options.sizeBytes(),
            options.maxSizeBytes(),
            options.chunkSizeBytes(),
            true,
            false,
            0,
            table0,
            table1,
            tableRegionBytes,
            tableCrc,
            journalOffset,
            journalBytes,
            dataOffset,
            options.growthUnitBytes(),
            1,
            System.currentTimeMillis());
    storage.resize(dataOffset);
    header.writeTo(storage);
    return open(storage, true);
  }

  /**
   * Opens an image, replaying its journal first when it was not shut down cleanly (for read-only
   * opens too, in memory only).
   *
   * @throws CorruptImageException when the file is not an fvdisk image, has an unsupported version,
   *     or its metadata is damaged; the message names the file and the offset
   */
  public static Image open(Storage storage, boolean writable) throws IOException {
    RecoveredMetadata recovered = RecoveredMetadata.recover(storage);
    if (!recovered.problems().isEmpty()) {
      throw new CorruptImageException(
          Kind.CORRUPT,
          String.join(
              "; ", recovered.problems().subList(0, Math.min(5, recovered.problems().size()))));
    }
    Header header = recovered.header();
    Image image = new Image(storage, writable, recovered, header);
    if (writable) {
      image.markOpenForWriting();
    }
    image.openGeneration = image.header.generation();
    return image;
  }

  /**
   * Clears the clean-shutdown flag before the first write. After a crash, also writes the recovered
   * table and starts a new journal epoch, and cuts the file back to the frontier: slots past it may
   * hold data of writes whose mappings were lost, and giving them out again would need zeroing,
   * while cutting them off costs nothing.
   */
  private void markOpenForWriting() throws IOException {
    if (header.cleanShutdown()) {
      Header next = header.withCleanShutdown(false);
      next.writeTo(storage);
      header = next;
    } else {
      storage.resize(header.dataOffsetBytes() + allocator.frontier() * header.chunkSizeBytes());
      allocator.resetStorageBytes(storage.sizeBytes());
      writeTableCopy(false);
    }
    journal.restart(header.stableEpoch());
  }

  public UUID id() {
    return header.imageId();
  }

  public long sizeBytes() {
    return header.sizeBytes();
  }

  public long maxSizeBytes() {
    return header.maxSizeBytes();
  }

  public int chunkSizeBytes() {
    return header.chunkSizeBytes();
  }

  public boolean isWritable() {
    return writable;
  }

  /** Whether data writes are refused; stored in the header, so it survives a restart. */
  public boolean isReadOnly() {
    return header.readOnly();
  }

  /** When the image was created, in milliseconds since the epoch. */
  public long createdAtMillis() {
    return header.createdAtMillis();
  }

  /**
   * A token that changes whenever the image's content or metadata changes (writes, zeroing,
   * growing, the read-only flag, a repair), and never repeats for this image, also across a
   * restart: it joins the image UUID, the header generation at open (every writable open writes a
   * header, so it grows from one open to the next) and a count of changes since open. A change
   * counts once it has finished, so a token taken before or during a change differs from the one
   * after it.
   */
  public String changeTag() {
    return header.imageId() + "-" + openGeneration + "-" + changeCount.get();
  }

  /**
   * Sets or clears the read-only flag. Durable on return: the header is rewritten and forced.
   *
   * @throws IllegalStateException if the image was opened read-only
   * @throws ImageFailedException if an earlier flush failed
   */
  public void setReadOnly(boolean readOnly) throws IOException {
    lifecycle.writeLock().lock();
    try {
      ensureOpen();
      ensureOpenForWriting();
      if (header.readOnly() == readOnly) {
        return;
      }
      Header next = header.withReadOnly(readOnly);
      try {
        next.writeTo(storage);
      } catch (IOException | RuntimeException e) {
        groupCommit.fail(e);
        throw e;
      }
      header = next;
      changeCount.incrementAndGet();
    } finally {
      lifecycle.writeLock().unlock();
    }
  }

  /** The storage description, usually the file path. */
  public String description() {
    return storage.description();
  }

  /**
   * Reads {@code dst.remaining()} bytes of the virtual disk starting at {@code offsetBytes}.
   * Never-written bytes read as zeros.
   *
   * @throws IllegalArgumentException if the range is not inside the virtual disk
   */
  public void read(long offsetBytes, ByteBuffer dst) throws IOException {
    lifecycle.readLock().lock();
    try {
      ensureOpen();
      checkRange(offsetBytes, dst.remaining());
      ChunkTable t = table;
      long chunkSize = header.chunkSizeBytes();
      long position = offsetBytes;
      // Consecutive pieces that sit next to each other in the file are read in one call.
      int end = dst.limit();
      long runFileOffset = -1;
      int runStart = dst.position();
      int runLength = 0;
      while (dst.position() + runLength < end) {
        int pieceStart = dst.position() + runLength;
        int chunkIndex = (int) (position / chunkSize);
        long inChunk = position % chunkSize;
        int n = (int) Math.min(end - pieceStart, chunkSize - inChunk);
        long physical = t.physicalChunk(chunkIndex);
        long fileOffset =
            physical < 0 ? -1 : header.dataOffsetBytes() + physical * chunkSize + inChunk;
        if (runLength > 0 && (fileOffset < 0 || fileOffset != runFileOffset + runLength)) {
          readRun(dst, runStart, runLength, runFileOffset, end);
          runLength = 0;
        }
        if (fileOffset < 0) {
          dst.put(ZEROS.duplicate().limit(n));
        } else {
          if (runLength == 0) {
            runStart = pieceStart;
            runFileOffset = fileOffset;
          }
          runLength += n;
        }
        position += n;
      }
      if (runLength > 0) {
        readRun(dst, runStart, runLength, runFileOffset, end);
      }
    } finally {
      lifecycle.readLock().unlock();
    }
  }

  /** Reads one run into {@code dst} at {@code start}, leaving the position after it. */
  private void readRun(ByteBuffer dst, int start, int length, long fileOffset, int end)
      throws IOException {
    dst.limit(start + length).position(start);
    try {
      storage.read(dst, fileOffset);
    } finally {
      dst.limit(end);
    }
  }

  /**
   * Writes {@code src.remaining()} bytes at {@code offsetBytes}. On return the bytes are visible to
   * reads but not durable; call {@link #flush()} for that.
   *
   * @throws IllegalArgumentException if the range is not inside the virtual disk
   * @throws IllegalStateException if the image was opened read-only
   * @throws ImageFailedException if an earlier flush failed
   */
  public void write(long offsetBytes, ByteBuffer src) throws IOException {
    lifecycle.readLock().lock();
    try {
      ensureOpen();
      ensureWritable();
      checkRange(offsetBytes, src.remaining());
      long chunkSize = header.chunkSizeBytes();
      long position = offsetBytes;
      int end = src.limit();
      try {
        while (src.position() < end) {
          int chunkIndex = (int) (position / chunkSize);
          long inChunk = position % chunkSize;
          int n = (int) Math.min(end - src.position(), chunkSize - inChunk);
          long physical = physicalChunkForWrite(chunkIndex);
          src.limit(src.position() + n);
          storage.write(src, header.dataOffsetBytes() + physical * chunkSize + inChunk);
          src.limit(end);
          position += n;
        }
      } finally {
        src.limit(end);
        changeCount.incrementAndGet();
      }
    } finally {
      lifecycle.readLock().unlock();
    }
  }

  /** The chunk's slot, allocating (and, for a reused slot, zeroing) one on first write. */
  private long physicalChunkForWrite(int chunkIndex) throws IOException {
    ChunkTable t = table;
    long physical = t.physicalChunk(chunkIndex);
    if (physical >= 0) {
      return physical;
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
          writeZeros(slotOffset(allocation.physicalChunk()), header.chunkSizeBytes());
        } catch (IOException e) {
          allocator.giveBack(allocation.physicalChunk());
          throw e;
        }
      }
      // Queued before it is published: a writer that sees the mapping and then flushes must find
      // it in the queue, or its flush could return before the mapping is durable.
      unjournalledMappings.add(chunkIndex);
      t.mapDirty(chunkIndex, allocation.physicalChunk());
      mappedChunks.incrementAndGet();
      return allocation.physicalChunk();
    } finally {
      lock.unlock();
    }
  }

  private long slotOffset(long physicalChunk) {
    return header.dataOffsetBytes() + physicalChunk * header.chunkSizeBytes();
  }

  private void writeZeros(long fileOffset, long length) throws IOException {
    for (long done = 0; done < length; ) {
      int n = (int) Math.min(length - done, ZEROS.capacity());
      storage.write(ZEROS.duplicate().limit(n), fileOffset + done);
      done += n;
    }
  }

  /**
   * Makes every write that returned before this call durable. Concurrent callers share the work.
   *
   * @throws ImageFailedException if this or an earlier flush failed; the image then refuses all
   *     writes and flushes until it is reopened
   */
  public void flush() throws IOException {
    lifecycle.readLock().lock();
    try {
      ensureOpen();
      if (writable) {
        groupCommit.commit();
      }
    } finally {
      lifecycle.readLock().unlock();
    }
  }

  /**
   * One group-commit round. Mappings are taken before the data force, so every slot they point at
   * (its zero-fill included) is durable before the record that points at it.
   */
  private void commitRound() throws IOException {
    ChunkTable t = table;
    List<Integer> batch = new ArrayList<>();
    List<Integer> notYetPublished = new ArrayList<>();
    for (Integer chunkIndex; (chunkIndex = unjournalledMappings.poll()) != null; ) {
      // A mapping queued but not yet published has no writer depending on it; its allocating
      // writer will flush it in a later round.
      (t.physicalChunk(chunkIndex) < 0 ? notYetPublished : batch).add(chunkIndex);
    }
    unjournalledMappings.addAll(notYetPublished);
    storage.force();
    if (batch.isEmpty()) {
      return;
    }
    if (journal.fits(batch.size())) {
      int[] chunkIndexes = new int[batch.size()];
      long[] physicalChunks = new long[batch.size()];
      for (int i = 0; i < chunkIndexes.length; i++) {
        chunkIndexes[i] = batch.get(i);
        physicalChunks[i] = t.physicalChunk(chunkIndexes[i]);
      }
      journal.append(chunkIndexes, physicalChunks, chunkIndexes.length);
      storage.force();
      for (int chunkIndex : chunkIndexes) {
        t.markClean(chunkIndex);
      }
    } else {
      BitSet committable = new BitSet();
      batch.forEach(committable::set);
      writeTableCopy(committable, false);
    }
  }

  private void writeTableCopy(boolean clean) throws IOException {
    writeTableCopy(new BitSet(), clean);
  }

  /**
   * Writes the whole table to the inactive copy, then a header that switches to it and starts a new
   * journal epoch. Until the header write completes the old copy and the old journal stay in force,
   * so a crash at any point leaves a complete table. Entries in {@code committable} are written
   * even if DIRTY (their slots are durable); other DIRTY entries are left out.
   */
  private void writeTableCopy(BitSet committable, boolean clean) throws IOException {
    ChunkTable t = table;
    ByteBuffer encoded = t.encode(committable::get);
    int crc = ChunkTable.crc(encoded);
    int target = 1 - header.activeTable();
    storage.write(encoded, header.tableOffset(target));
    storage.force();
    Header next = header.withNewTable(target, crc, header.sizeBytes(), clean);
    next.writeTo(storage);
    header = next;
    journal.restart(next.stableEpoch());
    for (int i = committable.nextSetBit(0); i >= 0; i = committable.nextSetBit(i + 1)) {
      t.markClean(i);
    }
  }

  /**
   * Grows the virtual disk to {@code newSizeBytes}, keeping all content; the new range reads as
   * zeros. Durable on return.
   *
   * @throws IllegalArgumentException if the new size is smaller, not a multiple of 512, or above
   *     {@link #maxSizeBytes()}
   */
  public void grow(long newSizeBytes) throws IOException {
    lifecycle.writeLock().lock();
    try {
      ensureOpen();
      ensureWritable();
      if (newSizeBytes < header.sizeBytes()
          || newSizeBytes % ImageOptions.SECTOR_BYTES != 0
          || newSizeBytes > header.maxSizeBytes()) {
        throw new IllegalArgumentException(
            "new size "
                + newSizeBytes
                + " must be a multiple of 512 between the current size "
                + header.sizeBytes()
                + " and the maximum size "
                + header.maxSizeBytes());
      }
      if (newSizeBytes == header.sizeBytes()) {
        return;
      }
      groupCommit.commit();
      int newCount = Math.toIntExact(Header.ceilDiv(newSizeBytes, header.chunkSizeBytes()));
      ChunkTable grown = table.grownTo(newCount);
      ByteBuffer encoded = grown.encode(ChunkTable.ChunkSet.NONE);
      int crc = ChunkTable.crc(encoded);
      int target = 1 - header.activeTable();
      try {
        storage.write(encoded, header.tableOffset(target));
        storage.force();
        Header next = header.withNewTable(target, crc, newSizeBytes, false);
        next.writeTo(storage);
        header = next;
        table = grown;
        journal.restart(next.stableEpoch());
        changeCount.incrementAndGet();
      } catch (IOException | RuntimeException e) {
        groupCommit.fail(e);
        throw e;
      }
    } finally {
      lifecycle.writeLock().unlock();
    }
  }

  /**
   * Lists the allocated and unallocated runs of {@code [offsetBytes, offsetBytes + lengthBytes)} in
   * order, neighbours of the same kind merged, clipped to the range. Reads only the in-memory
   * table. At most {@code maxExtents} are returned; when the list is cut short, its last extent
   * ends before the range does, and the caller continues from there.
   *
   * @throws IllegalArgumentException if the range is not inside the virtual disk or {@code
   *     maxExtents} is below 1
   */
  public List<Extent> extents(long offsetBytes, long lengthBytes, int maxExtents) {
    if (maxExtents < 1) {
      throw new IllegalArgumentException("maxExtents must be at least 1, was " + maxExtents);
    }
    lifecycle.readLock().lock();
    try {
      ensureOpen();
      checkRange(offsetBytes, lengthBytes);
      ChunkTable t = table;
      long chunkSize = header.chunkSizeBytes();
      long end = offsetBytes + lengthBytes;
      List<Extent> extents = new ArrayList<>();
      long runStart = offsetBytes;
      boolean runAllocated = false;
      for (long position = offsetBytes; position < end; ) {
        int chunkIndex = (int) (position / chunkSize);
        long next = Math.min(end, (chunkIndex + 1L) * chunkSize);
        boolean allocated = t.physicalChunk(chunkIndex) >= 0;
        if (position == offsetBytes) {
          runAllocated = allocated;
        } else if (allocated != runAllocated) {
          extents.add(new Extent(runStart, position - runStart, runAllocated));
          if (extents.size() == maxExtents) {
            return extents;
          }
          runStart = position;
          runAllocated = allocated;
        }
        position = next;
      }
      if (lengthBytes > 0) {
        extents.add(new Extent(runStart, end - runStart, runAllocated));
      }
      return extents;
    } finally {
      lifecycle.readLock().unlock();
    }
  }

  /**
   * How many bytes of new file space a write of {@code [offsetBytes, offsetBytes + lengthBytes)}
   * would take: one chunk for each chunk the range touches that is not allocated yet, less the
   * leaked and free slots the allocator would reuse first. Reads only in-memory state.
   *
   * @throws IllegalArgumentException if the range is not inside the virtual disk
   */
  public long bytesToAllocate(long offsetBytes, long lengthBytes) {
    lifecycle.readLock().lock();
    try {
      ensureOpen();
      checkRange(offsetBytes, lengthBytes);
      if (lengthBytes == 0) {
        return 0;
      }
      ChunkTable t = table;
      long chunkSize = header.chunkSizeBytes();
      int first = (int) (offsetBytes / chunkSize);
      int last = (int) ((offsetBytes + lengthBytes - 1) / chunkSize);
      long unallocated = 0;
      for (int i = first; i <= last; i++) {
        if (t.physicalChunk(i) < 0) {
          unallocated++;
        }
      }
      long reusable = allocator.leakedCount() + allocator.freeCount();
      return Math.max(0, unallocated - reusable) * chunkSize;
    } finally {
      lifecycle.readLock().unlock();
    }
  }

  /**
   * Makes {@code [offsetBytes, offsetBytes + lengthBytes)} read as zeros. Only allocated chunks are
   * written (unallocated ones read as zeros already), so zeroing never allocates. Like {@link
   * #write}, durable only after {@link #flush()}.
   *
   * @throws IllegalArgumentException if the range is not inside the virtual disk
   * @throws IllegalStateException if the image was opened read-only or is marked read-only
   * @throws ImageFailedException if an earlier flush failed
   */
  public void zero(long offsetBytes, long lengthBytes) throws IOException {
    lifecycle.readLock().lock();
    try {
      ensureOpen();
      ensureWritable();
      checkRange(offsetBytes, lengthBytes);
      ChunkTable t = table;
      long chunkSize = header.chunkSizeBytes();
      long end = offsetBytes + lengthBytes;
      try {
        for (long position = offsetBytes; position < end; ) {
          int chunkIndex = (int) (position / chunkSize);
          long inChunk = position % chunkSize;
          long n = Math.min(end - position, chunkSize - inChunk);
          long physical = t.physicalChunk(chunkIndex);
          if (physical >= 0) {
            writeZeros(slotOffset(physical) + inChunk, n);
          }
          position += n;
        }
      } finally {
        changeCount.incrementAndGet();
      }
    } finally {
      lifecycle.readLock().unlock();
    }
  }

  /** Counters as of now; costs no I/O. */
  public ImageStats stats() {
    long fileBytes = allocator.storageBytes();
    return new ImageStats(
        header.sizeBytes(),
        header.chunkSizeBytes(),
        mappedChunks.get() * header.chunkSizeBytes(),
        allocator.reservedBytes(),
        fileBytes,
        allocator.leakedCount(),
        allocator.freeCount(),
        journal.usedSectors(),
        journal.sectorCount(),
        !recovered.header().cleanShutdown(),
        recovered.replay().appliedRecords(),
        recovered.replay().skippedSectors());
  }

  /**
   * Checks the open image: every mapped chunk inside the file and used once, leaked chunks listed.
   * With {@code repair}, leaked chunks become free chunks (reused before the file grows).
   */
  public CheckReport check(boolean repair) throws IOException {
    lifecycle.writeLock().lock();
    try {
      ensureOpen();
      ChunkTable t = table;
      List<String> problems = new ArrayList<>();
      BitSet used = new BitSet();
      long frontier = allocator.frontier();
      for (int i = 0; i < t.chunkCount(); i++) {
        long physical = t.physicalChunk(i);
        if (physical < 0) {
          continue;
        }
        if (physical >= frontier) {
          problems.add(
              "chunk "
                  + i
                  + " is mapped to physical chunk "
                  + physical
                  + " at or past the allocation frontier "
                  + frontier);
        } else if (used.get((int) physical)) {
          problems.add("physical chunk " + physical + " is used twice (again by chunk " + i + ")");
        } else {
          used.set((int) physical);
        }
      }
      List<Long> leaked = allocator.leakedChunks();
      for (long p : leaked) {
        if (used.get((int) p)) {
          problems.add("physical chunk " + p + " is listed as leaked but is in use");
        }
      }
      if (groupCommit.failure() != null) {
        problems.add("image is in a failed state: " + groupCommit.failure());
      }
      int reclaimed = 0;
      if (repair && problems.isEmpty()) {
        reclaimed = allocator.reclaimLeaked();
        if (reclaimed > 0) {
          changeCount.incrementAndGet();
        }
      }
      return CheckReport.of(leaked, reclaimed, problems);
    } finally {
      lifecycle.writeLock().unlock();
    }
  }

  /**
   * Makes everything durable, writes the whole table and sets the clean-shutdown flag, so the next
   * open need not replay the journal. Closing twice does nothing. After a failure the image is
   * closed without the flag, and the next open recovers from the journal.
   */
  @Override
  public void close() throws IOException {
    lifecycle.writeLock().lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      if (writable && groupCommit.failure() == null) {
        groupCommit.commit();
        writeTableCopy(true);
      }
    } finally {
      try {
        storage.close();
      } finally {
        lifecycle.writeLock().unlock();
      }
    }
  }

  private void ensureOpen() {
    if (closed) {
      throw new ImageClosedException(storage.description());
    }
  }

  private void ensureWritable() throws IOException {
    ensureOpenForWriting();
    if (header.readOnly()) {
      throw new IllegalStateException(storage.description() + ": image is marked read-only");
    }
  }

  private void ensureOpenForWriting() throws IOException {
    if (!writable) {
      throw new IllegalStateException(storage.description() + ": image is open read-only");
    }
    Throwable failure = groupCommit.failure();
    if (failure != null) {
      throw new ImageFailedException(storage.description(), failure);
    }
  }

  private void checkRange(long offsetBytes, long lengthBytes) {
    long size = header.sizeBytes();
    if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes > size - lengthBytes) {
      throw new IllegalArgumentException(
          "range of "
              + lengthBytes
              + " bytes at offset "
              + offsetBytes
              + " is outside the virtual disk of "
              + size
              + " bytes");
    }
  }
}
