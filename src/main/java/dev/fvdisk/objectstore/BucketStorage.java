package dev.fvdisk.objectstore;

import dev.fvdisk.engine.io.Storage;
import dev.fvdisk.engine.spi.FencedException;
import dev.fvdisk.objectstore.LogRecord.Extent;
import dev.fvdisk.objectstore.LogRecord.Kind;
import dev.fvdisk.objectstore.LogRecord.PageVersion;
import java.io.EOFException;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.jspecify.annotations.Nullable;

/**
 * An image's bytes in a bucket, seen by the engine as one more {@link Storage}: the engine's own
 * format, journal and crash safety work on it unchanged, and the bucket holds what it forced.
 *
 * <p><b>Layout</b> (under the image's prefix; {@code docs/format.md}, "Images in a bucket"). The
 * storage is cut into pages (1 MiB). A page's content is an immutable object {@code
 * p/<page>/<seq>-<writer>}, or zeros, which are never uploaded, plus the bytes later records wrote
 * on top of it. The log {@code log/<seq>} is a dense sequence of records, each created only if its
 * key is free: one per {@link #force}, holding the pages uploaded in it, the small writes inline,
 * and the size. Now and then a record is a checkpoint: every page is then a whole object, and
 * {@code cp/<seq>-<writer>} lists them all, so that opening reads the newest checkpoint and the
 * records after it.
 *
 * <p><b>Durability.</b> Writes go to a local cache file, which is never forced: the bucket is the
 * durable copy. {@link #force} makes every write that completed before it durable with one round
 * trip when the writes are small (their bytes ride inline in the record), or one upload per mostly
 * rewritten page, in parallel, followed by the record. The record is the commit point: a crash
 * before it keeps none of the force's writes, after it all of them. Opening replays exactly the
 * records that were created, so what survives is always the content as of some force.
 *
 * <p><b>One writer.</b> Each writer has an epoch and a random token, and its first record (an epoch
 * record) takes the next sequence number. A writer only ever creates the key after its own last
 * record, so once another writer has taken the image, the old writer's next force finds the key
 * taken and fails with {@link FencedException}; none of its unforced writes becomes visible. The
 * storage is then unusable, like a file after a failed fsync.
 *
 * <p><b>Thread safety.</b> Reads run at once; writes to one page take turns with each other and
 * with a force reading that page, so a force keeps each write whole or not at all; a page being
 * fetched holds up only that page. Forces are serialized.
 */
public final class BucketStorage implements Storage {

  /**
   * How pages are cut and when records become checkpoints.
   *
   * @param pageBytes bytes per page (a new image only; an existing one keeps its own)
   * @param inlineBytesPerRecord most bytes of small writes carried inline in one record
   * @param checkpointAfterRecords records after which the next force writes a checkpoint
   * @param checkpointAfterInlineBytes inline bytes after which the next force writes a checkpoint
   * @param cache the local room this storage shares with the service's other storages
   * @param collectAfterMillis how old one of its own checkpoints must be before a writer deletes
   *     what that checkpoint made obsolete (older records, checkpoints and page objects): long
   *     enough for an open that began before it to have read what it needs
   * @param garbage where collections count what they did, shared like the cache
   */
  public record Settings(
      int pageBytes,
      int inlineBytesPerRecord,
      int checkpointAfterRecords,
      long checkpointAfterInlineBytes,
      PageCache cache,
      long collectAfterMillis,
      GarbageCounters garbage) {

    /**
     * The service's settings, with a cache of no bound: {@link #withCache} bounds it, and {@link
     * #withGarbageCounters} gives the service counters of its own.
     */
    public static final Settings DEFAULTS = new Settings(1 << 20, 1 << 20, 256, 32L << 20);

    public Settings {
      if (pageBytes < 4096 || Integer.bitCount(pageBytes) != 1) {
        throw new IllegalArgumentException("page size must be a power of two of 4 KiB or more");
      }
    }

    /** Settings whose storages share an unbounded cache and counters of their own. */
    public Settings(
        int pageBytes,
        int inlineBytesPerRecord,
        int checkpointAfterRecords,
        long checkpointAfterInlineBytes) {
      this(
          pageBytes,
          inlineBytesPerRecord,
          checkpointAfterRecords,
          checkpointAfterInlineBytes,
          PageCache.unbounded(),
          60_000,
          new GarbageCounters());
    }

    /** The same settings, with storages sharing {@code cache}. */
    public Settings withCache(PageCache cache) {
      return new Settings(
          pageBytes,
          inlineBytesPerRecord,
          checkpointAfterRecords,
          checkpointAfterInlineBytes,
          cache,
          collectAfterMillis,
          garbage);
    }

    /** The same settings, collecting garbage once a checkpoint is {@code millis} old. */
    public Settings withCollectionAfter(long millis) {
      return new Settings(
          pageBytes,
          inlineBytesPerRecord,
          checkpointAfterRecords,
          checkpointAfterInlineBytes,
          cache,
          millis,
          garbage);
    }

    /** The same settings, with storages counting their collections in {@code garbage}. */
    public Settings withGarbageCounters(GarbageCounters garbage) {
      return new Settings(
          pageBytes,
          inlineBytesPerRecord,
          checkpointAfterRecords,
          checkpointAfterInlineBytes,
          cache,
          collectAfterMillis,
          garbage);
    }
  }

  private static final SecureRandom TOKENS = new SecureRandom();

