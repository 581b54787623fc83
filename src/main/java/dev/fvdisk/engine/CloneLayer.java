package dev.fvdisk.engine;

import dev.fvdisk.engine.io.DirectBufferPool;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongPredicate;
import org.jspecify.annotations.Nullable;

/**
 * The virtual disk as clients see it: the image's own chunks, and for a clone the base's bytes
 * wherever the bitmap says a block is still there. Every read, write, zero and extent request of
 * the image passes through here; copy-on-write, copy-on-read and the copies prefetching makes live
 * here and nowhere else. An image without a base passes everything straight to its {@link
 * ChunkStore}.
 *
 * <p>Knows nothing of the journal or the header; it queues each block whose bit it sets, for the
 * committer to take, exactly as the chunk store queues new mappings.
 *
 * <p><b>Locks.</b> Moving a block from the base (a copy-on-write merge, a copy-on-read or prefetch
 * copy) holds one of {@value #BLOCK_LOCK_STRIPES} block stripes, so a copy of base bytes never
 * lands over newer data. A thread holds at most one block stripe, and takes the chunk store's locks
 * only inside it.
 */
final class CloneLayer {

  private static final int BLOCK_LOCK_STRIPES = 64;
  private static final ByteBuffer ZEROS = ChunkStore.ZEROS;
  private static final int MERGE_BUFFER_POOL_LIMIT_BYTES = 256 << 10;
  private static final int RETAINED_MERGE_BUFFERS = 2;
  private static final long[] NO_BLOCKS = {};

  /** Copy-on-read skips copies while this many bytes are being copied already (FVD's default). */
  static final long DEFAULT_COPY_ON_READ_LIMIT_BYTES = 2_000_000;

  private final ChunkStore chunks;
  private final @Nullable BaseImage base;
  private final Bitmap bitmap;
  private final long baseEndBytes;
  private final long blockSizeBytes;
  private final SpaceBudget spaceBudget;
  private final String description;
  private final ReentrantLock[] blockLocks = new ReentrantLock[BLOCK_LOCK_STRIPES];
  private final @Nullable DirectBufferPool mergeBuffers;
  private final ConcurrentLinkedQueue<Long> unjournalledBlocks = new ConcurrentLinkedQueue<>();
  private final ConcurrentLinkedQueue<Long> unjournalledZeroBlocks = new ConcurrentLinkedQueue<>();
  private final AtomicLong presentBlocks;
  private final AtomicLong copyOnReadBytesInFlight = new AtomicLong();
  private final AtomicLong copiedFromBaseBytes = new AtomicLong();
  private volatile long copyOnReadLimitBytes = DEFAULT_COPY_ON_READ_LIMIT_BYTES;

  /** False for an image without a base, and once a clone has every block (standalone). */
  private volatile boolean dependsOnBase;

  /**
   * @param base the base the header links to, or null when the image does not depend on one
   */
  CloneLayer(
      ChunkStore chunks,
      @Nullable BaseImage base,
      Bitmap bitmap,
      Header header,
      SpaceBudget spaceBudget,
      String description) {
    this.chunks = chunks;
    this.base = base;
    this.bitmap = bitmap;
    this.dependsOnBase = base != null;
    this.baseEndBytes = base != null ? header.base().baseSizeBytes() : 0;
    this.blockSizeBytes = Math.max(1, header.blockSizeBytes());
    this.spaceBudget = spaceBudget;
    this.description = description;
    this.presentBlocks = new AtomicLong(bitmap.setCount());
    for (int i = 0; i < blockLocks.length; i++) {
      blockLocks[i] = new ReentrantLock();
    }
    this.mergeBuffers =
        base != null && blockSizeBytes <= MERGE_BUFFER_POOL_LIMIT_BYTES
            ? new DirectBufferPool((int) blockSizeBytes, RETAINED_MERGE_BUFFERS)
            : null;
  }

  boolean dependsOnBase() {
    return dependsOnBase;
  }

  /** Where the base's bytes end; blocks past it live in this image. */
  long baseEndBytes() {
    return baseEndBytes;
  }

