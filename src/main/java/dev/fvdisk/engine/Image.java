package dev.fvdisk.engine;

import dev.fvdisk.engine.CorruptImageException.Kind;
import dev.fvdisk.engine.io.DirectBufferPool;
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
public final class Image implements Closeable {

  private static final int BLOCK_LOCK_STRIPES = 64;
  private static final ByteBuffer ZEROS = ChunkStore.ZEROS;

  private static final int MERGE_BUFFER_POOL_LIMIT_BYTES = 256 << 10;
  private static final int RETAINED_MERGE_BUFFERS = 2;
  private static final long CLIENT_IO_NOTE_INTERVAL_NANOS = 1_000_000;

  /** Copy-on-read skips copies while this many bytes are being copied already (FVD's default). */
  public static final long DEFAULT_COPY_ON_READ_LIMIT_BYTES = 2_000_000;

  private final Storage storage;
  private final boolean writable;

  /**
   * Shared by reads, writes and flushes; exclusive for what swaps metadata or closes the storage.
   * Not a {@link java.util.concurrent.locks.StampedLock}: it lets new readers in while a writer
   * waits, so steady reads starved a close. Not reentrant: nothing here takes it while holding it
   * already.
   */
  private final PlainReadWriteLock lifecycle = new PlainReadWriteLock();

  private final ConcurrentLinkedQueue<Long> unjournalledBlocks = new ConcurrentLinkedQueue<>();
  private final ReentrantLock[] blockLocks = new ReentrantLock[BLOCK_LOCK_STRIPES];
  private final @Nullable DirectBufferPool mergeBuffers;
  private final Bitmap bitmap;
  private final Image base;
  private final AtomicLong copyOnReadBytesInFlight = new AtomicLong();
  private final AtomicLong copiedFromBaseBytes = new AtomicLong();
  private final AtomicLong presentBlocks;
  private final PrefetchTuning prefetchTuning;
  private final SpaceBudget spaceBudget;
  private volatile long copyOnReadLimitBytes = DEFAULT_COPY_ON_READ_LIMIT_BYTES;
  private volatile long lastClientIoNanos = System.nanoTime();
  private volatile @Nullable Prefetcher prefetcher;
  private final AtomicLong modifications = new AtomicLong();
  private final UUID openId = UUID.randomUUID();
  private final ChunkStore chunks;
  private final Journal journal;
  private final GroupCommit groupCommit;
  private final RecoveredMetadata recovered;
  private volatile Header header;
  private volatile boolean closed;