  /** Pages with inline bytes one force uploads whole when the cache is over its bound. */
  private static final int FOLDS_PER_FORCE = 64;

  /** Read where a page was never written, so that such reads cache nothing. */
  private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(65536).asReadOnlyBuffer();

  private final ObjectStore store;
  private final String prefix;
  private final String description;
  private final Settings settings;
  private final int pageBytes;
  private final boolean writable;
  private final Executor uploads;
  private final Path cacheFile;
  private final FileChannel cache;
  private final ConcurrentHashMap<Long, Page> pages = new ConcurrentHashMap<>();

  /** The pages with dirty ranges, so that a force need not look at every page. */
  private final java.util.Set<Page> dirtyPages = ConcurrentHashMap.newKeySet();

  /** The room this storage shares with the others, and its bounds. */
  private final PageCache sharedCache;

  /**
   * The cached pages in a second-chance clock, for eviction: a page is in it from when it gets a
   * slot; an evicted page leaves it, a dropped one is skipped and leaves when it comes round.
   */
  private final ConcurrentLinkedQueue<Page> clock = new ConcurrentLinkedQueue<>();

  private final AtomicInteger cachedPages = new AtomicInteger();

  /** Set while a force runs: it reads slots of pages it took as clean, so none is evicted. */
  private volatile boolean forcing;

  private final java.util.concurrent.atomic.AtomicBoolean unregistered =
      new java.util.concurrent.atomic.AtomicBoolean();

  private final AtomicLong sizeBytes = new AtomicLong();

  private final Object slots = new Object();
  private final ArrayDeque<Integer> freeSlots = new ArrayDeque<>();
  private int nextSlot;

  // Commit state: changed only by force (synchronized) and resize (synchronized), or at open.
  private final long writer;
  private long epoch;
  private long lastSeq;
  private long committedSize;
  private int recordsSinceCheckpoint;
  private long inlineBytesSinceCheckpoint;
  private final TreeSet<Long> droppedPages = new TreeSet<>();

  private volatile @Nullable Throwable failure;
  private volatile boolean closed;

  // Garbage collection, changed under this storage's monitor (by force).
  /** This writer's checkpoints not yet collected behind: seq and when (nanoTime) committed. */
  private final ArrayDeque<long[]> ownCheckpoints = new ArrayDeque<>();

  /**
   * Guards the two fields below. Not this storage's monitor: a collection ending on a transfer
   * thread takes it, and a force holds the monitor while it waits for transfer threads.
   */
  private final Object collectionLock = new Object();

  private long collectedBelow;
  private CompletableFuture<Void> collection = CompletableFuture.completedFuture(null);

  /** One page of the storage: its committed version, its cached copy and what is dirty in it. */
  private static final class Page {
    final long index;
    volatile int slot = -1; // in the cache file; -1 while not cached

    /** Raised when the page loses its slot, so a read racing that knows to read again. */
    volatile int generation;

    /** Used since the clock last came round; cleared by the clock (second chance). */
    volatile boolean referenced;

    // Guarded by this page.
    PageVersion version;
    @Nullable List<Extent> pendingExtents; // committed bytes on top of version, not yet cached
    long overlayBytes; // committed inline bytes on top of version
    final TreeMap<Integer, Integer> dirty = new TreeMap<>(); // start -> end in the page

    Page(long index) {
      this.index = index;
      this.version = PageVersion.zeros(index);
    }
  }

  private BucketStorage(
      ObjectStore store,
      String prefix,
      String name,
      Settings settings,
      int pageBytes,
      boolean writable,
      Executor uploads,
      Path cacheFile)
      throws IOException {
    this.store = store;
    this.prefix = prefix;
    this.description = name.equals(prefix) ? "bucket:" + prefix : name + " (bucket:" + prefix + ")";
    this.settings = settings;
    this.pageBytes = pageBytes;
    this.writable = writable;
    this.uploads = uploads;
    this.cacheFile = cacheFile;
    this.writer = TOKENS.nextLong() & Long.MAX_VALUE;
    this.sharedCache = settings.cache();
    Files.createDirectories(cacheFile.toAbsolutePath().getParent());
    this.cache =
        FileChannel.open(
            cacheFile,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.READ,
            StandardOpenOption.WRITE);
    sharedCache.register(this);
  }

  /**
   * Starts an empty storage under {@code prefix}.
   *
   * @param cacheFile a local file this storage alone uses while open (replaced, deleted at close)
   * @param uploads runs the page uploads of one force in parallel
   * @throws java.nio.file.FileAlreadyExistsException if the prefix already holds a log
   */
  public static BucketStorage create(
      ObjectStore store, String prefix, Path cacheFile, Executor uploads, Settings settings)
      throws IOException {
    return create(store, prefix, prefix, cacheFile, uploads, settings);
  }

  /**
   * Starts an empty storage as {@link #create(ObjectStore, String, Path, Executor, Settings)} does;
   * messages name it by {@code name}.
   */
  public static BucketStorage create(
      ObjectStore store,
      String prefix,
      String name,
      Path cacheFile,
      Executor uploads,
      Settings settings)
      throws IOException {
    BucketStorage s =
        new BucketStorage(
            store, prefix, name, settings, settings.pageBytes(), true, uploads, cacheFile);
    s.epoch = 1;
    s.recordsSinceCheckpoint = 1;
    LogRecord first =
        new LogRecord(Kind.EPOCH, 0, 1, s.writer, s.pageBytes, 0, List.of(), List.of(), 0);
    if (!store.putIfAbsent(s.logKey(0), first.encode())) {
      s.closeQuietly();
      throw new java.nio.file.FileAlreadyExistsException(prefix + " already holds an image");
    }
    return s;
  }