  /**
   * Stops reading through the base; called once the header that says the clone is standalone is
   * durable, with every read and write held off.
   */
  void detachFromBase() {
    dependsOnBase = false;
  }

  /**
   * Shapes the walk's current piece into a run of blocks in one place, and says which: in this
   * image (true) or still in the base. Past the base's end everything lives in this image, so a run
   * in the image that reaches it goes on to the end of the range.
   */
  private boolean cutRun(RangeWalk w) {
    return cutRun(w, bitmap::isSet);
  }

  /** {@link #cutRun(RangeWalk)} by the bits {@code inImageBits} says are set. */
  private boolean cutRun(RangeWalk w, LongPredicate inImageBits) {
    if (w.position() >= baseEndBytes) {
      w.extendTo(Long.MAX_VALUE);
      return true;
    }
    boolean inImage = inImageBits.test(w.unit());
    w.extendWhile(block -> inImageBits.test(block) == inImage, baseEndBytes);
    if (!inImage) {
      w.cutAt(baseEndBytes);
    } else if (w.pieceEnd() >= baseEndBytes) {
      w.extendTo(Long.MAX_VALUE);
    }
    return inImage;
  }

  /**
   * Reads through the base where the bitmap says a block is still there, and from this image
   * elsewhere. Each run of blocks in the same place is one read.
   *
   * @return whether any byte came from the base
   */
  boolean read(long offsetBytes, ByteBuffer dst) throws IOException {
    if (!dependsOnBase || offsetBytes >= baseEndBytes) {
      chunks.read(offsetBytes, dst);
      return false;
    }
    int end = dst.limit();
    boolean fromBase = false;
    try {
      for (RangeWalk w = new RangeWalk(offsetBytes, dst.remaining(), blockSizeBytes);
          !w.done();
          w.next()) {
        boolean inImage = cutRun(w);
        dst.limit(dst.position() + w.intLength());
        if (inImage) {
          chunks.read(w.position(), dst);
        } else {
          base.read(w.position(), dst);
          fromBase = true;
        }
        dst.limit(end);
      }
    } finally {
      dst.limit(end);
    }
    return fromBase;
  }

  /**
   * Writes through copy-on-write where blocks are still in the base: a write that covers part of
   * such a block first merges the base's bytes, so the whole block moves at once.
   */
  void write(long offsetBytes, ByteBuffer src) throws IOException {
    if (!dependsOnBase || offsetBytes >= baseEndBytes) {
      chunks.write(offsetBytes, src);
      return;
    }
    int end = src.limit();
    try {
      for (RangeWalk w = new RangeWalk(offsetBytes, src.remaining(), blockSizeBytes);
          !w.done();
          w.next()) {
        if (cutRun(w)) {
          src.limit(src.position() + w.intLength());
          chunks.write(w.position(), src);
        } else {
          for (RangeWalk b = new RangeWalk(w.position(), w.length(), blockSizeBytes);
              !b.done();
              b.next()) {
            src.limit(src.position() + b.intLength());
            copyOnWrite(b.unit(), b.position(), src);
          }
        }
        src.limit(end);
      }
    } finally {
      src.limit(end);
    }
  }

  /**
   * Makes the range read as zeros, storing as little as it can. A chunk the range covers whole
   * loses its slot; inside the base's range its blocks are first recorded as zero blocks, so they
   * read as zeros rather than the base's bytes. Elsewhere in the base's range a whole block still
   * in the base becomes a zero block where its chunk has no slot, and gets zeros written where it
   * has one (that slot may hold bytes of a copy whose bit never became durable); partial blocks go
   * through copy-on-write with zeros.
   */
  void zero(long offsetBytes, long lengthBytes) throws IOException {
    if (!dependsOnBase || offsetBytes >= baseEndBytes) {
      chunks.zero(offsetBytes, lengthBytes);
      return;
    }
    long chunkSizeBytes = chunks.chunkSizeBytes();
    for (RangeWalk w = new RangeWalk(offsetBytes, lengthBytes, chunkSizeBytes);
        !w.done();
        w.next()) {
      if (w.position() >= baseEndBytes) {
        chunks.zero(w.position(), offsetBytes + lengthBytes - w.position());
        return;
      }
      if (w.length() == chunkSizeBytes) {
        zeroWholeChunk(w.position(), chunkSizeBytes);
      } else {
        zeroPartOfChunk(w.position(), w.length());
      }
    }
  }

