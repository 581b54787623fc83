package dev.fvdisk.engine;

import dev.fvdisk.engine.CorruptImageException.Kind;
import dev.fvdisk.engine.io.Storage;
import dev.fvdisk.engine.spi.SnapshotEvent;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;
import org.jspecify.annotations.Nullable;

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
public final class Image implements BaseImage, Closeable {

  private static final long CLIENT_IO_NOTE_INTERVAL_NANOS = 1_000_000;

  /** Copy-on-read skips copies while this many bytes are being copied already (FVD's default). */
  public static final long DEFAULT_COPY_ON_READ_LIMIT_BYTES =
      CloneLayer.DEFAULT_COPY_ON_READ_LIMIT_BYTES;

  private final Storage storage;
  private final boolean writable;

  /**
   * Shared by reads, writes and flushes; exclusive for what swaps metadata or closes the storage.
   * Not a {@link java.util.concurrent.locks.StampedLock}: it lets new readers in while a writer
   * waits, so steady reads starved a close. Not reentrant: nothing here takes it while holding it
   * already.
   */
  private final PlainReadWriteLock lifecycle = new PlainReadWriteLock();

  private final RecoveredMetadata recovered;
  private final FileMetadataLog metadata;
  private final ChunkStore chunks;
  private final CloneLayer clone;
  private final Committer committer;
  private final PrefetchTuning prefetchTuning;
  private final AtomicLong modifications = new AtomicLong();
  private final UUID openId = UUID.randomUUID();
  private volatile long lastClientIoNanos = System.nanoTime();
  private volatile @Nullable Prefetcher prefetcher;
  private volatile boolean closed;

  private Image(
      Storage storage,
      boolean writable,
      RecoveredMetadata recovered,
      @Nullable BaseImage base,
      PrefetchTuning prefetchTuning,
      SpaceBudget spaceBudget)
      throws IOException {
    Header header = recovered.header();
    this.storage = storage;
    this.writable = writable;
    this.recovered = recovered;
    this.prefetchTuning = prefetchTuning;
    ChunkAllocator allocator =
        new ChunkAllocator(
            storage,
            header.dataOffsetBytes(),
            header.chunkSizeBytes(),
            header.growthUnitBytes(),
            recovered.frontier(),
            recovered.leakedChunks(),
            storage.sizeBytes());
    FileChunkData data = new FileChunkData(storage, header);
    this.metadata =
        new FileMetadataLog(
            storage,
            header,
            new FileMetadataLog.DirectorySpace() {
              @Override
              public long reserve(int slots) throws IOException {
                return allocator.reserveRun(slots);
              }

              @Override
              public void release(long[] slots) {
                allocator.release(slots);
              }
            });
    this.chunks =
        new ChunkStore(
            data,
            header.chunkSizeBytes(),
            recovered.table(),
            recovered.mappedChunks(),
            allocator,
            recovered.snapshots());
    this.clone =
        new CloneLayer(
            chunks, base, recovered.bitmap(), header, spaceBudget, storage.description());
    this.committer =
        new Committer(storage.description(), data, metadata, metadata::header, chunks, clone);
  }

  /**
   * Lays out a new image in empty storage and opens it for writing.
   *
   * @throws IOException if the storage is not empty or cannot be written
   */
  public static Image create(Storage storage, ImageOptions options) throws IOException {
    return create(storage, options, null, "");
  }

  /**
   * Lays out a new copy-on-write clone of {@code base} in empty storage and opens it for writing.
   * The clone reads every block it has not written from the base, which must stay open, read-only
   * and unchanged for as long as the clone depends on it; the clone never closes it.
   *
   * @param locator how the caller will name the base again at open, through a {@link BaseResolver};
   *     at most 254 bytes of UTF-8
   * @throws IllegalArgumentException if the base is open for writing or the locator is too long
   */
  public static Image create(
      Storage storage, ImageOptions options, @Nullable BaseImage base, String locator)
      throws IOException {
    ImageLayout.format(storage, options, base, locator);
    return open(storage, true, locatorName -> base);
  }

  /** Opens an image that has no base; see {@link #open(Storage, boolean, BaseResolver)}. */
  public static Image open(Storage storage, boolean writable) throws IOException {
    return open(storage, writable, BaseResolver.NONE);
  }

  /**
   * Opens an image, replaying the journal records of its stable epoch first (there are some only
   * after an unclean shutdown; read-only opens replay in memory only). A clone that still depends
   * on its base gets the base from {@code bases} and checks that it is the very image, unchanged,
   * it was cloned from.
   *
   * @throws CorruptImageException when the file is not an fvdisk image, has an unsupported version,
   *     or its metadata is damaged; the message names the file and the offset
   * @throws BaseImageException when the base is missing, open for writing, replaced or changed
   */
  public static Image open(Storage storage, boolean writable, BaseResolver bases)
      throws IOException {
    return open(storage, writable, bases, PrefetchTuning.DEFAULTS);
  }

  /**
   * Opens an image as {@link #open(Storage, boolean, BaseResolver)} does, pacing a writable clone's
   * prefetching with {@code prefetchTuning}. Prefetching, when the image has it switched on, starts
   * in the background once the image is open.
   */
  public static Image open(
      Storage storage, boolean writable, BaseResolver bases, PrefetchTuning prefetchTuning)
      throws IOException {
    return open(storage, writable, bases, prefetchTuning, SpaceBudget.UNLIMITED);
  }