  /**
   * Opens the storage under {@code prefix} from what its log made durable, with an empty cache. For
   * writing, it takes the image over: its epoch record fences every earlier writer.
   *
   * @throws FileNotFoundException if the prefix holds no log
   * @throws FencedException if another writer appended while this one opened
   */
  public static BucketStorage open(
      ObjectStore store,
      String prefix,
      Path cacheFile,
      boolean writable,
      Executor uploads,
      Settings settings)
      throws IOException {
    return open(store, prefix, prefix, cacheFile, writable, uploads, settings);
  }

  /**
   * Opens the storage as {@link #open(ObjectStore, String, Path, boolean, Executor, Settings)}
   * does; messages name it by {@code name}.
   */
  public static BucketStorage open(
      ObjectStore store,
      String prefix,
      String name,
      Path cacheFile,
      boolean writable,
      Executor uploads,
      Settings settings)
      throws IOException {
    Recovered recovered = Recovered.load(store, prefix);
    BucketStorage s =
        new BucketStorage(
            store, prefix, name, settings, recovered.pageBytes, writable, uploads, cacheFile);
    try {
      s.replay(recovered);
      if (writable) {
        s.epoch = recovered.epoch + 1;
        long seq = recovered.lastSeq + 1;
        LogRecord taken =
            new LogRecord(
                Kind.EPOCH,
                seq,
                s.epoch,
                s.writer,
                s.pageBytes,
                s.committedSize,
                List.of(),
                List.of(),
                0);
        if (!store.putIfAbsent(s.logKey(seq), taken.encode())) {
          throw new FencedException(prefix + ": another writer took the image while it opened");
        }
        s.lastSeq = seq;
        s.recordsSinceCheckpoint++;
      }
      return s;
    } catch (IOException | RuntimeException e) {
      s.closeQuietly();
      throw e;
    }
  }

  // ---- reads and writes ------------------------------------------------------------------------

  @Override
  public void read(ByteBuffer dst, long positionBytes) throws IOException {
    ensureOpen();
    long size = sizeBytes.get();
    if (positionBytes < 0 || positionBytes + dst.remaining() > size) {
      throw new EOFException(
          description()
              + ": read of "
              + dst.remaining()
              + " bytes at offset "
              + positionBytes
              + " hits end");
    }
    long position = positionBytes;
    while (dst.hasRemaining()) {
      long index = position / pageBytes;
      int inPage = (int) (position % pageBytes);
      int n = Math.min(dst.remaining(), pageBytes - inPage);
      ByteBuffer part = dst.slice(dst.position(), n);
      Page page = pages.get(index);
      if (page == null || isUncachedZeros(page)) {
        while (part.hasRemaining()) {
          part.put(ZEROS.duplicate().limit(Math.min(part.remaining(), ZEROS.capacity())));
        }
      } else {
        while (true) {
          int generation = page.generation;
          readFully(cache, part, slotOffset(cached(page)) + inPage);
          if (page.generation == generation) {
            break;
          }
          part.clear(); // evicted while read: its slot may hold another page now
        }
      }
      dst.position(dst.position() + n);
      position += n;
    }
  }

  @Override
  public void write(ByteBuffer src, long positionBytes) throws IOException {
    ensureWritable();
    if (positionBytes < 0) {
      throw new IOException(description() + ": negative write offset " + positionBytes);
    }
    long position = positionBytes;
    while (src.hasRemaining()) {
      long index = position / pageBytes;
      int inPage = (int) (position % pageBytes);
      int n = Math.min(src.remaining(), pageBytes - inPage);
      Page page = pages.computeIfAbsent(index, Page::new);
      while (true) {
        int slot = cached(page);
        // Under the page's lock, so that a force reads each write to the page whole or not at
        // all, and no eviction takes the slot: a clean page may lose it before the lock.
        synchronized (page) {
          if (page.slot != slot) {
            continue;
          }
          writeFully(cache, src.slice(src.position(), n), slotOffset(slot) + inPage);
          markDirty(page.dirty, inPage, inPage + n);
          if (dirtyPages.add(page)) {
            sharedCache.dirtied(pageBytes);
          }
        }
        break;
      }
      src.position(src.position() + n);
      position += n;
    }
    long end = position;
    sizeBytes.accumulateAndGet(end, Math::max);
    waitForRoom();
  }

  /**
   * Backpressure: when the service's dirty pages are past their limit, a writer forces its own
   * storage before it goes on, so writes never outrun uploads by more than the limit (and the
   * writes of each writer in flight). A force too many only makes writes durable early, as a file's
   * kernel may write any dirty page back at any time.
   */
  private void waitForRoom() throws IOException {
    if (sharedCache.dirtyOverLimit() && !dirtyPages.isEmpty()) {
      force();
    }
  }