  private Image(
      Storage storage,
      boolean writable,
      RecoveredMetadata recovered,
      Header header,
      @Nullable Image base,
      PrefetchTuning prefetchTuning,
      SpaceBudget spaceBudget)
      throws IOException {
    this.storage = storage;
    this.writable = writable;
    this.recovered = recovered;
    this.header = header;
    this.bitmap = recovered.bitmap();
    this.base = base;
    this.presentBlocks = new AtomicLong(bitmap.setCount());
    this.prefetchTuning = prefetchTuning;
    this.spaceBudget = spaceBudget;
    ChunkAllocator allocator =
        new ChunkAllocator(
            storage,
            header.dataOffsetBytes(),
            header.chunkSizeBytes(),
            header.growthUnitBytes(),
            recovered.frontier(),
            recovered.leakedChunks(),
            storage.sizeBytes());
    this.chunks =
        new ChunkStore(
            storage,
            header.dataOffsetBytes(),
            header.chunkSizeBytes(),
            recovered.table(),
            recovered.mappedChunks(),
            allocator);
    this.journal = new Journal(storage, header);
    this.groupCommit = new GroupCommit(storage.description(), this::commitRound);
    for (int i = 0; i < blockLocks.length; i++) {
      blockLocks[i] = new ReentrantLock();
    }
    this.mergeBuffers =
        base != null && header.blockSizeBytes() <= MERGE_BUFFER_POOL_LIMIT_BYTES
            ? new DirectBufferPool((int) header.blockSizeBytes(), RETAINED_MERGE_BUFFERS)
            : null;
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
      Storage storage, ImageOptions options, @Nullable Image base, String locator)
      throws IOException {
    if (storage.sizeBytes() != 0) {
      throw new IOException(
          storage.description() + ": cannot create an image in storage that is not empty");
    }
    Header.Draft d =
        new Header.Draft()
            .set(Header.Field.GENERATION, 1)
            .imageId(UUID.randomUUID())
            .set(Header.Field.SIZE, options.sizeBytes())
            .set(Header.Field.MAX_SIZE, options.maxSizeBytes())
            .set(Header.Field.CHUNK_SIZE, options.chunkSizeBytes())
            .set(Header.Field.CREATED_AT, System.currentTimeMillis())
            .set(Header.Field.STABLE_EPOCH, 1)
            .set(Header.Field.GROWTH_UNIT, options.growthUnitBytes());
    int flags = Header.FLAG_CLEAN_SHUTDOWN;
    long maxChunks = Header.ceilDiv(options.maxSizeBytes(), options.chunkSizeBytes());
    long tableBytes = ChunkTable.regionBytes(maxChunks);
    d.set(Header.Field.TABLE_BYTES, tableBytes)
        .set(Header.Field.TABLE_OFFSET_0, Header.REGION_BYTES)
        .set(Header.Field.TABLE_OFFSET_1, Header.REGION_BYTES + tableBytes);
    long next = Header.REGION_BYTES + 2 * tableBytes;
    long chunkCount = Header.ceilDiv(options.sizeBytes(), options.chunkSizeBytes());
    // A new table is all zeros ("unallocated"), which the file's hole already holds.
    d.set(
        Header.Field.TABLE_CRC,
        ChunkTable.crc(new ChunkTable(Math.toIntExact(chunkCount)).encode(i -> false)));
    Bitmap bitmap = Bitmap.none();
    long bitmapOffset0 = 0;
    if (base != null) {
      Header.BaseLink link = baseLink(base, options, locator);
      int blockSize = options.blockSizeBytes();
      d.base(link)
          .set(Header.Field.BLOCK_SIZE, blockSize)
          .set(Header.Field.PREFETCH_DELAY, options.prefetchStartDelaySeconds());
      flags |= options.copyOnRead() ? Header.FLAG_COPY_ON_READ : 0;
      flags |= options.prefetchEnabled() ? Header.FLAG_PREFETCH : 0;
      long blocks = Header.ceilDiv(link.baseSizeBytes(), blockSize);
      if (blocks > ImageOptions.MAX_BITMAP_BLOCKS) {
        throw new IllegalArgumentException(
            "a base of "
                + link.baseSizeBytes()
                + " bytes needs more than "
                + ImageOptions.MAX_BITMAP_BLOCKS
                + " blocks of "
                + blockSize
                + " bytes; use larger blocks");
      }
      long bitmapBytes = Bitmap.regionBytes(blocks);
      bitmapOffset0 = next;
      d.set(Header.Field.BITMAP_BYTES, bitmapBytes)
          .set(Header.Field.BITMAP_OFFSET_0, next)
          .set(Header.Field.BITMAP_OFFSET_1, next + bitmapBytes);
      next += 2 * bitmapBytes;
      bitmap = new Bitmap(blocks);
      if (options.detectZeroBlocks()) {
        markZeroBlocks(base, bitmap, blockSize, link.baseSizeBytes());
      }
    }
    d.set(Header.Field.FLAGS, flags);
    long journalBytes = options.journalSizeBytes();
    // The data area starts on a 1 MiB boundary so chunk slots line up with large device blocks.
    long dataOffset = Header.ceilDiv(next + journalBytes, 1 << 20) << 20;
    d.set(Header.Field.JOURNAL_OFFSET, next)
        .set(Header.Field.JOURNAL_BYTES, journalBytes)
        .set(Header.Field.DATA_OFFSET, dataOffset);
    storage.resize(dataOffset);
    if (base != null) {
      ByteBuffer encoded = bitmap.encode(new long[0]);
      d.set(Header.Field.BITMAP_CRC, Bitmap.crc(encoded));
      storage.write(encoded, bitmapOffset0);
    }
    d.build().writeTo(storage);
    return open(storage, true, locatorName -> base);
  }

  private static Header.BaseLink baseLink(Image base, ImageOptions options, String locator) {
    if (!base.isReadOnly()) {
      throw new IllegalArgumentException(
          base.description() + ": a base image must be marked read-only");
    }
    if (locator.getBytes(java.nio.charset.StandardCharsets.UTF_8).length
        > Header.MAX_LOCATOR_BYTES) {
      throw new IllegalArgumentException(
          "base locator is longer than " + Header.MAX_LOCATOR_BYTES + " bytes: " + locator);
    }
    long baseSize = Math.min(options.sizeBytes(), base.sizeBytes());
    return new Header.BaseLink(base.id(), base.header.generation(), baseSize, locator);
  }