  /**
   * Opens an image as {@link #open(Storage, boolean, BaseResolver, PrefetchTuning)} does, asking
   * {@code spaceBudget} before a copy from the base (prefetching, copy-on-read) maps a new chunk.
   */
  public static Image open(
      Storage storage,
      boolean writable,
      BaseResolver bases,
      PrefetchTuning prefetchTuning,
      SpaceBudget spaceBudget)
      throws IOException {
    RecoveredMetadata recovered = RecoveredMetadata.recover(storage);
    if (!recovered.problems().isEmpty()) {
      throw new CorruptImageException(
          Kind.CORRUPT,
          String.join(
              "; ", recovered.problems().subList(0, Math.min(5, recovered.problems().size()))));
    }
    Header header = recovered.header();
    if (writable && header.readOnly()) {
      throw new IllegalStateException(
          storage.description()
              + ": image is read-only; clear the flag with Image.setReadOnly before opening it for"
              + " writing");
    }
    BaseImage base = null;
    if (header.dependsOnBase()) {
      base = checkedBase(storage.description(), header.base(), bases);
    }
    Image image = new Image(storage, writable, recovered, base, prefetchTuning, spaceBudget);
    if (writable) {
      image.markOpenForWriting();
      if (header.dependsOnBase() && header.prefetchEnabled()) {
        image.startPrefetcher(true, header.prefetchStartDelaySeconds());
      }
    }
    return image;
  }

  private static BaseImage checkedBase(String file, Header.BaseLink link, BaseResolver bases)
      throws IOException {
    BaseImage base = bases.resolve(link.locator());
    String problem = null;
    if (base == null) {
      problem = "is not available";
    } else if (!base.id().equals(link.baseId())) {
      problem = "is image " + base.id() + ", but the clone was made from image " + link.baseId();
    } else if (base.snapshotId() != link.baseSnapshotId()) {
      problem =
          base.snapshotId() == 0
              ? "is the image itself, but the clone was made from one of its snapshots"
              : "is snapshot "
                  + base.snapshotId()
                  + " of the image, but the clone was made from "
                  + (link.baseSnapshotId() == 0
                      ? "the image itself"
                      : "snapshot " + link.baseSnapshotId());
    } else if (base.generation() != link.baseGeneration()) {
      problem =
          "has changed since the clone was made (header generation "
              + base.generation()
              + ", expected "
              + link.baseGeneration()
              + ")";
    } else if (!base.isReadOnly()) {
      problem = "is not marked read-only";
    } else if (base.sizeBytes() < link.baseSizeBytes()) {
      problem = "is shorter than the " + link.baseSizeBytes() + " bytes the clone reads from it";
    }
    if (problem != null) {
      throw new BaseImageException(file + ": base image \"" + link.locator() + "\" " + problem);
    }
    return base;
  }

  /**
   * Clears the clean-shutdown flag before the first write. After a crash, also writes the recovered
   * table and starts a new journal epoch, and cuts the file back to the frontier: slots past it may
   * hold data of writes whose mappings were lost, and giving them out again would need zeroing,
   * while cutting them off costs nothing.
   */
  private void markOpenForWriting() throws IOException {
    Header header = header();
    // Replay found records only if the newest header copy was lost; treat that as a crash too, so
    // the recovered mappings reach a table copy before new records overwrite the old ones.
    if (header.cleanShutdown() && recovered.replay().appliedRecords() == 0) {
      metadata.writeHeader(header.withCleanShutdown(false));
    } else {
      storage.resize(
          header.dataOffsetBytes() + chunks.allocator().frontier() * header.chunkSizeBytes());
      chunks.allocator().resetStorageBytes(storage.sizeBytes());
      committer.checkpoint(header.flags() & ~Header.FLAG_CLEAN_SHUTDOWN);
    }
    metadata.startJournal();
  }

  /** The snapshots and the chunk versions they hold, for checks that look inside. */
  SnapshotSet snapshotSet() {
    return chunks.snapshots();
  }

  /** The header in force. */
  Header header() {
    return metadata.header();
  }

  @Override
  public UUID id() {
    return header().imageId();
  }

  /** The header generation: every header write raises it, so clones can tell a base changed. */
  @Override
  public long generation() {
    return header().generation();
  }

  @Override
  public long sizeBytes() {
    return header().sizeBytes();
  }

  public long maxSizeBytes() {
    return header().maxSizeBytes();
  }

  public int chunkSizeBytes() {
    return header().chunkSizeBytes();
  }

  public boolean isWritable() {
    return writable;
  }

  /**
   * Whether the image is marked read-only. A marked image can only be opened for reading, so its
   * header, and with it the identity its clones check, never changes while the mark is set.
   */
  @Override
  public boolean isReadOnly() {
    return header().readOnly();
  }

  /**
   * Whether a failed flush has latched the image: it then refuses writes and flushes until it is
   * reopened, while reads go on. Costs no I/O, so monitoring may ask on every request.
   */
  public boolean isFailed() {
    return committer.failure() != null;
  }

  /** When the image was created, in milliseconds since the epoch. */
  public long createdAtMillis() {
    return header().createdAtMillis();
  }

  /**
   * A token that changes with every change of the image's data or settings made through this open
   * image, and never repeats, also across restarts: image UUID, a random id of this open and the
   * {@link #modificationCount()}. For strong HTTP validators.
   */
  public String changeTag() {
    return header().imageId() + "-" + openId + "-" + modifications.get();
  }

  /**
   * Marks a closed image read-only, or clears the mark, by rewriting its header; durable on return.
   * Nothing else changes, so an image that was not shut down cleanly is still recovered at its next
   * open. The caller makes sure no one has the image open; clearing the mark while clones depend on
   * the image makes those clones refuse to open, because the header generation changes.
   */
  public static void setReadOnly(Storage storage, boolean readOnly) throws IOException {
    Header h = Header.read(storage);
    if (h.readOnly() != readOnly) {
      h.withFlag(Header.FLAG_READ_ONLY, readOnly).writeTo(storage);
    }
  }