  @Override
  public synchronized void resize(long newSizeBytes) throws IOException {
    ensureWritable();
    long old = sizeBytes.get();
    if (newSizeBytes < old) {
      long firstDropped = ceilDiv(newSizeBytes, pageBytes);
      for (Map.Entry<Long, Page> e : pages.entrySet()) {
        if (e.getKey() >= firstDropped) {
          Page page = pages.remove(e.getKey());
          if (page != null) {
            synchronized (page) {
              if (page.slot >= 0) {
                page.generation++;
                freeSlot(page.slot);
                cachedPages.decrementAndGet();
                sharedCache.released(pageBytes);
              }
              page.slot = -1;
              if (dirtyPages.remove(page)) {
                sharedCache.cleaned(pageBytes);
              }
            }
            droppedPages.add(page.index);
          }
        }
      }
      int tail = (int) (newSizeBytes % pageBytes);
      Page last = tail == 0 ? null : pages.get(newSizeBytes / pageBytes);
      while (last != null) {
        int slot = cached(last);
        synchronized (last) {
          if (last.slot != slot) {
            continue; // evicted meanwhile
          }
          writeFully(cache, ByteBuffer.allocate(pageBytes - tail), slotOffset(slot) + tail);
          markDirty(last.dirty, tail, pageBytes);
          if (dirtyPages.add(last)) {
            sharedCache.dirtied(pageBytes);
          }
        }
        break;
      }
    }
    sizeBytes.set(newSizeBytes);
  }

  @Override
  public long sizeBytes() throws IOException {
    ensureOpen();
    return sizeBytes.get();
  }

  @Override
  public String description() {
    return description;
  }

  // ---- force: the commit -----------------------------------------------------------------------

  @Override
  public synchronized void force() throws IOException {
    ensureWritable();
    forcing = true;
    try {
      commit(false);
    } catch (IOException | RuntimeException | Error e) {
      failure = e;
      throw e;
    } finally {
      forcing = false;
    }
    // Pages this force cached (to fold them) could not be evicted while it ran; they are clean now.
    sharedCache.trim();
  }

  /** A page one commit writes: whole, or the dirty ranges taken from it. */
  private record Work(Page page, TreeMap<Integer, Integer> ranges, long dirtyBytes) {}

  private void commit(boolean checkpointNow) throws IOException {
    List<Work> work = new ArrayList<>();
    for (Page page : dirtyPages) {
      synchronized (page) {
        // Under the page's lock, as writers add a page here: one that writes after this take
        // puts the page back for the next force.
        if (dirtyPages.remove(page)) {
          sharedCache.cleaned(pageBytes);
        }
        if (!page.dirty.isEmpty()) {
          TreeMap<Integer, Integer> taken = new TreeMap<>(page.dirty);
          page.dirty.clear();
          work.add(new Work(page, taken, bytesIn(taken)));
        }
      }
    }
    long size = sizeBytes.get();
    boolean checkpoint =
        checkpointNow
            || recordsSinceCheckpoint + 1 >= settings.checkpointAfterRecords()
            || inlineBytesSinceCheckpoint >= settings.checkpointAfterInlineBytes();
    if (work.isEmpty() && droppedPages.isEmpty() && size == committedSize && !checkpoint) {
      return;
    }
    long seq = lastSeq + 1;
    List<Work> whole = new ArrayList<>();
    List<Work> inline = new ArrayList<>();
    if (checkpoint) {
      // A checkpoint lists whole objects only: every page with bytes on top of its version is
      // folded into a new one.
      whole.addAll(work);
      for (Page page : pages.values()) {
        boolean folded;
        synchronized (page) {
          folded = page.overlayBytes > 0 || page.pendingExtents != null;
        }
        if (folded && work.stream().noneMatch(w -> w.page() == page)) {
          whole.add(new Work(page, new TreeMap<>(), 0));
        }
      }
    } else {
      work.sort(Comparator.comparingLong(Work::dirtyBytes).reversed());
      long inlineBudget = settings.inlineBytesPerRecord();
      for (Work w : work) {
        long overlay;
        synchronized (w.page()) {
          overlay = w.page().overlayBytes;
        }
        boolean mostlyRewritten = w.dirtyBytes() >= pageBytes / 4;
        boolean overlaysPileUp = overlay + w.dirtyBytes() > pageBytes / 2;
        if (mostlyRewritten || overlaysPileUp || w.dirtyBytes() > inlineBudget) {
          whole.add(w);
        } else {
          inline.add(w);
          inlineBudget -= w.dirtyBytes();
        }
      }
      if (sharedCache.overBound()) {
        // Pages with inline bytes on top of their object cannot be evicted: a fetch would bring
        // back only the object. With the cache full, fold some into whole objects now.
        int folds = 0;
        for (Page page : pages.values()) {
          if (folds >= FOLDS_PER_FORCE) {
            break;
          }
          boolean overlaid;
          synchronized (page) {
            overlaid = page.overlayBytes > 0 && page.slot >= 0;
          }
          if (overlaid && work.stream().noneMatch(w -> w.page() == page)) {
            whole.add(new Work(page, new TreeMap<>(), 0));
            folds++;
          }
        }
      }
    }

    List<CompletableFuture<PageVersion>> uploaded = new ArrayList<>();
    for (Work w : whole) {
      uploaded.add(CompletableFuture.supplyAsync(() -> upload(w.page(), seq), uploads));
    }
    List<Extent> extents = new ArrayList<>();
    long inlineBytes = 0;
    for (Work w : inline) {
      long pageStart = w.page().index * (long) pageBytes;
      int slot = cached(w.page());
      synchronized (w.page()) {
        for (Map.Entry<Integer, Integer> r : w.ranges().entrySet()) {
          ByteBuffer bytes = ByteBuffer.allocate(r.getValue() - r.getKey());
          readFully(cache, bytes, slotOffset(slot) + r.getKey());
          extents.add(new Extent(pageStart + r.getKey(), bytes.array()));
          inlineBytes += bytes.capacity();
        }
      }
    }
    List<PageVersion> versions = new ArrayList<>();
    for (long index : droppedPages) {
      versions.add(PageVersion.zeros(index));
    }
    List<PageVersion> fresh = new ArrayList<>();
    for (CompletableFuture<PageVersion> f : uploaded) {
      fresh.add(join(f));
    }
    versions.addAll(fresh);

    int checkpointCrc = 0;
    if (checkpoint) {
      TreeMap<Long, PageVersion> all = new TreeMap<>();
      for (Page page : pages.values()) {
        synchronized (page) {
          all.put(page.index, page.version);
        }
      }
      for (PageVersion v : fresh) {
        all.put(v.index(), v);
      }
      List<PageVersion> nonZero = new ArrayList<>();
      for (PageVersion v : all.values()) {
        if (!v.isZeros() && v.index() < ceilDiv(size, pageBytes)) {
          nonZero.add(v);
        }
      }
      ByteBuffer cp = new LogRecord.Checkpoint(seq, writer, pageBytes, size, nonZero).encode();
      checkpointCrc = Crc32c.value(cp);
      store.put(checkpointKey(seq, writer), cp);
    }

    LogRecord record =
        new LogRecord(
            checkpoint ? Kind.CHECKPOINT : Kind.COMMIT,
            seq,
            epoch,
            writer,
            pageBytes,
            size,
            versions,
            extents,
            checkpointCrc);
    if (!store.putIfAbsent(logKey(seq), record.encode())) {
      throw new FencedException(
          description() + ": record " + seq + " was taken by another writer; this one is fenced");
    }

    lastSeq = seq;
    committedSize = size;
    droppedPages.clear();
    for (PageVersion v : fresh) {
      Page page = pages.get(v.index());
      if (page != null) {
        synchronized (page) {
          page.version = v;
          page.overlayBytes = 0;
        }
      }
    }
    for (Work w : inline) {
      synchronized (w.page()) {
        w.page().overlayBytes += w.dirtyBytes();
      }
    }
    if (checkpoint) {
      recordsSinceCheckpoint = 0;
      inlineBytesSinceCheckpoint = 0;
      ownCheckpoints.add(new long[] {seq, System.nanoTime()});
    } else {
      recordsSinceCheckpoint++;
      inlineBytesSinceCheckpoint += inlineBytes;
    }
    collectIfDue();
  }