  /**
   * Records every block of the chunk in the base's range as a zero block, each under its lock, and
   * then takes the chunk's slot away. After a block's bit is set no copy from the base can land in
   * it, and the committer journals the zero blocks no later than the unmapping (the unmapping is
   * queued after them), so a crash never leaves a block the clone held reading the base.
   */
  private void zeroWholeChunk(long chunkStart, long chunkSizeBytes) throws IOException {
    long end = Math.min(chunkStart + chunkSizeBytes, baseEndBytes);
    for (long block = chunkStart / blockSizeBytes; block * blockSizeBytes < end; block++) {
      ReentrantLock lock = blockLock(block);
      lock.lock();
      try {
        publishZeroBlock(block);
      } finally {
        lock.unlock();
      }
    }
    chunks.zero(chunkStart, chunkSizeBytes);
  }

  /** Zeroes part of one chunk that starts inside the base's range. */
  private void zeroPartOfChunk(long offsetBytes, long lengthBytes) throws IOException {
    long end = offsetBytes + lengthBytes;
    long inBaseEnd = Math.min(end, baseEndBytes);
    for (RangeWalk b = new RangeWalk(offsetBytes, inBaseEnd - offsetBytes, blockSizeBytes);
        !b.done();
        b.next()) {
      if (b.coversWholeUnit(baseEndBytes)) {
        zeroBlockInBase(b.unit(), b.position(), b.intLength());
      } else {
        write(b.position(), ZEROS.duplicate().limit(b.intLength()));
      }
    }
    if (inBaseEnd < end) {
      chunks.zero(inBaseEnd, end - inBaseEnd);
    }
  }

