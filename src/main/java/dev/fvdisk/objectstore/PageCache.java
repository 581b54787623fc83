package dev.fvdisk.objectstore;

import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * The local disk room that every open {@link BucketStorage} of a service shares for its cached
 * pages, and the bound on how much of it may be dirty (written, not yet forced).
 *
 * <p>When a storage caches one more page past {@link #maxBytes()}, the cache evicts clean pages,
 * one storage at a time in turn, each storage choosing by a second-chance clock, until it is back
 * under the bound. Only pages whose content the bucket holds as a whole object (or zeros) are
 * clean: a page with writes not yet forced, or with small writes that a record carries inline on
 * top of its object, stays. So the bound is soft: dirty pages and pages with inline bytes can take
 * the cache past it for a while. Two things bring it back: a writer that finds the dirty bytes of
 * all storages past {@link #dirtyLimitBytes()} forces its own storage before it goes on
 * (backpressure), and a force that finds the cache over its bound uploads pages with inline bytes
 * whole, which makes them clean.
 *
 * <p>Thread-safe. Storages register when they open and leave when they close.
 */
public final class PageCache {

  private final long maxBytes;
  private final long dirtyLimitBytes;
  private final AtomicLong cachedBytes = new AtomicLong();
  private final AtomicLong dirtyBytes = new AtomicLong();
  private final CopyOnWriteArrayList<BucketStorage> storages = new CopyOnWriteArrayList<>();
  private final AtomicInteger hand = new AtomicInteger();
  private final LongAdder hits = new LongAdder();
  private final LongAdder fetches = new LongAdder();
  private final LongAdder evictions = new LongAdder();

  /**
   * @param maxBytes the room for cached pages over all storages
   * @param dirtyLimitBytes how much of it may be dirty before writers wait for a force
   */
  public PageCache(long maxBytes, long dirtyLimitBytes) {
    if (maxBytes <= 0 || dirtyLimitBytes <= 0) {
      throw new IllegalArgumentException("cache bounds must be positive");
    }
    this.maxBytes = maxBytes;
    this.dirtyLimitBytes = dirtyLimitBytes;
  }

  /** A cache bounded by {@code maxBytes}, of which half may be dirty. */
  public static PageCache bounded(long maxBytes) {
    return new PageCache(maxBytes, Math.max(1, maxBytes / 2));
  }

  /** A cache without bounds: nothing is evicted and writers never wait. */
  public static PageCache unbounded() {
    return new PageCache(Long.MAX_VALUE, Long.MAX_VALUE);
  }

  public long maxBytes() {
    return maxBytes;
  }

  public long dirtyLimitBytes() {
    return dirtyLimitBytes;
  }

  /** Bytes of pages cached now, over all storages. */
  public long cachedBytes() {
    return cachedBytes.get();
  }

  /** Bytes of dirty pages now (whole pages, however little of each is dirty). */
  public long dirtyBytes() {
    return dirtyBytes.get();
  }

  /** Reads and writes of pages that were cached. */
  public long hits() {
    return hits.sum();
  }

  /** Pages fetched from the bucket because they were not cached. */
  public long fetches() {
    return fetches.sum();
  }

  /** Clean pages dropped to make room. */
  public long evictions() {
    return evictions.sum();
  }

  void register(BucketStorage storage) {
    storages.add(storage);
  }

  /** A storage closed; it gives back the room its pages took. */
  void unregister(BucketStorage storage, long itsCachedBytes, long itsDirtyBytes) {
    storages.remove(storage);
    cachedBytes.addAndGet(-itsCachedBytes);
    dirtyBytes.addAndGet(-itsDirtyBytes);
  }

  void hit() {
    hits.increment();
  }

  void fetched() {
    fetches.increment();
  }

  /**
   * A storage took room for one more page; makes room by evicting clean pages when the cache is
   * over its bound. The caller holds no page's lock, as eviction takes them one at a time.
   */
  void admitted(long bytes) {
    if (cachedBytes.addAndGet(bytes) > maxBytes) {
      makeRoom();
    }
  }

  /** Evicts clean pages if the cache is over its bound, as after a force made pages clean. */
  void trim() {
    if (cachedBytes.get() > maxBytes) {
      makeRoom();
    }
  }

  /** A storage dropped a page (evicted, or cut off by a shrink). */
  void released(long bytes) {
    cachedBytes.addAndGet(-bytes);
  }

  void dirtied(long bytes) {
    dirtyBytes.addAndGet(bytes);
  }

  void cleaned(long bytes) {
    dirtyBytes.addAndGet(-bytes);
  }

  boolean overBound() {
    return cachedBytes.get() > maxBytes;
  }

  boolean dirtyOverLimit() {
    return dirtyBytes.get() > dirtyLimitBytes;
  }

  /** Asks the storages in turn to evict one clean page each, until under the bound or none can. */
  private void makeRoom() {
    int idle = 0;
    while (cachedBytes.get() > maxBytes) {
      int n = storages.size();
      if (n == 0 || idle >= n) {
        return; // nothing clean anywhere: the bound is exceeded until forces clean pages
      }
      BucketStorage next;
      try {
        next = storages.get(Math.floorMod(hand.getAndIncrement(), n));
      } catch (IndexOutOfBoundsException e) {
        continue; // one left meanwhile
      }
      if (next.evictOne()) {
        evictions.increment();
        idle = 0;
      } else {
        idle++;
      }
    }
  }
}