  // ---- garbage collection ----------------------------------------------------------------------

  /**
   * Collects, in the background, what the newest of this writer's checkpoints that is old enough
   * made obsolete; one collection at a time. A checkpoint that comes due while one runs is not
   * dropped: the running collection starts the next when it ends, so the garbage left behind is
   * bounded by the checkpoint interval, not by how slow the store was. The caller holds this
   * storage's monitor.
   */
  private void collectIfDue() {
    long graceNanos = settings.collectAfterMillis() * 1_000_000L;
    long now = System.nanoTime();
    long below = 0;
    while (!ownCheckpoints.isEmpty() && now - ownCheckpoints.peekFirst()[1] >= graceNanos) {
      below = ownCheckpoints.pollFirst()[0];
    }
    synchronized (collectionLock) {
      if (below <= collectedBelow) {
        return;
      }
      collectedBelow = below;
      if (collection.isDone()) {
        startCollection();
      }
    }
  }

  /** Starts collecting behind {@link #collectedBelow}; the caller holds {@link #collectionLock}. */
  private void startCollection() {
    long checkpoint = collectedBelow;
    collection =
        CompletableFuture.runAsync(() -> collect(checkpoint), uploads)
            .thenRun(
                () -> {
                  synchronized (collectionLock) {
                    if (collectedBelow > checkpoint) {
                      startCollection();
                    }
                  }
                });
  }

  /**
   * Deletes every record and checkpoint before checkpoint {@code seq}, and every page object older
   * than it that it does not list. Nothing an open needs goes: an open starts at the newest
   * checkpoint whose record exists, which is this one or newer, and every page version in force at
   * or after it is either listed by it or newer than it. Only an open that chose an older
   * checkpoint before this one existed could miss something, which is what the grace period of
   * {@link Settings#collectAfterMillis} is for. A failure leaves the garbage to the next
   * collection.
   */
  private void collect(long seq) {
    settings.garbage().ran();
    try {
      String cpKey = checkpointKey(seq, writer);
      ByteBuffer data = store.get(cpKey);
      if (data == null) {
        return;
      }
      java.util.Set<String> listed = new java.util.HashSet<>();
      for (PageVersion v : LogRecord.Checkpoint.decode(cpKey, data).pages()) {
        if (!v.isZeros()) {
          listed.add(pageKey(v.index(), v.seq(), v.writer()));
        }
      }
      deleteBefore(prefix + "log/", seq, null);
      deleteBefore(prefix + "cp/", seq, null);
      deleteBefore(prefix + "p/", seq, listed);
    } catch (IOException | RuntimeException e) {
      // The next checkpoint's collection deletes it all the same.
    }
  }