  /**
   * A number that changes with every change of the image's data or settings made through this open
   * image: writes, growth and flag changes. Together with {@link #openId()} it identifies one
   * version of the image's content, for HTTP validators.
   */
  public long modificationCount() {
    return modifications.get();
  }

  /** Random per open, so versions seen before a restart never match those after it. */
  public UUID openId() {
    return openId;
  }

  /** The storage description, usually the file path. */
  @Override
  public String description() {
    return storage.description();
  }

  /**
   * Reads {@code dst.remaining()} bytes of the virtual disk starting at {@code offsetBytes}.
   * Never-written bytes read as zeros, or as the base's bytes in a clone.
   *
   * @throws IllegalArgumentException if the range is not inside the virtual disk
   */
  @Override
  public void read(long offsetBytes, ByteBuffer dst) throws IOException {
    lifecycle.lockShared();
    try {
      ensureOpen();
      checkRange(offsetBytes, dst.remaining());
      noteClientIo();
      int start = dst.position();
      boolean fromBase = clone.read(offsetBytes, dst);
      if (fromBase && writable && header().copyOnRead() && committer.failure() == null) {
        clone.copyOnRead(offsetBytes, dst.duplicate().flip().position(start));
      }
    } finally {
      lifecycle.unlockShared();
    }
  }

  /**
   * Writes {@code src.remaining()} bytes at {@code offsetBytes}. On return the bytes are visible to
   * reads but not durable; call {@link #flush()} for that. In a clone, a write that covers part of
   * a block still in the base first merges the base's bytes, so the whole block moves at once.
   *
   * @throws IllegalArgumentException if the range is not inside the virtual disk
   * @throws IllegalStateException if the image was opened read-only
   * @throws ImageFailedException if an earlier flush failed
   */
  public void write(long offsetBytes, ByteBuffer src) throws IOException {
    lifecycle.lockShared();
    try {
      ensureOpen();
      ensureWritable();
      checkRange(offsetBytes, src.remaining());
      noteClientIo();
      try {
        clone.write(offsetBytes, src);
      } finally {
        modifications.incrementAndGet();
      }
    } finally {
      lifecycle.unlockShared();
    }
  }

  /**
   * Makes {@code [offsetBytes, offsetBytes + lengthBytes)} read as zeros. Outside the base's range
   * only allocated chunks are written, since unallocated ones read as zeros already; inside it the
   * zeros go through copy-on-write like any write. Durable only after {@link #flush()}.
   *
   * @throws IllegalArgumentException if the range is not inside the virtual disk
   * @throws IllegalStateException if the image was opened read-only
   * @throws ImageFailedException if an earlier flush failed
   */
  public void zero(long offsetBytes, long lengthBytes) throws IOException {
    lifecycle.lockShared();
    try {
      ensureOpen();
      ensureWritable();
      checkRange(offsetBytes, lengthBytes);
      noteClientIo();
      try {
        clone.zero(offsetBytes, lengthBytes);
      } finally {
        modifications.incrementAndGet();
      }
    } finally {
      lifecycle.unlockShared();
    }
  }

  /**
   * Lists where the bytes of {@code [offsetBytes, offsetBytes + lengthBytes)} come from, in order,
   * neighbours in the same state merged, clipped to the range. Reads only in-memory metadata. At
   * most {@code maxExtents} are returned; when the list is cut short its last extent ends before
   * the range does, and the caller continues from there.
   *
   * @throws IllegalArgumentException if the range is not inside the virtual disk or {@code
   *     maxExtents} is below 1
   */
  public List<Extent> extents(long offsetBytes, long lengthBytes, int maxExtents) {
    if (maxExtents < 1) {
      throw new IllegalArgumentException("maxExtents must be at least 1, was " + maxExtents);
    }
    lifecycle.lockShared();
    try {
      ensureOpen();
      checkRange(offsetBytes, lengthBytes);
      return clone.extents(offsetBytes, lengthBytes, maxExtents);
    } finally {
      lifecycle.unlockShared();
    }
  }

  /**
   * How many bytes of new file space a write of {@code [offsetBytes, offsetBytes + lengthBytes)}
   * would take at most: one chunk for each chunk the range touches that is not allocated yet, less
   * the leaked and free slots the allocator reuses first. Reads only in-memory state.
   *
   * @throws IllegalArgumentException if the range is not inside the virtual disk
   */
  public long bytesToAllocate(long offsetBytes, long lengthBytes) {
    lifecycle.lockShared();
    try {
      ensureOpen();
      checkRange(offsetBytes, lengthBytes);
      return chunks.bytesToAllocate(offsetBytes, lengthBytes);
    } finally {
      lifecycle.unlockShared();
    }
  }

  /**
   * Stores a block read from the base (a soft write) unless its bit is already set; for the
   * prefetcher. The bit and the chunk mapping are journalled with the next flush; a crash before
   * that costs a re-copy.
   *
   * @return whether the block was copied
   * @throws NoSpaceForCopyException when the space budget refuses the space; nothing was written
   */
  boolean copyIn(long block, ByteBuffer blockData) throws IOException {
    // The lifecycle lock keeps grow from swapping the table while the copy maps a chunk.
    lifecycle.lockShared();
    try {
      ensureOpen();
      return clone.storeBaseBlock(block, blockData);
    } finally {
      lifecycle.unlockShared();
    }
  }