  /**
   * Zero-block detection: marks every all-zero block of the base as present, so it is never read
   * from the base again. Safe in a compact image because unallocated chunks read as zeros and every
   * chunk slot is zero-filled before first use.
   */
  private static void markZeroBlocks(Image base, Bitmap bitmap, int blockSizeBytes, long baseSize)
      throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(Math.min(blockSizeBytes, ZEROS.capacity()));
    for (long b = 0; b < bitmap.blockCount(); b++) {
      long start = b * blockSizeBytes;
      long end = Math.min(start + blockSizeBytes, baseSize);
      boolean zero = true;
      for (long at = start; zero && at < end; at += buf.capacity()) {
        buf.clear().limit((int) Math.min(buf.capacity(), end - at));
        base.read(at, buf);
        zero = isZero(buf.flip());
      }
      if (zero) {
        bitmap.markDurable(b);
      }
    }
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
    Image base = null;
    if (header.dependsOnBase()) {
      base = checkedBase(storage.description(), header.base(), bases);
    }
    Image image =
        new Image(storage, writable, recovered, header, base, prefetchTuning, spaceBudget);
    if (writable) {
      image.markOpenForWriting();
      if (image.header.dependsOnBase() && image.header.prefetchEnabled()) {
        image.startPrefetcher(true, image.header.prefetchStartDelaySeconds());
      }
    }
    return image;
  }

  private static Image checkedBase(String file, Header.BaseLink link, BaseResolver bases)
      throws IOException {
    Image base = bases.resolve(link.locator());
    String problem = null;
    if (base == null) {
      problem = "is not available";
    } else if (!base.id().equals(link.baseId())) {
      problem = "is image " + base.id() + ", but the clone was made from image " + link.baseId();
    } else if (base.header.generation() != link.baseGeneration()) {
      problem =
          "has changed since the clone was made (header generation "
              + base.header.generation()
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
    // Replay found records only if the newest header copy was lost; treat that as a crash too, so
    // the recovered mappings reach a table copy before new records overwrite the old ones.
    if (header.cleanShutdown() && recovered.replay().appliedRecords() == 0) {
      Header next = header.withCleanShutdown(false);
      next.writeTo(storage);
      header = next;
    } else {
      storage.resize(
          header.dataOffsetBytes() + chunks.allocator().frontier() * header.chunkSizeBytes());
      chunks.allocator().resetStorageBytes(storage.sizeBytes());
      writeMetadataCopy(header.flags() & ~Header.FLAG_CLEAN_SHUTDOWN);
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

  /**
   * Whether the image is marked read-only. A marked image can only be opened for reading, so its
   * header, and with it the identity its clones check, never changes while the mark is set.
   */
  public boolean isReadOnly() {
    return header.readOnly();
  }

  /**
   * Whether a failed flush has latched the image: it then refuses writes and flushes until it is
   * reopened, while reads go on. Costs no I/O, so monitoring may ask on every request.
   */
  public boolean isFailed() {
    return groupCommit.failure() != null;
  }

  /** When the image was created, in milliseconds since the epoch. */
  public long createdAtMillis() {
    return header.createdAtMillis();
  }

  /**
   * A token that changes with every change of the image's data or settings made through this open
   * image, and never repeats, also across restarts: image UUID, a random id of this open and the
   * {@link #modificationCount()}. For strong HTTP validators.
   */
  public String changeTag() {
    return header.imageId() + "-" + openId + "-" + modifications.get();
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
  public String description() {
    return storage.description();
  }

  /**
   * Reads {@code dst.remaining()} bytes of the virtual disk starting at {@code offsetBytes}.
   * Never-written bytes read as zeros, or as the base's bytes in a clone.
   *
   * @throws IllegalArgumentException if the range is not inside the virtual disk
   */
  public void read(long offsetBytes, ByteBuffer dst) throws IOException {
    lifecycle.lockShared();
    try {
      ensureOpen();
      checkRange(offsetBytes, dst.remaining());
      noteClientIo();
      int start = dst.position();
      boolean fromBase = readVirtual(offsetBytes, dst);
      if (fromBase && writable && header.copyOnRead() && groupCommit.failure() == null) {
        copyOnRead(offsetBytes, dst.duplicate().flip().position(start));
      }
    } finally {
      lifecycle.unlockShared();
    }
  }

  /**
   * Reads through the base where the bitmap says a block is still there, and from this image
   * elsewhere. Each run of blocks in the same state is one read.
   *
   * @return whether any byte came from the base
   */
  private boolean readVirtual(long offsetBytes, ByteBuffer dst) throws IOException {
    Header h = header;
    if (!h.dependsOnBase() || offsetBytes >= h.base().baseSizeBytes()) {
      chunks.read(offsetBytes, dst);
      return false;
    }
    long baseEnd = h.base().baseSizeBytes();
    long blockSize = h.blockSizeBytes();
    int end = dst.limit();
    long position = offsetBytes;
    boolean fromBase = false;
    try {
      while (dst.position() < end) {
        long stop = position + (end - dst.position());
        boolean inImage = true;
        if (position < baseEnd) {
          long block = position / blockSize;
          inImage = bitmap.isSet(block);
          long runEnd = (block + 1) * blockSize;
          while (runEnd < baseEnd && runEnd < stop && bitmap.isSet(runEnd / blockSize) == inImage) {
            runEnd += blockSize;
          }
          if (!inImage) {
            stop = Math.min(stop, Math.min(runEnd, baseEnd));
          } else if (runEnd < baseEnd) {
            stop = Math.min(stop, runEnd);
          } // else: past the base's end everything lives in this image, so the run goes on.
        }
        dst.limit(dst.position() + (int) (stop - position));
        if (inImage) {
          chunks.read(position, dst);
        } else {
          base.read(position, dst);
          fromBase = true;
        }
        dst.limit(end);
        position = stop;
      }
    } finally {
      dst.limit(end);
    }
    return fromBase;
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
        writeVirtual(offsetBytes, src);
      } finally {
        modifications.incrementAndGet();
      }
    } finally {
      lifecycle.unlockShared();
    }
  }

  /** Writes through the copy-on-write layer where blocks are still in the base. */
  private void writeVirtual(long offsetBytes, ByteBuffer src) throws IOException {
    Header h = header;
    if (!h.dependsOnBase() || offsetBytes >= h.base().baseSizeBytes()) {
      chunks.write(offsetBytes, src);
      return;
    }
    long baseEnd = h.base().baseSizeBytes();
    long blockSize = h.blockSizeBytes();
    int end = src.limit();
    long position = offsetBytes;
    try {
      while (src.position() < end) {
        long stop = position + (end - src.position());
        if (position < baseEnd) {
          long block = position / blockSize;
          if (!bitmap.isSet(block)) {
            stop = Math.min(stop, Math.min((block + 1) * blockSize, baseEnd));
            src.limit(src.position() + (int) (stop - position));
            copyOnWrite(block, position, src);
            src.limit(end);
            position = stop;
            continue;
          }
          long firstClear = bitmap.nextClear(block);
          if (firstClear < bitmap.blockCount()) {
            stop = Math.min(stop, firstClear * blockSize);
          }
        }
        src.limit(src.position() + (int) (stop - position));
        chunks.write(position, src);
        src.limit(end);
        position = stop;
      }
    } finally {
      src.limit(end);
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
      Header h = header;
      long end = offsetBytes + lengthBytes;
      long position = offsetBytes;
      try {
        long baseEnd = h.dependsOnBase() ? Math.min(end, h.base().baseSizeBytes()) : 0;
        while (position < baseEnd) {
          int n = (int) Math.min(ZEROS.capacity(), baseEnd - position);
          writeVirtual(position, ZEROS.duplicate().limit(n));
          position += n;
        }
        chunks.zeroAllocated(position, end - position);
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
      Header h = header;
      ChunkTable t = chunks.table();
      long chunkSize = h.chunkSizeBytes();
      long baseEnd = h.dependsOnBase() ? h.base().baseSizeBytes() : 0;
      long blockSize = Math.max(1, h.blockSizeBytes());
      long end = offsetBytes + lengthBytes;
      List<Extent> extents = new ArrayList<>();
      long runStart = offsetBytes;
      Extent.State runState = null;
      for (long position = offsetBytes; position < end; ) {
        Extent.State state;
        long next;
        if (position < baseEnd && !bitmap.isSet(position / blockSize)) {
          state = Extent.State.BASE;
          next = Math.min((position / blockSize + 1) * blockSize, baseEnd);
        } else {
          int chunkIndex = (int) (position / chunkSize);
          state = t.physicalChunk(chunkIndex) >= 0 ? Extent.State.DATA : Extent.State.ZERO;
          next = (chunkIndex + 1L) * chunkSize;
          if (position < baseEnd) {
            next = Math.min(next, (position / blockSize + 1) * blockSize);
          }
        }
        next = Math.min(next, end);
        if (runState != null && state != runState) {
          extents.add(new Extent(runStart, position - runStart, runState));
          if (extents.size() == maxExtents) {
            return extents;
          }
          runStart = position;
        }
        runState = state;
        position = next;
      }
      if (runState != null) {
        extents.add(new Extent(runStart, end - runStart, runState));
      }
      return extents;
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
   * Writes part of a block that is still in the base: under the block's lock, merges the block's
   * current content with {@code src}, stores the whole block, then sets its bit. The lock keeps a
   * copy-on-read or prefetch copy of the same block from writing base bytes over the new data.
   */
  private void copyOnWrite(long block, long offsetBytes, ByteBuffer src) throws IOException {
    ReentrantLock lock = blockLocks[(int) (block % blockLocks.length)];
    lock.lock();
    try {
      if (bitmap.isSet(block)) {
        chunks.write(offsetBytes, src);
        return;
      }
      long blockSize = header.blockSizeBytes();
      long blockStart = block * blockSize;
      // A block's bit covers only the part inside the base; the rest is this image's already.
      int blockBytes =
          (int) (Math.min(blockStart + blockSize, header.base().baseSizeBytes()) - blockStart);
      if (offsetBytes == blockStart && src.remaining() == blockBytes) {
        chunks.write(blockStart, src);
      } else {
        ByteBuffer whole = acquireMergeBuffer(blockBytes);
        try {
          readVirtual(blockStart, whole);
          whole.position((int) (offsetBytes - blockStart));
          whole.put(src);
          chunks.write(blockStart, whole.position(0).limit(blockBytes));
        } finally {
          releaseMergeBuffer(whole);
        }
      }
      publishBlock(block);
    } finally {
      lock.unlock();
    }
  }

  /**
   * A buffer of {@code bytes} for merging a partial block write with the block's old content: a
   * pooled direct buffer. A new heap array per copy-on-write cost a zeroed allocation, and the
   * channel copied it through a temporary direct buffer on both the read and the write. Images with
   * blocks over the pool limit get a heap buffer, so no image keeps much direct memory.
   */
  private ByteBuffer acquireMergeBuffer(int bytes) {
    return mergeBuffers == null ? ByteBuffer.allocate(bytes) : mergeBuffers.acquire().limit(bytes);
  }

  private void releaseMergeBuffer(ByteBuffer buffer) {
    if (mergeBuffers != null) {
      mergeBuffers.release(buffer);
    }
  }

  /**
   * Sets a block's bit once its data is in the image. Queued before it is set, for the same reason
   * as a new mapping: a writer that sees the bit and then flushes must find it in the queue.
   */
  private void publishBlock(long block) {
    unjournalledBlocks.add(block);
    bitmap.set(block);
    presentBlocks.incrementAndGet();
  }

  /**
   * Copy-on-read: stores the whole blocks of a base read in this image as well, unless their bits
   * were set meanwhile or too many copies are in flight already. A failed copy costs nothing but a
   * later re-read from the base, so errors are not passed to the reader.
   */
  private void copyOnRead(long offsetBytes, ByteBuffer data) {
    Header h = header;
    if (!h.dependsOnBase()) {
      return;
    }
    long blockSize = h.blockSizeBytes();
    long baseEnd = h.base().baseSizeBytes();
    long readEnd = Math.min(offsetBytes + data.remaining(), baseEnd);
    for (long block = Header.ceilDiv(offsetBytes, blockSize);
        block < bitmap.blockCount() && Math.min((block + 1) * blockSize, baseEnd) <= readEnd;
        block++) {
      if (bitmap.isSet(block)) {
        continue;
      }
      long blockStart = block * blockSize;
      int n = (int) Math.min(blockSize, baseEnd - blockStart);
      if (copyOnReadBytesInFlight.addAndGet(n) > copyOnReadLimitBytes) {
        copyOnReadBytesInFlight.addAndGet(-n);
        return;
      }
      try {
        int at = data.position() + (int) (blockStart - offsetBytes);
        storeBaseBlock(block, data.duplicate().position(at).limit(at + n));
      } catch (IOException | RuntimeException e) {
        // No space (the budget refused, or the file system is full) or a failed write: the block
        // stays in the base, and so do the rest of this read's.
        return;
      } finally {
        copyOnReadBytesInFlight.addAndGet(-n);
      }
    }
  }

  /**
   * Stores a block read from the base (a soft write) unless its bit is already set. The bit and the
   * chunk mapping are journalled with the next flush; a crash before that costs a re-copy.
   *
   * @return whether the block was copied
   */
  boolean copyIn(long block, ByteBuffer blockData) throws IOException {
    // The lifecycle lock keeps grow from swapping the table while the copy maps a chunk.
    lifecycle.lockShared();
    try {
      ensureOpen();
      return storeBaseBlock(block, blockData);
    } finally {
      lifecycle.unlockShared();
    }
  }

  /**
   * {@link #copyIn} for a caller that holds the lifecycle lock already.
   *
   * <p>A block of zeros over an unmapped chunk only gets its bit: a set bit over an unmapped chunk
   * reads as zeros, and a slot is zero-filled before it is first mapped, so the clone stays as thin
   * as its base. Over a mapped chunk the zeros are written all the same, because that slot may hold
   * the bytes of an earlier copy whose bit never became durable. A copy that would map a new chunk
   * asks the space budget first.
   *
   * @throws NoSpaceForCopyException when the budget refuses the space; nothing was written
   */
  private boolean storeBaseBlock(long block, ByteBuffer blockData) throws IOException {
    ReentrantLock lock = blockLocks[(int) (block % blockLocks.length)];
    lock.lock();
    try {
      if (bitmap.isSet(block) || !header.dependsOnBase()) {
        return false;
      }
      long offsetBytes = block * header.blockSizeBytes();
      int n = blockData.remaining();
      if (!chunks.isMapped(offsetBytes)) {
        if (isZero(blockData)) {
          publishBlock(block);
          return true;
        }
        String refusal = spaceRefusal();
        if (refusal != null) {
          throw new NoSpaceForCopyException(description(), refusal);
        }
      }
      chunks.write(offsetBytes, blockData);
      publishBlock(block);
      copiedFromBaseBytes.addAndGet(n);
      return true;
    } finally {
      lock.unlock();
    }
  }

  /** Whether every remaining byte of {@code data} is zero; leaves its position where it was. */
  static boolean isZero(ByteBuffer data) {
    for (int at = data.position(); at < data.limit(); at += ZEROS.capacity()) {
      int n = Math.min(ZEROS.capacity(), data.limit() - at);
      if (!data.slice(at, n).equals(ZEROS.duplicate().limit(n))) {
        return false;
      }
    }
    return true;
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
        groupCommit.commit();
      }
    } finally {
      lifecycle.unlockShared();
    }
  }

  /**
   * One group-commit round. Mappings are taken before the data force, so every slot they point at
   * (its zero-fill included) is durable before the record that points at it.
   */
  private void commitRound() throws IOException {
    ChunkTable t = chunks.table();
    // Blocks before mappings: a block's chunk mapping is queued before the block, so every block
    // taken here has its mapping taken in this round or an earlier one. The other order could
    // write a bit whose chunk a table switch leaves out.
    List<Long> blocks = new ArrayList<>();
    List<Long> unpublishedBlocks = new ArrayList<>();
    for (Long block; (block = unjournalledBlocks.poll()) != null; ) {
      (bitmap.isSet(block) ? blocks : unpublishedBlocks).add(block);
    }
    unjournalledBlocks.addAll(unpublishedBlocks);
    List<Integer> mappings = chunks.takeUnjournalledMappings();
    storage.force();
    if (mappings.isEmpty() && blocks.isEmpty()) {
      return;
    }
    long[] committingBlocks =
        blocks.stream().mapToLong(Long::longValue).sorted().distinct().toArray();
    Journal.Batch batch = journalBatch(t, mappings, committingBlocks);
    if (journal.fits(batch.mappingCount(), batch.rangeCount())) {
      journal.append(batch);
      storage.force();
      for (int chunkIndex : mappings) {
        t.markClean(chunkIndex);
      }
      for (long block : committingBlocks) {
        bitmap.markDurable(block);
      }
    } else {
      BitSet committable = new BitSet();
      mappings.forEach(committable::set);
      writeMetadataCopy(t, committable, committingBlocks, header.sizeBytes(), header.flags());
    }
  }

  /** The journal records for one round: the mappings, and the blocks merged into ranges. */
  private static Journal.Batch journalBatch(
      ChunkTable t, List<Integer> mappings, long[] sortedBlocks) {
    int[] chunkIndexes = mappings.stream().mapToInt(Integer::intValue).toArray();
    long[] physicalChunks = new long[chunkIndexes.length];
    for (int i = 0; i < chunkIndexes.length; i++) {
      physicalChunks[i] = t.physicalChunk(chunkIndexes[i]);
    }
    long[] firstBlocks = new long[sortedBlocks.length];
    int[] blockCounts = new int[sortedBlocks.length];
    int ranges = 0;
    for (long block : sortedBlocks) {
      if (ranges > 0
          && firstBlocks[ranges - 1] + blockCounts[ranges - 1] == block
          && blockCounts[ranges - 1] < Integer.MAX_VALUE) {
        blockCounts[ranges - 1]++;
      } else {
        firstBlocks[ranges] = block;
        blockCounts[ranges] = 1;
        ranges++;
      }
    }
    return new Journal.Batch(
        chunkIndexes, physicalChunks, chunkIndexes.length, firstBlocks, blockCounts, ranges);
  }

  /** Writes the whole table and bitmap, making only durable state and nothing new durable. */
  private void writeMetadataCopy(int flags) throws IOException {
    writeMetadataCopy(chunks.table(), new BitSet(), new long[0], header.sizeBytes(), flags);
  }

  /**
   * Writes table {@code t} and the bitmap to the inactive copies, then a header that switches to
   * them with {@code newFlags} and starts a new journal epoch. Until the header write completes the
   * old copies and the old journal stay in force, so a crash at any point leaves complete metadata.
   * Table entries in {@code committable} are written even if DIRTY and {@code committingBlocks} are
   * set in the bitmap copy (their data is durable); other DIRTY entries and fresh bits are left
   * out.
   */
  private void writeMetadataCopy(
      ChunkTable t, BitSet committable, long[] committingBlocks, long newSizeBytes, int newFlags)
      throws IOException {
    ByteBuffer encoded = t.encode(committable::get);
    int tableCrc = ChunkTable.crc(encoded);
    int target = 1 - header.activeTable();
    storage.write(encoded, header.tableOffset(target));
    int bitmapCrc = header.bitmapCrc();
    if (header.dependsOnBase()) {
      ByteBuffer bits = bitmap.encode(committingBlocks);
      bitmapCrc = Bitmap.crc(bits);
      storage.write(bits, header.bitmapOffset(target));
    }
    storage.force();
    Header next = header.withNewTable(target, tableCrc, bitmapCrc, newSizeBytes, newFlags);
    next.writeTo(storage);
    header = next;
    journal.restart(next.stableEpoch());
    for (int i = committable.nextSetBit(0); i >= 0; i = committable.nextSetBit(i + 1)) {
      t.markClean(i);
    }
    for (long block : committingBlocks) {
      bitmap.markDurable(block);
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
      ChunkTable grown = chunks.table().grownTo(newCount);
      try {
        writeMetadataCopy(
            grown,
            new BitSet(),
            new long[0],
            newSizeBytes,
            header.flags() & ~Header.FLAG_CLEAN_SHUTDOWN);
        chunks.replaceTable(grown);
        modifications.incrementAndGet();
      } catch (IOException | RuntimeException e) {
        groupCommit.fail(e);
        throw e;
      }
    } finally {
      lifecycle.unlockExclusive();
    }
  }

  private void startPrefetcher(boolean enabled, int startDelaySeconds) {
    Prefetcher p =
        new Prefetcher(
            this,
            bitmap,
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
    return presentBlocks.get();
  }

  /**
   * Notes client I/O for the prefetcher's quiet period, at most once a millisecond: a store on
   * every 4 KiB read makes the cores fight over the field's cache line, and the prefetcher waits
   * far longer than a millisecond anyway. Without a prefetcher nobody asks, so not even the clock
   * is read.
   */
  private void noteClientIo() {
    if (prefetcher == null) {
      return;
    }
    long now = System.nanoTime();
    if (now - lastClientIoNanos >= CLIENT_IO_NOTE_INTERVAL_NANOS) {
      lastClientIoNanos = now;
    }
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
      if (closed || !header.dependsOnBase()) {
        return false;
      }
      base.read(offsetBytes, dst);
      return true;
    } finally {
      lifecycle.unlockShared();
    }
  }

  /**
   * Why a copy from the base that maps a new chunk would be refused now; null when it would not.
   */
  @Nullable String spaceRefusal() {
    return spaceBudget.refusal(header.chunkSizeBytes());
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
      if (!header.dependsOnBase()) {
        return;
      }
      if (!bitmap.allSet()) {
        throw new IllegalStateException(description() + ": prefetch ended with blocks missing");
      }
      groupCommit.commit();
      try {
        writeMetadataCopy(header.flags() | Header.FLAG_STANDALONE);
        modifications.incrementAndGet();
      } catch (IOException | RuntimeException e) {
        groupCommit.fail(e);
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
      if (!header.dependsOnBase()) {
        return;
      }
      Header next = header.withPrefetch(enabled, startDelaySeconds);
      next.writeTo(storage);
      header = next;
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
      Header next = header.withFlag(Header.FLAG_COPY_ON_READ, enabled);
      next.writeTo(storage);
      header = next;
      modifications.incrementAndGet();
    } finally {
      lifecycle.unlockExclusive();
    }
  }

  /** Where prefetching stands; costs no I/O. */
  public PrefetchStatus prefetchStatus() {
    Header h = header;
    if (h.base() == null) {
      return PrefetchStatus.idle(PrefetchStatus.State.DISABLED, 0, 0);
    }
    long total = h.base().baseSizeBytes();
    if (h.standalone()) {
      return PrefetchStatus.idle(PrefetchStatus.State.DONE, total, total);
    }
    Prefetcher p = prefetcher;
    if (p == null) {
      long present = Math.min(total, presentBlocks.get() * h.blockSizeBytes());
      return PrefetchStatus.idle(PrefetchStatus.State.DISABLED, present, total);
    }
    return p.status();
  }

  /** The locator of the base this image reads through, or null when it depends on none. */
  public @Nullable String baseLocator() {
    Header h = header;
    return h.dependsOnBase() ? h.base().locator() : null;
  }

  /** The bitmap's block size in bytes, or 0 for an image created without a base. */
  public int blockSizeBytes() {
    return header.blockSizeBytes();
  }

  public boolean copyOnRead() {
    return header.copyOnRead();
  }

  public boolean prefetchEnabled() {
    return header.prefetchEnabled();
  }

  public int prefetchStartDelaySeconds() {
    return header.prefetchStartDelaySeconds();
  }

  /** Copy-on-read skips copies while this many bytes are in flight; for tuning and tests. */
  public void setCopyOnReadLimitBytes(long limitBytes) {
    this.copyOnReadLimitBytes = limitBytes;
  }

  /** Counters as of now; costs no I/O. */
  public ImageStats stats() {
    long fileBytes = chunks.allocator().storageBytes();
    return new ImageStats(
        header.sizeBytes(),
        header.chunkSizeBytes(),
        chunks.mappedChunks() * header.chunkSizeBytes(),
        chunks.allocator().reservedBytes(),
        fileBytes,
        chunks.allocator().leakedCount(),
        chunks.allocator().freeCount(),
        journal.usedSectors(),
        journal.sectorCount(),
        !recovered.header().cleanShutdown(),
        recovered.replay().appliedRecords(),
        recovered.replay().skippedSectors(),
        copyOnReadBytesInFlight.get(),
        copiedFromBaseBytes.get());
  }

  /**
   * Checks the open image: every mapped chunk inside the file and used once, leaked chunks listed.
   * With {@code repair}, leaked chunks become free chunks (reused before the file grows).
   */
  public CheckReport check(boolean repair) throws IOException {
    lifecycle.lockExclusive();
    try {
      ensureOpen();
      ChunkTable t = chunks.table();
      List<String> problems = new ArrayList<>();
      BitSet used = new BitSet();
      long frontier = chunks.allocator().frontier();
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
      List<Long> leaked = chunks.allocator().leakedChunks();
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
        Throwable failure = groupCommit.failure();
        if (failure != null) {
          throw new ImageFailedException(storage.description(), failure);
        }
        groupCommit.commit();
        writeMetadataCopy(header.flags() | Header.FLAG_CLEAN_SHUTDOWN);
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