  /** Deletes the keys under {@code dir} whose seq is below {@code seq} and that are not kept. */
  private void deleteBefore(String dir, long seq, java.util.@Nullable Set<String> kept)
      throws IOException {
    for (String key : store.list(dir)) {
      // log/<seq>, cp/<seq>-<writer>, p/<page>/<seq>-<writer>
      String tail = key.substring(dir.length());
      Long keySeq = LogRecord.seqOfKey(tail.substring(tail.indexOf('/') + 1), "");
      if (keySeq != null && keySeq < seq && (kept == null || !kept.contains(key))) {
        store.delete(key);
        settings.garbage().deleted();
      }
    }
  }

  /** Waits for the collections under way and those they start, if any; for tests. */
  void awaitCollection() {
    while (true) {
      CompletableFuture<Void> running;
      synchronized (collectionLock) {
        running = collection;
      }
      running.join();
      synchronized (collectionLock) {
        if (collection == running) {
          return;
        }
      }
    }
  }

  /** Uploads a page's cached content as its version of record {@code seq}; zeros stay home. */
  private PageVersion upload(Page page, long seq) {
    try {
      ByteBuffer content = ByteBuffer.allocate(pageBytes);
      int slot = cached(page);
      synchronized (page) {
        readFully(cache, content, slotOffset(slot));
      }
      content.flip();
      if (isAllZeros(content)) {
        return PageVersion.zeros(page.index);
      }
      int crc = Crc32c.value(content);
      store.put(pageKey(page.index, seq, writer), content);
      return new PageVersion(page.index, seq, writer, crc);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  // ---- the cache -------------------------------------------------------------------------------

  private boolean isUncachedZeros(Page page) {
    if (page.slot >= 0) {
      return false;
    }
    synchronized (page) {
      return page.slot < 0 && page.version.isZeros() && page.pendingExtents == null;
    }
  }

  /**
   * The page's slot in the cache file, fetching the page first if it is not cached. A clean page
   * may lose its slot to eviction at any time after this returns: a reader checks the page's
   * generation after it read, a writer the slot under the page's lock.
   */
  private int cached(Page page) throws IOException {
    int slot = page.slot;
    if (slot >= 0) {
      page.referenced = true;
      sharedCache.hit();
      return slot;
    }
    // Room first, while this thread holds no page's lock: making room evicts other pages, each
    // under its own lock, and this page, not cached yet, cannot be among them.
    sharedCache.admitted(pageBytes);
    boolean used = false;
    try {
      synchronized (page) {
        if (page.slot >= 0) {
          page.referenced = true;
          return page.slot;
        }
        int s = fill(page);
        used = true;
        return s;
      }
    } finally {
      if (!used) {
        sharedCache.released(pageBytes);
      }
    }
  }

  /** Gives the page a slot and its content; the caller holds the page's lock. */
  private int fill(Page page) throws IOException {
    int s = allocateSlot();
    try {
      ByteBuffer content = ByteBuffer.allocate(pageBytes);
      if (!page.version.isZeros()) {
        sharedCache.fetched();
        content = fetch(page.version);
      }
      writeFully(cache, content, slotOffset(s));
      if (page.pendingExtents != null) {
        for (Extent e : page.pendingExtents) {
          int inPage = (int) (e.offset() - page.index * (long) pageBytes);
          writeFully(cache, ByteBuffer.wrap(e.bytes()), slotOffset(s) + inPage);
        }
        page.pendingExtents = null;
      }
    } catch (IOException | RuntimeException e) {
      freeSlot(s);
      throw e;
    }
    page.referenced = true;
    page.slot = s;
    cachedPages.incrementAndGet();
    clock.add(page);
    return s;
  }

  /**
   * Evicts one clean page, chosen by the clock: a page used since the clock last passed it gets a
   * second chance. Never while a force runs, and never a page whose content the bucket does not
   * hold as a whole object (dirty, or with inline bytes on top). Called by the {@link PageCache}
   * from any thread that needs room, holding no page's lock.
   *
   * @return whether a page was evicted
   */
  boolean evictOne() {
    if (forcing || closed) {
      return false;
    }
    // Twice round the clock: the first pass may only clear the pages' marks.
    int turns = 2 * cachedPages.get() + 1;
    while (turns > 0) {
      Page page = clock.poll();
      if (page == null) {
        return false;
      }
      if (page.slot < 0 || pages.get(page.index) != page) {
        continue; // evicted or dropped: it leaves the clock, and costs no turn
      }
      turns--;
      if (page.referenced) {
        page.referenced = false;
        clock.add(page);
        continue;
      }
      if (evict(page)) {
        return true;
      }
      clock.add(page);
    }
    return false;
  }

  /** Cached pages that cannot be evicted now (dirty, or with inline bytes on top); for tests. */
  int pinnedPages() {
    int pinned = 0;
    for (Page page : pages.values()) {
      synchronized (page) {
        if (page.slot >= 0 && (!page.dirty.isEmpty() || page.overlayBytes > 0)) {
          pinned++;
        }
      }
    }
    return pinned;
  }

  private boolean evict(Page page) {
    synchronized (page) {
      boolean clean =
          page.slot >= 0
              && page.dirty.isEmpty()
              && page.overlayBytes == 0
              && page.pendingExtents == null
              && !dirtyPages.contains(page);
      if (forcing || !clean) {
        return false;
      }
      int slot = page.slot;
      page.generation++;
      page.slot = -1;
      freeSlot(slot);
      cachedPages.decrementAndGet();
    }
    sharedCache.released(pageBytes);
    return true;
  }

  private ByteBuffer fetch(PageVersion version) throws IOException {
    String key = pageKey(version.index(), version.seq(), version.writer());
    ByteBuffer content = store.get(key);
    if (content == null) {
      throw new IOException(description() + ": page object " + key + " is missing");
    }
    if (content.remaining() != pageBytes || Crc32c.value(content) != version.crc()) {
      throw new CorruptObjectException(
          description() + ": page object " + key + " is not the one its record names");
    }
    return content;
  }

  private int allocateSlot() {
    synchronized (slots) {
      Integer free = freeSlots.poll();
      return free != null ? free : nextSlot++;
    }
  }

  private void freeSlot(int slot) {
    synchronized (slots) {
      freeSlots.add(slot);
    }
  }

  private long slotOffset(int slot) {
    return (long) slot * pageBytes;
  }

  // ---- opening: replaying the log --------------------------------------------------------------

  /** What the bucket holds for one image: the checkpoint to start from and the records after. */
  private record Recovered(
      int pageBytes,
      long epoch,
      long lastSeq,
      LogRecord.@Nullable Checkpoint checkpoint,
      List<LogRecord> records) {

    static Recovered load(ObjectStore store, String prefix) throws IOException {
      TreeSet<Long> seqs = new TreeSet<>();
      for (String key : store.list(prefix + "log/")) {
        Long seq = LogRecord.seqOfKey(key, prefix + "log/");
        if (seq != null) {
          seqs.add(seq);
        }
      }
      if (seqs.isEmpty()) {
        throw new FileNotFoundException(prefix + " holds no image");
      }
      LogRecord.Checkpoint checkpoint = null;
      LogRecord checkpointRecord = null;
      List<String> checkpointKeys = new ArrayList<>(store.list(prefix + "cp/"));
      checkpointKeys.sort(Comparator.reverseOrder());
      for (String key : checkpointKeys) {
        Long seq = LogRecord.seqOfKey(key, prefix + "cp/");
        if (seq == null || !seqs.contains(seq)) {
          continue;
        }
        LogRecord r = getRecord(store, prefix, seq);
        if (r.kind() != Kind.CHECKPOINT || !key.equals(checkpointKey(prefix, seq, r.writer()))) {
          continue; // a checkpoint whose record another writer took: never in force
        }
        ByteBuffer data = store.get(key);
        if (data == null || Crc32c.value(data) != r.checkpointCrc()) {
          throw new CorruptObjectException(key + " is not the checkpoint its record names");
        }
        checkpoint = LogRecord.Checkpoint.decode(key, data);
        checkpointRecord = r;
        break;
      }
      long first = checkpoint != null ? checkpoint.seq() + 1 : 0;
      if (checkpoint == null && seqs.first() != 0) {
        throw new CorruptObjectException(
            prefix + ": the log starts at record " + seqs.first() + " and no checkpoint covers it");
      }
      long last = seqs.last();
      List<LogRecord> records = new ArrayList<>();
      long epoch = checkpointRecord != null ? checkpointRecord.epoch() : 0;
      int pageBytes = checkpoint != null ? checkpoint.pageBytes() : 0;
      for (long seq = first; seq <= last; seq++) {
        if (!seqs.contains(seq)) {
          throw new CorruptObjectException(prefix + ": record " + seq + " of the log is missing");
        }
        LogRecord r = getRecord(store, prefix, seq);
        if (r.epoch() < epoch) {
          throw new CorruptObjectException(prefix + ": record " + seq + " has an older epoch");
        }
        epoch = r.epoch();
        if (pageBytes == 0) {
          pageBytes = r.pageBytes();
        } else if (pageBytes != r.pageBytes()) {
          throw new CorruptObjectException(prefix + ": record " + seq + " changes the page size");
        }
        records.add(r);
      }
      return new Recovered(pageBytes, epoch, last, checkpoint, records);
    }

    private static LogRecord getRecord(ObjectStore store, String prefix, long seq)
        throws IOException {
      String key = logKey(prefix, seq);
      ByteBuffer data = store.get(key);
      if (data == null) {
        throw new CorruptObjectException(prefix + ": record " + seq + " vanished while listed");
      }
      LogRecord r = LogRecord.decode(key, data);
      if (r.seq() != seq) {
        throw new CorruptObjectException(key + " holds record " + r.seq());
      }
      return r;
    }
  }

  private void replay(Recovered recovered) {
    if (recovered.checkpoint() != null) {
      for (PageVersion v : recovered.checkpoint().pages()) {
        pages.computeIfAbsent(v.index(), Page::new).version = v;
      }
      committedSize = recovered.checkpoint().sizeBytes();
      lastSeq = recovered.checkpoint().seq();
    }
    for (LogRecord r : recovered.records()) {
      for (PageVersion v : r.pages()) {
        Page page = pages.computeIfAbsent(v.index(), Page::new);
        page.version = v;
        page.pendingExtents = null;
        page.overlayBytes = 0;
      }
      for (Extent e : r.extents()) {
        long position = e.offset();
        int done = 0;
        while (done < e.bytes().length) {
          long index = position / pageBytes;
          int inPage = (int) (position % pageBytes);
          int n = Math.min(e.bytes().length - done, pageBytes - inPage);
          Page page = pages.computeIfAbsent(index, Page::new);
          if (page.pendingExtents == null) {
            page.pendingExtents = new ArrayList<>();
          }
          byte[] piece = java.util.Arrays.copyOfRange(e.bytes(), done, done + n);
          page.pendingExtents.add(new Extent(position, piece));
          page.overlayBytes += n;
          position += n;
          done += n;
        }
      }
      long firstBeyond = ceilDiv(r.sizeBytes(), pageBytes);
      pages.keySet().removeIf(index -> index >= firstBeyond);
      committedSize = r.sizeBytes();
      lastSeq = r.seq();
      if (r.kind() == Kind.CHECKPOINT) {
        recordsSinceCheckpoint = 0;
        inlineBytesSinceCheckpoint = 0;
      } else {
        recordsSinceCheckpoint++;
        inlineBytesSinceCheckpoint += r.inlineBytes();
      }
    }
    sizeBytes.set(committedSize);
  }

  // ---- keys ------------------------------------------------------------------------------------

  private String logKey(long seq) {
    return logKey(prefix, seq);
  }

  private static String logKey(String prefix, long seq) {
    return prefix + "log/" + String.format("%020d", seq);
  }

  private String checkpointKey(long seq, long writer) {
    return checkpointKey(prefix, seq, writer);
  }

  private static String checkpointKey(String prefix, long seq, long writer) {
    return prefix + "cp/" + String.format("%020d-%016x", seq, writer);
  }

  private String pageKey(long index, long seq, long writer) {
    return prefix + "p/" + String.format("%012d/%020d-%016x", index, seq, writer);
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  /**
   * Forces what is dirty (a local file keeps unforced writes across a close; so does this), then
   * drops the cache. A storage that failed or was fenced keeps nothing more.
   */
  @Override
  public synchronized void close() throws IOException {
    if (closed) {
      return;
    }
    try {
      if (writable && failure == null) {
        force();
      }
    } finally {
      closed = true;
      closeQuietly();
    }
  }

  /** Drops the storage as a killed process would: nothing more is forced, the cache is gone. */
  synchronized void abandon() {
    closed = true;
    closeQuietly();
  }

  private void closeQuietly() {
    if (unregistered.compareAndSet(false, true)) {
      sharedCache.unregister(
          this, (long) cachedPages.get() * pageBytes, (long) dirtyPages.size() * pageBytes);
    }
    try {
      cache.close();
      Files.deleteIfExists(cacheFile);
    } catch (IOException e) {
      // The cache holds nothing durable; a leftover file is replaced at the next open.
    }
  }

  private void ensureOpen() throws IOException {
    if (closed) {
      throw new IOException(description() + ": storage is closed");
    }
  }

  /**
   * Fences this storage from outside: its writer learned another took the image (a lease it could
   * not renew), so every later write and force fails at once rather than upload pages the log will
   * refuse. Reads still answer from what is cached and committed.
   */
  public void fence(String why) {
    if (failure == null) {
      failure = new FencedException(description() + ": " + why);
    }
  }

  private void ensureWritable() throws IOException {
    ensureOpen();
    if (!writable) {
      throw new IOException(description() + ": opened read-only");
    }
    Throwable failed = failure;
    if (failed != null) {
      if (failed instanceof FencedException fenced) {
        throw new FencedException(fenced.getMessage());
      }
      throw new IOException(description() + ": an earlier force failed: " + failed, failed);
    }
  }

  // ---- helpers ---------------------------------------------------------------------------------

  private static void markDirty(TreeMap<Integer, Integer> dirty, int start, int end) {
    Map.Entry<Integer, Integer> before = dirty.floorEntry(start);
    if (before != null && before.getValue() >= start) {
      start = before.getKey();
      end = Math.max(end, before.getValue());
    }
    Map.Entry<Integer, Integer> next = dirty.ceilingEntry(start);
    while (next != null && next.getKey() <= end) {
      end = Math.max(end, next.getValue());
      dirty.remove(next.getKey());
      next = dirty.ceilingEntry(start);
    }
    dirty.put(start, end);
  }

  private static long bytesIn(TreeMap<Integer, Integer> ranges) {
    long n = 0;
    for (Map.Entry<Integer, Integer> r : ranges.entrySet()) {
      n += r.getValue() - r.getKey();
    }
    return n;
  }

  private static boolean isAllZeros(ByteBuffer content) {
    ByteBuffer b = content.duplicate();
    while (b.remaining() >= 8) {
      if (b.getLong() != 0) {
        return false;
      }
    }
    while (b.hasRemaining()) {
      if (b.get() != 0) {
        return false;
      }
    }
    return true;
  }

  private static long ceilDiv(long a, long b) {
    return (a + b - 1) / b;
  }

  private static PageVersion join(CompletableFuture<PageVersion> f) throws IOException {
    try {
      return f.join();
    } catch (CompletionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof UncheckedIOException u) {
        throw u.getCause();
      }
      if (cause instanceof RuntimeException r) {
        throw r;
      }
      throw new IOException(cause);
    }
  }

  private static void readFully(FileChannel channel, ByteBuffer dst, long position)
      throws IOException {
    long at = position;
    while (dst.hasRemaining()) {
      int n = channel.read(dst, at);
      if (n < 0) {
        // Past the cache file's end: a slot never written, which holds zeros.
        while (dst.hasRemaining()) {
          dst.put((byte) 0);
        }
        return;
      }
      at += n;
    }
  }

  private static void writeFully(FileChannel channel, ByteBuffer src, long position)
      throws IOException {
    long at = position;
    while (src.hasRemaining()) {
      at += channel.write(src, at);
    }
  }
}