  /**
   * Makes every write that returned before this call durable. Concurrent callers share the work.
   *
   * @throws ImageFailedException if this or an earlier flush failed; the image then refuses all
   *     writes and flushes until it is reopened
   */
  public void flush() throws IOException {
    lifecycle.lockShared();
    try {
      ensureOpen();
      if (writable) {
        committer.commit();
      }
    } finally {
      lifecycle.unlockShared();
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
    lifecycle.lockExclusive();
    try {
      ensureOpen();
      ensureWritable();
      Header header = header();
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
      committer.commit();
      int newCount = Math.toIntExact(Header.ceilDiv(newSizeBytes, header.chunkSizeBytes()));
      ChunkTable grown = chunks.table().grownTo(newCount);
      try {
        committer.checkpoint(
            grown,
            ChunkTable.Taken.NONE,
            new long[0],
            newSizeBytes,
            header().flags() & ~Header.FLAG_CLEAN_SHUTDOWN);
        chunks.replaceTable(grown);
        modifications.incrementAndGet();
      } catch (IOException | RuntimeException e) {
        committer.fail(e);
        throw e;
      }
    } finally {
      lifecycle.unlockExclusive();
    }
  }

  private void startPrefetcher(boolean enabled, int startDelaySeconds) {
    Header header = header();
    Prefetcher p =
        new Prefetcher(
            this,
            clone.bitmap(),
            header.base().baseSizeBytes(),
            header.blockSizeBytes(),
            prefetchTuning,
            enabled,
            startDelaySeconds);
    prefetcher = p;
    p.start();
  }

  /** Blocks of the base range that are in this image; kept current, so reading it costs nothing. */
  long presentBlocks() {
    return clone.presentBlocks();
  }

  /**
   * Notes client I/O for the background work that waits for a quiet image (the prefetcher, the
   * service's compaction), at most once a millisecond: a store on every 4 KiB read makes the cores
   * fight over the field's cache line, and nobody waits for less than a millisecond of quiet.
   */
  private void noteClientIo() {
    long now = System.nanoTime();
    if (now - lastClientIoNanos >= CLIENT_IO_NOTE_INTERVAL_NANOS) {
      lastClientIoNanos = now;
    }
  }

  /**
   * How long no client has read, written or zeroed this image, in nanoseconds (to within a
   * millisecond); counted from the open for an image nobody used yet.
   */
  public long nanosSinceClientIo() {
    return System.nanoTime() - lastClientIoNanos;
  }

  long lastClientIoNanos() {
    return lastClientIoNanos;
  }

  /**
   * Reads from the base for the prefetcher, under the image's lifecycle lock.
   *
   * @return false when the image is closed
   */
  boolean readBaseForPrefetch(long offsetBytes, ByteBuffer dst) throws IOException {
    lifecycle.lockShared();
    try {
      if (closed || !clone.dependsOnBase()) {
        return false;
      }
      clone.readBase(offsetBytes, dst);
      return true;
    } finally {
      lifecycle.unlockShared();
    }
  }

  /**
   * Why a copy from the base that maps a new chunk would be refused now; null when it would not.
   */
  @Nullable String spaceRefusal() {
    return clone.spaceRefusal();
  }

  /**
   * Ends the clone's dependency on its base once every block is here: makes all copies durable,
   * then writes table and bitmap with the standalone flag set. From then on reads never look at the
   * base, and the base may be deleted.
   */
  void completePrefetch() throws IOException {
    // Most of the copies are forced here, under the shared lock, so clients keep going; the
    // exclusive part below then forces little and only switches the metadata.
    flush();
    lifecycle.lockExclusive();
    try {
      ensureOpen();
      if (!clone.dependsOnBase()) {
        return;
      }
      if (!clone.bitmap().allSet()) {
        throw new IllegalStateException(description() + ": prefetch ended with blocks missing");
      }
      if (chunks.snapshots().anyReadsBase()) {
        // Snapshots taken while blocks were still in the base read them there: the clone keeps
        // its base until they are deleted, and goes standalone at a later open.
        return;
      }
      committer.commit();
      try {
        committer.checkpoint(header().flags() | Header.FLAG_STANDALONE);
        clone.detachFromBase();
        modifications.incrementAndGet();
      } catch (IOException | RuntimeException e) {
        committer.fail(e);
        throw e;
      }
    } finally {
      lifecycle.unlockExclusive();
    }
  }

  /**
   * Switches background prefetching on or off, durably. Off pauses it where it is; on starts it
   * after {@code startDelaySeconds}. Does nothing for an image that does not depend on a base.
   */
  public void setPrefetch(boolean enabled, int startDelaySeconds) throws IOException {
    if (startDelaySeconds < 0) {
      throw new IllegalArgumentException(
          "startDelaySeconds must not be negative, was " + startDelaySeconds);
    }
    lifecycle.lockExclusive();
    try {
      ensureOpen();
      ensureWritable();
      if (!clone.dependsOnBase()) {
        return;
      }
      metadata.writeHeader(header().withPrefetch(enabled, startDelaySeconds));
      Prefetcher p = prefetcher;
      modifications.incrementAndGet();
      if (p != null) {
        p.setEnabled(enabled, startDelaySeconds);
      } else if (enabled) {
        startPrefetcher(true, startDelaySeconds);
      }
    } finally {
      lifecycle.unlockExclusive();
    }
  }

  /** Switches copy-on-read on or off, durably. */
  public void setCopyOnRead(boolean enabled) throws IOException {
    lifecycle.lockExclusive();
    try {
      ensureOpen();
      ensureWritable();
      metadata.writeHeader(header().withFlag(Header.FLAG_COPY_ON_READ, enabled));
      modifications.incrementAndGet();
    } finally {
      lifecycle.unlockExclusive();
    }
  }

  /** Where prefetching stands; costs no I/O. */
  public PrefetchStatus prefetchStatus() {
    Header h = header();
    if (h.base() == null) {
      return PrefetchStatus.idle(PrefetchStatus.State.DISABLED, 0, 0);
    }
    long total = h.base().baseSizeBytes();
    if (h.standalone()) {
      return PrefetchStatus.idle(PrefetchStatus.State.DONE, total, total);
    }
    Prefetcher p = prefetcher;
    if (p == null) {
      long present = Math.min(total, clone.presentBlocks() * h.blockSizeBytes());
      return PrefetchStatus.idle(PrefetchStatus.State.DISABLED, present, total);
    }
    return p.status();
  }

  /** The locator of the base this image reads through, or null when it depends on none. */
  public @Nullable String baseLocator() {
    Header h = header();
    return h.dependsOnBase() ? h.base().locator() : null;
  }

  /** The bitmap's block size in bytes, or 0 for an image created without a base. */
  public int blockSizeBytes() {
    return header().blockSizeBytes();
  }

  public boolean copyOnRead() {
    return header().copyOnRead();
  }

  public boolean prefetchEnabled() {
    return header().prefetchEnabled();
  }

  public int prefetchStartDelaySeconds() {
    return header().prefetchStartDelaySeconds();
  }

  /** Copy-on-read skips copies while this many bytes are in flight; for tuning and tests. */
  public void setCopyOnReadLimitBytes(long limitBytes) {
    clone.setCopyOnReadLimitBytes(limitBytes);
  }

  /** Counters as of now; costs no I/O. */
  public ImageStats stats() {
    Header header = header();
    return new ImageStats(
        header.sizeBytes(),
        header.chunkSizeBytes(),
        chunks.mappedChunks() * header.chunkSizeBytes(),
        chunks.snapshots().heldSlotCount() * header.chunkSizeBytes(),
        chunks.snapshots().list().size(),
        chunks.allocator().reservedBytes(),
        chunks.allocator().storageBytes(),
        chunks.allocator().leakedCount(),
        chunks.allocator().freeCount(),
        metadata.journalUsedSectors(),
        metadata.journalSectorCount(),
        !recovered.header().cleanShutdown(),
        recovered.replay().appliedRecords(),
        recovered.replay().skippedSectors(),
        clone.copyOnReadBytesInFlight(),
        clone.copiedFromBaseBytes());
  }

  /**
   * One step of compaction: moves up to {@code maxChunks} chunks from the end of the file into free
   * or leaked slots nearer its start, makes the moves durable, then cuts the file after its last
   * slot in use, so that space freed by zeroing goes back to the file system. Reads and writes go
   * on meanwhile (a chunk being moved waits for them, and they for it). Chunks whose mapping is not
   * durable yet stay where they are until a flush. The caller paces the steps.
   *
   * @return chunks moved and bytes the file shrank by; both 0 when there was nothing to do
   */
  public CompactionStep compact(int maxChunks) throws IOException {
    lifecycle.lockShared();
    try {
      ensureOpen();
      ensureWritable();
      ChunkAllocator allocator = chunks.allocator();
      ByteBuffer buffer = null;
      int moved = 0;
      for (long[] chunkAndSlot : chunks.chunksInHighestSlots(maxChunks)) {
        long to = allocator.takeReusableBelow(chunkAndSlot[1]);
        if (to < 0) {
          break;
        }
        if (buffer == null) {
          buffer = ByteBuffer.allocate((int) Math.min(chunks.chunkSizeBytes(), 1 << 20));
        }
        boolean relocated = false;
        try {
          relocated = chunks.relocate((int) chunkAndSlot[0], chunkAndSlot[1], to, buffer);
        } finally {
          if (!relocated) {
            allocator.giveBack(to);
          }
        }
        if (relocated) {
          moved++;
        }
      }
      if (moved > 0) {
        // Makes the moves durable, and frees the slots they left.
        committer.commit();
      }
      return new CompactionStep(moved, allocator.cutFreeTail());
    } finally {
      lifecycle.unlockShared();
    }
  }

  // ---- snapshots ----

  /**
   * Takes a snapshot of everything written before this call, durably, without copying data: from
   * now on the first change of each chunk keeps its old version for the snapshot. Waits for the
   * reads and writes in progress, and holds new ones back until it is done. A clone that still
   * reads its base also writes a copy of its block bitmap (one bit per block of the base), so the
   * snapshot goes on reading the base's blocks it had not copied yet; the clone then keeps its base
   * until such snapshots are deleted.
   *
   * @throws IllegalArgumentException when the name is empty, longer than 64 bytes of UTF-8 or
   *     taken, or the image has as many snapshots as it may
   * @throws IllegalStateException when the image is open read-only
   */
  public SnapshotInfo createSnapshot(String name) throws IOException {
    lifecycle.lockExclusive();
    try {
      ensureOpen();
      ensureWritable();
      SnapshotSet snapshots = chunks.snapshots();
      String refusal = snapshots.refusal(name);
      if (refusal != null) {
        throw new IllegalArgumentException(refusal);
      }
      // Everything acknowledged so far goes into the snapshot durably first.
      committer.commit();
      if (!header().hasSnapshotsFeature()) {
        metadata.writeHeader(header().withSnapshotsFeature());
      }
      // A clone still reading its base keeps a copy of its bitmap with the snapshot: every bit is
      // durable now (the commit took them all, and nothing sets one while the image is held).
      long[] bits = null;
      SnapshotSet.BaseBlocks baseBlocks = null;
      if (clone.dependsOnBase()) {
        if (!header().hasSnapshotBaseBlocksFeature()) {
          metadata.writeHeader(header().withSnapshotBaseBlocksFeature());
        }
        bits = clone.bitmap().words();
        baseBlocks = chunks.writeBaseBlocks(Bitmap.encode(bits, clone.bitmap().blockCount()));
      }
      SnapshotSet.Snapshot s =
          snapshots.create(name, System.currentTimeMillis(), sizeBytes(), baseBlocks, bits);
      committer.queue(s.createdEvent());
      committer.commit();
      return info(s);
    } finally {
      lifecycle.unlockExclusive();
    }
  }

  /**
   * Deletes a snapshot, any one; the chunk versions only it held are freed once that is durable.
   *
   * @throws IllegalArgumentException when there is no snapshot of that name
   */
  public void deleteSnapshot(String name) throws IOException {
    lifecycle.lockExclusive();
    try {
      ensureOpen();
      ensureWritable();
      SnapshotSet.Snapshot s = snapshot(name);
      committer.commit();
      // A partial version reading through a slot the deletion frees is filled first. The fills
      // have no journal record: a checkpoint records them together with the deletion. Once one
      // version is whole in memory but not on disk, a failure must latch the image, or later
      // writes into it would be journalled as if it were whole.
      boolean filled = false;
      try {
        for (long slot : chunks.snapshots().slotsFreedBy(s.id())) {
          filled |= chunks.fillDependent(slot);
        }
      } catch (IOException | RuntimeException e) {
        if (filled) {
          committer.fail(e);
        }
        throw e;
      }
      long[] freed = chunks.snapshots().delete(s.id());
      for (long slot : freed) {
        chunks.snapshots().partials().remove(slot);
      }
      if (filled) {
        try {
          committer.sealAndCheckpoint();
        } catch (IOException | RuntimeException e) {
          committer.fail(e); // memory has the deletion, the file may not: latch
          throw e;
        }
        chunks.allocator().release(freed); // the checkpoint made the deletion durable
      } else {
        for (long slot : freed) {
          chunks.allocator().quarantine(slot);
        }
        committer.queue(new SnapshotEvent.Deleted(s.id()));
        committer.commit();
      }
    } finally {
      lifecycle.unlockExclusive();
    }
  }

  /** The image's snapshots, oldest first. */
  public List<SnapshotInfo> snapshots() {
    lifecycle.lockShared();
    try {
      ensureOpen();
      List<SnapshotInfo> all = new ArrayList<>();
      for (SnapshotSet.Snapshot s : chunks.snapshots().list()) {
        all.add(info(s));
      }
      return all;
    } finally {
      lifecycle.unlockShared();
    }
  }

  /**
   * One snapshot, or null when there is none of that name; costs what listing it alone costs, not
   * the whole list (whose exclusive bytes walk every delta).
   */
  public @Nullable SnapshotInfo findSnapshot(String name) {
    lifecycle.lockShared();
    try {
      ensureOpen();
      SnapshotSet.Snapshot s = chunks.snapshots().find(name);
      return s == null ? null : info(s);
    } finally {
      lifecycle.unlockShared();
    }
  }

  /**
   * Reads {@code dst.remaining()} bytes of a snapshot at {@code offsetBytes}.
   *
   * @throws IllegalArgumentException when there is no such snapshot or the range is not inside it
   */
  public void readSnapshot(String name, long offsetBytes, ByteBuffer dst) throws IOException {
    lifecycle.lockShared();
    try {
      ensureOpen();
      readSnapshot(snapshot(name), offsetBytes, dst);
    } finally {
      lifecycle.unlockShared();
    }
  }

  /** Reads a snapshot the caller found; the caller holds the lifecycle lock shared. */
  private void readSnapshot(SnapshotSet.Snapshot s, long offsetBytes, ByteBuffer dst)
      throws IOException {
    checkSnapshotRange(s, offsetBytes, dst.remaining());
    clone.readSnapshot(s.id(), chunks.snapshots().baseBlockBits(s.id()), offsetBytes, dst);
  }

  /**
   * @throws IllegalArgumentException unless the range is inside the snapshot
   */
  private static void checkSnapshotRange(SnapshotSet.Snapshot s, long offsetBytes, long length) {
    if (offsetBytes < 0 || length < 0 || offsetBytes > s.sizeBytes() - length) {
      throw new IllegalArgumentException(
          "range of "
              + length
              + " bytes at "
              + offsetBytes
              + " is not inside snapshot "
              + s.name()
              + " of "
              + s.sizeBytes()
              + " bytes");
    }
  }

  /**
   * The extents of snapshot {@code name} in {@code [offsetBytes, offsetBytes + lengthBytes)}, at
   * most {@code maxExtents} of them, each DATA (the chunk has a version) or ZERO (it had none when
   * the snapshot was taken, or was zeroed whole), as {@link #extents} lists the live image's.
   *
   * @throws IllegalArgumentException when there is no such snapshot, the range is not inside it or
   *     {@code maxExtents} is not positive
   */
  public List<Extent> snapshotExtents(
      String name, long offsetBytes, long lengthBytes, int maxExtents) {
    ExtentList out = new ExtentList(maxExtents);
    lifecycle.lockShared();
    try {
      ensureOpen();
      SnapshotSet.Snapshot s = snapshot(name);
      if (lengthBytes <= 0) {
        throw new IllegalArgumentException("lengthBytes must be positive, was " + lengthBytes);
      }
      checkSnapshotRange(s, offsetBytes, lengthBytes);
      clone.snapshotExtents(
          s.id(), chunks.snapshots().baseBlockBits(s.id()), offsetBytes, lengthBytes, out);
      return out.toList();
    } finally {
      lifecycle.unlockShared();
    }
  }

  /**
   * The snapshot {@code name} as a base for clones: it reads what the snapshot holds for as long as
   * the snapshot exists and this image is open. Deleting the snapshot while clones read through it
   * is the caller's to prevent; their reads then fail.
   *
   * @throws IllegalArgumentException when there is no such snapshot
   */
  public BaseImage snapshotBase(String name) {
    lifecycle.lockShared();
    try {
      ensureOpen();
      return new SnapshotBase(snapshot(name));
    } finally {
      lifecycle.unlockShared();
    }
  }

  /** A snapshot seen as a base: fixed content, identified by the image's id and its own. */
  private final class SnapshotBase implements BaseImage {

    private final SnapshotSet.Snapshot snapshot;

    SnapshotBase(SnapshotSet.Snapshot snapshot) {
      this.snapshot = snapshot;
    }

    @Override
    public UUID id() {
      return Image.this.id();
    }

    @Override
    public int snapshotId() {
      return snapshot.id();
    }

    @Override
    public long generation() {
      return 0;
    }

    @Override
    public boolean isReadOnly() {
      return true;
    }

    @Override
    public long sizeBytes() {
      return snapshot.sizeBytes();
    }

    @Override
    public void read(long offsetBytes, ByteBuffer dst) throws IOException {
      lifecycle.lockShared();
      try {
        ensureOpen();
        if (chunks.snapshots().byId(snapshot.id()) == null) {
          throw new BaseImageException(description() + " was deleted");
        }
        readSnapshot(snapshot, offsetBytes, dst);
      } finally {
        lifecycle.unlockShared();
      }
    }

    @Override
    public String description() {
      return Image.this.description() + "@" + snapshot.name();
    }
  }

  /**
   * Where snapshot {@code to}, or the live image when {@code to} is null, may read differently from
   * snapshot {@code from}: the chunks that writes or zeroes changed after {@code from} was taken
   * (and everything past {@code from}'s size), narrowed to the blocks written where the newer
   * version is a chain of partial versions down to the older one, as runs clipped to {@code
   * [offsetBytes, offsetBytes + lengthBytes)}, at most {@code maxExtents} of them, each in state
   * {@link Extent.State#DATA}. A list cut short ends with a whole run; the caller continues after
   * it. Moves by compaction are not changes.
   *
   * @throws IllegalArgumentException when a snapshot does not exist, {@code to} is not newer than
   *     {@code from}, or the range is not inside {@code to}
   */
  public List<Extent> changes(
      String from, @Nullable String to, long offsetBytes, long lengthBytes, int maxExtents)
      throws IOException {
    lifecycle.lockShared();
    try {
      ensureOpen();
      SnapshotSet.Snapshot first = snapshot(from);
      SnapshotSet.Snapshot last = to == null ? null : snapshot(to);
      long size = last == null ? sizeBytes() : last.sizeBytes();
      if (offsetBytes < 0 || lengthBytes <= 0 || offsetBytes > size - lengthBytes) {
        throw new IllegalArgumentException(
            "range of " + lengthBytes + " bytes at " + offsetBytes + " is not inside " + size);
      }
      int lastId = last == null ? 0 : last.id();
      BitSet changed = chunks.snapshots().changedChunks(first.id(), lastId, size);
      Runs runs = new Runs(maxExtents);
      long end = offsetBytes + lengthBytes;
      long[] fromBits = chunks.snapshots().baseBlockBits(first.id());
      if (fromBits == null) {
        addChangedVersions(runs, changed, first, lastId, offsetBytes, end);
      } else {
        addCloneChanges(runs, changed, first, last, fromBits, offsetBytes, end);
      }
      return runs.finish();
    } finally {
      lifecycle.unlockShared();
    }
  }

  /** Joins touching ranges into at most {@code max} extents; a list cut short ends whole. */
  /**
   * Adds to {@code runs} the parts of {@code [from, to)} where the chunk versions {@code to}'s
   * snapshot (0: the live image) reads differ from {@code first}'s: whole changed chunks, narrowed
   * to the blocks their partial versions were written in, where known.
   */
  private void addChangedVersions(
      Runs runs, BitSet changed, SnapshotSet.Snapshot first, int lastId, long from, long to) {
    int chunk = chunkSizeBytes();
    long block = chunks.snapshots().partials().blockSizeBytes();
    for (int c = changed.nextSetBit((int) (from / chunk));
        c >= 0 && (long) c * chunk < to && !runs.full();
        c = changed.nextSetBit(c + 1)) {
      long chunkStart = (long) c * chunk;
      long chunkEnd = chunkStart + chunk;
      long[] blocks = chunks.changedBlocks(first, lastId, c);
      if (blocks == null) {
        runs.add(Math.max(from, chunkStart), Math.min(to, chunkEnd));
        continue;
      }
      for (long at = Math.max(chunkStart, from / block * block);
          at < chunkEnd && at < to && !runs.full();
          at += block) {
        int b = (int) ((at - chunkStart) / block);
        if ((blocks[b >>> 6] & (1L << b)) != 0) {
          runs.add(Math.max(from, at), Math.min(to, at + block));
        }
      }
    }
  }

  /**
   * {@link #changes} from a snapshot taken while the clone read its base ({@code fromBits}, its
   * bitmap then), block by block of the clone. A block that was in the image then changed where its
   * chunk versions did. A block that was in the base then is unchanged while {@code last} (or the
   * live image) still reads it there; once copied in, it changed only if its bytes differ from the
   * base's: a copy-on-read or prefetch copy is not a change, a client's write or zero is.
   */
  private void addCloneChanges(
      Runs runs,
      BitSet changed,
      SnapshotSet.Snapshot first,
      SnapshotSet.@Nullable Snapshot last,
      long[] fromBits,
      long from,
      long to)
      throws IOException {
    int lastId = last == null ? 0 : last.id();
    long[] toBits =
        last == null ? clone.bitmap().words() : chunks.snapshots().baseBlockBits(last.id());
    long block = blockSizeBytes();
    long baseEnd = clone.baseEndBytes();
    ByteBuffer mine = ByteBuffer.allocate((int) block);
    ByteBuffer base = ByteBuffer.allocate((int) block);
    for (long at = from / block * block; at < to && at < baseEnd && !runs.full(); ) {
      long runEnd = at + block;
      if (Bitmap.isSet(fromBits, at / block)) {
        // A run of blocks that were in the image then: their chunk versions say, in one pass.
        while (runEnd < to && runEnd < baseEnd && Bitmap.isSet(fromBits, runEnd / block)) {
          runEnd += block;
        }
        addChangedVersions(
            runs,
            changed,
            first,
            lastId,
            Math.max(from, at),
            Math.min(to, Math.min(baseEnd, runEnd)));
        at = runEnd;
        continue;
      }
      long pieceFrom = Math.max(from, at);
      long pieceTo = Math.min(to, Math.min(baseEnd, runEnd));
      at = runEnd;
      if (toBits == null || Bitmap.isSet(toBits, pieceFrom / block)) {
        // Compared over the piece inside the disk; the base's last block may be short.
        int length = (int) (pieceTo - pieceFrom);
        mine.clear().limit(length);
        base.clear().limit(length);
        if (last == null) {
          clone.read(pieceFrom, mine);
        } else {
          readSnapshot(last, pieceFrom, mine);
        }
        clone.readBase(pieceFrom, base);
        if (!mine.flip().equals(base.flip())) {
          runs.add(pieceFrom, pieceTo);
        }
      }
    }
    if (to > baseEnd && !runs.full()) {
      addChangedVersions(runs, changed, first, lastId, Math.max(from, baseEnd), to);
    }
  }

  private static final class Runs {
    private final List<Extent> done = new ArrayList<>();
    private final int max;
    private long start = -1;
    private long end = -1;

    Runs(int max) {
      this.max = max;
    }

    boolean full() {
      return done.size() == max;
    }

    void add(long from, long to) {
      if (from == end) {
        end = to;
        return;
      }
      if (start >= 0) {
        done.add(new Extent(start, end - start, Extent.State.DATA));
        if (full()) {
          start = -1;
          return;
        }
      }
      start = from;
      end = to;
    }

    List<Extent> finish() {
      if (start >= 0 && !full()) {
        done.add(new Extent(start, end - start, Extent.State.DATA));
      }
      return done;
    }
  }

  private SnapshotSet.Snapshot snapshot(String name) {
    SnapshotSet.Snapshot s = chunks.snapshots().find(name);
    if (s == null) {
      throw new IllegalArgumentException(storage.description() + ": no snapshot called " + name);
    }
    return s;
  }

  private SnapshotInfo info(SnapshotSet.Snapshot s) {
    return new SnapshotInfo(
        s.id(),
        s.name(),
        s.createdAtMillis(),
        s.sizeBytes(),
        chunks.snapshots().exclusiveBytes(s.id()));
  }

  /**
   * Checks the open image with the same rule as recovery (see {@link Checker}): every mapped chunk
   * below the allocation frontier and used once, leaked chunks listed. With {@code repair}, leaked
   * chunks become free chunks (reused before the file grows).
   */
  public CheckReport check(boolean repair) throws IOException {
    lifecycle.lockExclusive();
    try {
      ensureOpen();
      List<Long> leaked = chunks.allocator().leakedChunks();
      List<String> problems =
          Checker.checkOpen(
              chunks.table(),
              chunks.snapshots(),
              metadata.directorySlots(),
              chunks.allocator(),
              committer.failure());
      int reclaimed = 0;
      if (repair && problems.isEmpty()) {
        reclaimed = chunks.allocator().reclaimLeaked();
      }
      return CheckReport.of(leaked, reclaimed, problems);
    } finally {
      lifecycle.unlockExclusive();
    }
  }

  /**
   * Makes everything durable, writes the whole table and sets the clean-shutdown flag, so the next
   * open need not replay the journal. Closing twice does nothing.
   *
   * @throws ImageFailedException if an earlier flush failed: the storage is closed all the same,
   *     without the flag, and writes since the last successful flush may be lost; the next open
   *     recovers from the journal
   */
  @Override
  public void close() throws IOException {
    Prefetcher p = prefetcher;
    if (p != null) {
      // Before taking the lock: a copy in flight needs the read lock to finish.
      p.stop();
    }
    lifecycle.lockExclusive();
    try {
      if (closed) {
        return;
      }
      closed = true;
      if (writable) {
        // Returning normally would tell the caller that everything is durable, which a failed
        // image can no longer promise.
        Throwable failure = committer.failure();
        if (failure != null) {
          throw new ImageFailedException(storage.description(), failure);
        }
        committer.commit();
        committer.checkpoint(header().flags() | Header.FLAG_CLEAN_SHUTDOWN);
        // Only now is it durable that no chunk maps the free slots at the end of the file.
        chunks.allocator().cutFreeTail();
      }
    } finally {
      try {
        storage.close();
      } finally {
        lifecycle.unlockExclusive();
      }
    }
  }

  private void ensureOpen() {
    if (closed) {
      throw new ImageClosedException(storage.description());
    }
  }

  private void ensureWritable() throws IOException {
    if (!writable) {
      throw new IllegalStateException(storage.description() + ": image is open read-only");
    }
    Throwable failure = committer.failure();
    if (failure != null) {
      throw new ImageFailedException(storage.description(), failure);
    }
  }

  private void checkRange(long offsetBytes, long lengthBytes) {
    long size = header().sizeBytes();
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