  /** Zeroes one whole block of the base's range ({@code lengthBytes} may end at the base's end). */
  private void zeroBlockInBase(long block, long offsetBytes, int lengthBytes) throws IOException {
    ReentrantLock lock = blockLock(block);
    lock.lock();
    try {
      if (bitmap.isSet(block)) {
        chunks.zero(offsetBytes, lengthBytes);
      } else if (!chunks.isMapped(offsetBytes)) {
        // A slot mapped for the chunk after this check is zero-filled, and no copy can write this
        // block while its lock is held: the bit reads as zeros either way.
        publishZeroBlock(block);
      } else {
        // The slot may hold a copy whose bit never became durable: store the zeros as the block.
        copyOnWrite(block, offsetBytes, ZEROS.duplicate().limit(lengthBytes));
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * Reads snapshot {@code snapshotId}. One taken while the clone read its base has a copy of the
   * bitmap, {@code bits}: it reads through the base where a block's bit is clear there, and from
   * the snapshot's chunk versions elsewhere (the base never changes, so the blocks it still had
   * then read as they did). One without ({@code bits} null) reads its chunk versions only.
   */
  void readSnapshot(int snapshotId, long @Nullable [] bits, long offsetBytes, ByteBuffer dst)
      throws IOException {
    if (bits == null) {
      chunks.readSnapshot(snapshotId, offsetBytes, dst);
      return;
    }
    int end = dst.limit();
    try {
      for (RangeWalk w = new RangeWalk(offsetBytes, dst.remaining(), blockSizeBytes);
          !w.done();
          w.next()) {
        boolean inImage = cutRun(w, block -> Bitmap.isSet(bits, block));
        dst.limit(dst.position() + w.intLength());
        if (inImage) {
          chunks.readSnapshot(snapshotId, w.position(), dst);
        } else {
          base.read(w.position(), dst);
        }
      }
    } finally {
      dst.limit(end);
    }
  }

  /** The extents of a snapshot read as {@link #readSnapshot} reads it: BASE, DATA or ZERO. */
  boolean snapshotExtents(
      int snapshotId, long @Nullable [] bits, long offsetBytes, long lengthBytes, ExtentList out) {
    if (bits == null) {
      return chunks.snapshotExtents(snapshotId, offsetBytes, lengthBytes, out);
    }
    for (RangeWalk w = new RangeWalk(offsetBytes, lengthBytes, blockSizeBytes);
        !w.done();
        w.next()) {
      boolean more =
          cutRun(w, block -> Bitmap.isSet(bits, block))
              ? chunks.snapshotExtents(snapshotId, w.position(), w.length(), out)
              : out.add(w.position(), w.length(), Extent.State.BASE);
      if (!more) {
        return false;
      }
    }
    return true;
  }

  /** The range's extents: BASE where blocks are still in the base, else as the chunks say. */
  List<Extent> extents(long offsetBytes, long lengthBytes, int maxExtents) {
    ExtentList out = new ExtentList(maxExtents);
    if (!dependsOnBase) {
      chunks.extents(offsetBytes, lengthBytes, out);
      return out.toList();
    }
    for (RangeWalk w = new RangeWalk(offsetBytes, lengthBytes, blockSizeBytes);
        !w.done();
        w.next()) {
      boolean more =
          cutRun(w)
              ? chunks.extents(w.position(), w.length(), out)
              : out.add(w.position(), w.length(), Extent.State.BASE);
      if (!more) {
        break;
      }
    }
    return out.toList();
  }

  /**
   * Writes part of a block that is still in the base: under the block's lock, merges the block's
   * current content with {@code src}, stores the whole block, then sets its bit. The lock keeps a
   * copy-on-read or prefetch copy of the same block from writing base bytes over the new data.
   */
  private void copyOnWrite(long block, long offsetBytes, ByteBuffer src) throws IOException {
    ReentrantLock lock = blockLock(block);
    lock.lock();
    try {
      if (bitmap.isSet(block)) {
        chunks.write(offsetBytes, src);
        return;
      }
      long blockStart = block * blockSizeBytes;
      // A block's bit covers only the part inside the base; the rest is this image's already.
      int blockBytes = (int) (Math.min(blockStart + blockSizeBytes, baseEndBytes) - blockStart);
      if (offsetBytes == blockStart && src.remaining() == blockBytes) {
        chunks.write(blockStart, src);
      } else {
        ByteBuffer whole = acquireMergeBuffer(blockBytes);
        try {
          read(blockStart, whole);
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

  private ReentrantLock blockLock(long block) {
    return blockLocks[(int) (block % blockLocks.length)];
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
   * Records a block as zero whatever its chunk holds (see {@link #zero}); queued before its bit is
   * set, like a present block. A block whose bit is set already is recorded too, because its chunk
   * may be about to lose its slot and a present block over an unmapped chunk does not survive
   * journal replay.
   */
  private void publishZeroBlock(long block) {
    unjournalledZeroBlocks.add(block);
    if (!bitmap.isSet(block)) {
      bitmap.set(block);
      presentBlocks.incrementAndGet();
    }
  }

  /**
   * Copy-on-read: stores the whole blocks of a base read in this image as well, unless their bits
   * were set meanwhile or too many copies are in flight already. A failed copy costs nothing but a
   * later re-read from the base, so errors are not passed to the reader.
   *
   * @param data the bytes read at {@code offsetBytes}, from position to limit
   */
  void copyOnRead(long offsetBytes, ByteBuffer data) {
    if (!dependsOnBase) {
      return;
    }
    long readEnd = Math.min(offsetBytes + data.remaining(), baseEndBytes);
    for (RangeWalk w = new RangeWalk(offsetBytes, readEnd - offsetBytes, blockSizeBytes);
        !w.done();
        w.next()) {
      if (!w.coversWholeUnit(baseEndBytes) || bitmap.isSet(w.unit())) {
        continue;
      }
      int n = w.intLength();
      if (copyOnReadBytesInFlight.addAndGet(n) > copyOnReadLimitBytes) {
        copyOnReadBytesInFlight.addAndGet(-n);
        return;
      }
      try {
        int at = data.position() + (int) (w.position() - offsetBytes);
        storeBaseBlock(w.unit(), data.duplicate().position(at).limit(at + n));
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
   * <p>A block of zeros over an unmapped chunk only gets its bit: a set bit over an unmapped chunk
   * reads as zeros, and a slot is zero-filled before it is first mapped, so the clone stays as thin
   * as its base. Over a mapped chunk the zeros are written all the same, because that slot may hold
   * the bytes of an earlier copy whose bit never became durable. A copy that would map a new chunk
   * asks the space budget first.
   *
   * @return whether the block was copied
   * @throws NoSpaceForCopyException when the budget refuses the space; nothing was written
   */
  boolean storeBaseBlock(long block, ByteBuffer blockData) throws IOException {
    ReentrantLock lock = blockLock(block);
    lock.lock();
    try {
      if (bitmap.isSet(block) || !dependsOnBase) {
        return false;
      }
      long offsetBytes = block * blockSizeBytes;
      int n = blockData.remaining();
      if (!chunks.isMapped(offsetBytes)) {
        if (isZero(blockData)) {
          publishBlock(block);
          return true;
        }
        String refusal = spaceRefusal();
        if (refusal != null) {
          throw new NoSpaceForCopyException(description, refusal);
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

  /** Reads base bytes for a prefetch copy; the caller holds the image's lifecycle lock. */
  void readBase(long offsetBytes, ByteBuffer dst) throws IOException {
    base.read(offsetBytes, dst);
  }

  /**
   * Why a copy from the base that maps a new chunk would be refused now; null when it would not.
   */
  @Nullable String spaceRefusal() {
    return spaceBudget.refusal(chunks.chunkSizeBytes());
  }

  /**
   * Takes the blocks whose bits are set but not journalled yet, sorted and each once. A block
   * queued but not yet set has no writer depending on it; it stays queued for its own flush.
   */
  long[] takeUnjournalledBlocks() {
    return takeSet(unjournalledBlocks);
  }

  private long[] takeSet(ConcurrentLinkedQueue<Long> queue) {
    if (queue.isEmpty()) {
      return NO_BLOCKS;
    }
    List<Long> blocks = new ArrayList<>();
    List<Long> unpublished = new ArrayList<>();
    for (Long block; (block = queue.poll()) != null; ) {
      (bitmap.isSet(block) ? blocks : unpublished).add(block);
    }
    queue.addAll(unpublished);
    return blocks.stream().mapToLong(Long::longValue).sorted().distinct().toArray();
  }

  /** Takes the zero blocks not journalled yet, like {@link #takeUnjournalledBlocks}. */
  long[] takeUnjournalledZeroBlocks() {
    return takeSet(unjournalledZeroBlocks);
  }

  Bitmap bitmap() {
    return bitmap;
  }

  /** Blocks of the base range that are in this image; kept current, so reading it costs nothing. */
  long presentBlocks() {
    return presentBlocks.get();
  }

  long copyOnReadBytesInFlight() {
    return copyOnReadBytesInFlight.get();
  }

  long copiedFromBaseBytes() {
    return copiedFromBaseBytes.get();
  }

  void setCopyOnReadLimitBytes(long limitBytes) {
    this.copyOnReadLimitBytes = limitBytes;
  }

  /**
   * Zero-block detection for a new clone: marks every all-zero block of the base as present, so it
   * is never read from the base again. Safe in a compact image because unallocated chunks read as
   * zeros and every chunk slot is zero-filled before first use.
   */
  static void markZeroBlocks(BaseImage base, Bitmap bitmap, int blockSizeBytes, long baseSizeBytes)
      throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(Math.min(blockSizeBytes, ZEROS.capacity()));
    for (RangeWalk block = new RangeWalk(0, baseSizeBytes, blockSizeBytes);
        !block.done();
        block.next()) {
      boolean zero = true;
      for (RangeWalk piece = new RangeWalk(block.position(), block.length(), buf.capacity());
          zero && !piece.done();
          piece.next()) {
        buf.clear().limit(piece.intLength());
        base.read(piece.position(), buf);
        zero = isZero(buf.flip());
      }
      if (zero) {
        bitmap.markDurable(block.unit());
      }
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
}
