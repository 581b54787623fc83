package dev.fvdisk.objectstore;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fvdisk.engine.spi.FencedException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What {@link BucketStorage} promises beyond the storage contract: after a crash (the process gone,
 * the cache with it) the bucket holds exactly the content as of the last force; a writer that lost
 * the image to another is fenced and none of its unforced writes shows; small writes ride in one
 * record; pages of zeros are never uploaded; a page object that is not the one its record names is
 * refused.
 */
class BucketStorageTest {

  private static final ExecutorService UPLOADS = Executors.newFixedThreadPool(4);
  private static final int PAGE = 4096;
  private static final BucketStorage.Settings SETTINGS =
      new BucketStorage.Settings(PAGE, 3 * PAGE, 5, 8 * PAGE);

  @TempDir Path cacheDir;
  private final InMemoryObjectStore store = new InMemoryObjectStore();
  private final AtomicInteger caches = new AtomicInteger();

  @AfterAll
  static void stopUploads() {
    UPLOADS.shutdownNow();
  }

  private Path cache() {
    return cacheDir.resolve(caches.incrementAndGet() + ".cache");
  }

  private BucketStorage create(String prefix) throws IOException {
    return create(prefix, SETTINGS);
  }

  private BucketStorage create(String prefix, BucketStorage.Settings settings) throws IOException {
    return BucketStorage.create(store, prefix, cache(), UPLOADS, settings);
  }

  private BucketStorage open(String prefix, boolean writable) throws IOException {
    return open(prefix, writable, SETTINGS);
  }

  private BucketStorage open(String prefix, boolean writable, BucketStorage.Settings settings)
      throws IOException {
    return BucketStorage.open(store, prefix, cache(), writable, UPLOADS, settings);
  }

  private static byte[] read(BucketStorage s, long at, int n) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(n);
    s.read(b, at);
    return b.array();
  }

  private static void write(BucketStorage s, long at, byte[] bytes) throws IOException {
    s.write(ByteBuffer.wrap(bytes), at);
  }

  private static byte[] filled(int n, int value) {
    byte[] b = new byte[n];
    Arrays.fill(b, (byte) value);
    return b;
  }

  /**
   * A random mix of writes across page boundaries, shrinks, grows, forces, crashes and clean
   * reopens, checked against a model of what a crash may keep: the content as of the last force.
   * Small settings make records into checkpoints every few forces and fold pages often.
   */
  @Test
  void after_any_crash_the_bucket_holds_the_content_of_the_last_force() throws IOException {
    int seeds = Integer.getInteger("fvdisk.bucket.seeds", 150);
    for (int seed = 0; seed < seeds; seed++) {
      runModel(seed, 200, SETTINGS);
    }
  }

  /**
   * The model again with room for two pages of the twelve: clean pages are evicted and fetched
   * again all the time, and only clean ones may go. No writer waits (the dirty limit is off), so
   * the last force alone decides what a crash keeps; after every read or write the cache is within
   * its bound, or holds only pages it may not evict (dirty, or with inline bytes on top).
   */
  @Test
  void a_cache_of_two_pages_evicts_only_what_the_bucket_holds() throws IOException {
    int seeds = Integer.getInteger("fvdisk.bucket.seeds", 150);
    long evictions = 0;
    for (int seed = 0; seed < seeds; seed++) {
      PageCache cache = new PageCache(2 * PAGE, Long.MAX_VALUE);
      runModel(seed, 200, SETTINGS.withCache(cache));
      assertThat(cache.cachedBytes()).as("seed %d: everything closed", seed).isZero();
      evictions += cache.evictions();
    }
    assertThat(evictions).isPositive();
  }

  /**
   * The model with garbage collection at every checkpoint (no grace period): what a collection
   * deletes is never needed again, whatever the crashes and reopens in between.
   */
  @Test
  void a_writer_collecting_its_garbage_keeps_the_content_of_the_last_force() throws IOException {
    int seeds = Integer.getInteger("fvdisk.bucket.seeds", 150);
    for (int seed = 0; seed < seeds; seed++) {
      runModel(2000 + seed, 200, SETTINGS.withCollectionAfter(0));
    }
  }

  /**
   * Pages rewritten again and again leave one object per live page and a few since the last
   * collected checkpoint; records and checkpoints before it go too; the image opens as it was. With
   * a grace period not yet over, nothing is deleted. The counters count every deletion.
   */
  @Test
  void garbage_behind_a_checkpoint_old_enough_is_deleted() throws IOException {
    for (long grace : new long[] {0, 3_600_000}) {
      String prefix = "gc-" + grace + "/";
      GarbageCounters garbage = new GarbageCounters();
      AtomicInteger deletes = new AtomicInteger();
      ObjectStore counted =
          new MeasuredObjectStore(
              store,
              (operation, succeeded, bytes, nanos) -> {
                if (operation == MeasuredObjectStore.Operation.DELETE && succeeded) {
                  deletes.incrementAndGet();
                }
              });
      BucketStorage s =
          BucketStorage.create(
              counted,
              prefix,
              cache(),
              UPLOADS,
              SETTINGS.withCollectionAfter(grace).withGarbageCounters(garbage));
      for (int round = 0; round < 40; round++) {
        write(s, (long) (round % 3) * PAGE, filled(PAGE, round + 1));
        s.force();
      }
      s.awaitCollection();
      int pageObjects = store.list(prefix + "p/").size();
      int records = store.list(prefix + "log/").size();
      int checkpoints = store.list(prefix + "cp/").size();
      assertThat(garbage.deletedObjects()).as("objects counted deleted").isEqualTo(deletes.get());
      if (grace == 0) {
        assertThat(pageObjects).as("page objects").isLessThanOrEqualTo(3 + 5);
        assertThat(records).as("records").isLessThanOrEqualTo(5);
        assertThat(checkpoints).as("checkpoints").isEqualTo(1);
        assertThat(garbage.runs()).as("collections").isPositive();
        // 40 page objects, 41 records and some checkpoints were written; all but these went.
        assertThat(garbage.deletedObjects())
            .as("objects collections deleted")
            .isGreaterThanOrEqualTo(40 + 41 - pageObjects - records);
      } else {
        assertThat(pageObjects).as("page objects within the grace period").isEqualTo(40);
        assertThat(records).as("records within the grace period").isEqualTo(41);
        assertThat(garbage.runs()).as("collections within the grace period").isZero();
      }
      s.abandon();
      BucketStorage reopened = open(prefix, false);
      for (int p = 0; p < 3; p++) {
        int last = 39 - (39 - p) % 3; // the last round that wrote page p
        assertThat(read(reopened, (long) p * PAGE, PAGE)).isEqualTo(filled(PAGE, last + 1));
      }
      reopened.close();
    }
  }

  private void runModel(int seed, int steps, BucketStorage.Settings settings) throws IOException {
    SplittableRandom random = new SplittableRandom(seed);
    String prefix = "model-" + seed + "/";
    int max = 12 * PAGE;
    byte[] current = new byte[0];
    byte[] durable = new byte[0];
    PageCache cache = settings.cache();
    BucketStorage s = create(prefix, settings);
    try {
      for (int step = 0; step < steps; step++) {
        String where = "seed " + seed + ", step " + step;
        int op = random.nextInt(100);
        if (op < 50) {
          int at = random.nextInt(max);
          int n = 1 + random.nextInt(random.nextInt(10) == 0 ? 3 * PAGE : 600);
          n = Math.min(n, max - at);
          byte[] bytes = new byte[n];
          if (random.nextInt(8) != 0) {
            random.nextBytes(bytes);
          }
          write(s, at, bytes);
          if (at + n > current.length) {
            current = Arrays.copyOf(current, at + n);
          }
          System.arraycopy(bytes, 0, current, at, n);
          assertWithinBound(cache, s, where);
        } else if (op < 58) {
          int size = random.nextInt(max);
          s.resize(size);
          current = Arrays.copyOf(current, size);
        } else if (op < 78) {
          s.force();
          durable = current.clone();
        } else if (op < 86) {
          s.abandon();
          s = open(prefix, true, settings);
          current = durable.clone();
        } else if (op < 90) {
          s.close();
          s = open(prefix, true, settings);
          durable = current.clone();
        } else {
          assertThat(s.sizeBytes()).as(where).isEqualTo(current.length);
          if (current.length > 0) {
            int at = random.nextInt(current.length);
            int n = 1 + random.nextInt(current.length - at);
            assertThat(read(s, at, n)).as(where).isEqualTo(Arrays.copyOfRange(current, at, at + n));
            assertWithinBound(cache, s, where);
          }
        }
      }
      s.abandon();
      BucketStorage reopened = open(prefix, false, settings);
      assertThat(reopened.sizeBytes()).as("seed %d at the end", seed).isEqualTo(durable.length);
      assertThat(read(reopened, 0, durable.length))
          .as("seed %d at the end", seed)
          .isEqualTo(durable);
      reopened.close();
    } finally {
      s.abandon();
    }
  }

  private static void assertWithinBound(PageCache cache, BucketStorage s, String where) {
    assertThat(cache.cachedBytes())
        .as(where + ": cached bytes")
        .isLessThanOrEqualTo(Math.max(cache.maxBytes(), (s.pinnedPages() + 1L) * PAGE));
  }

  /**
   * Readers race eviction: with room for two pages of sixteen, every read makes room by evicting a
   * page another reader may be reading at that moment. Every read returns the page's bytes.
   */
  @Test
  void readers_racing_eviction_read_what_was_written() throws Exception {
    PageCache cache = new PageCache(2 * PAGE, Long.MAX_VALUE);
    BucketStorage s = create("evict-readers/", SETTINGS.withCache(cache));
    int pages = 16;
    for (int p = 0; p < pages; p++) {
      write(s, (long) p * PAGE, filled(PAGE, p + 1));
    }
    s.close();
    BucketStorage reader = open("evict-readers/", false, SETTINGS.withCache(cache));
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<java.util.concurrent.Future<Integer>> readers = new java.util.ArrayList<>();
      for (int r = 0; r < 4; r++) {
        SplittableRandom random = new SplittableRandom(r);
        readers.add(
            pool.submit(
                () -> {
                  int wrong = 0;
                  for (int i = 0; i < 3000; i++) {
                    int p = random.nextInt(pages);
                    int at = random.nextInt(PAGE - 512);
                    byte[] got = read(reader, (long) p * PAGE + at, 512);
                    if (!Arrays.equals(got, filled(512, p + 1))) {
                      wrong++;
                    }
                  }
                  return wrong;
                }));
      }
      for (java.util.concurrent.Future<Integer> r : readers) {
        assertThat(r.get()).as("reads that returned another page's bytes").isZero();
      }
    } finally {
      pool.shutdownNow();
      reader.close();
    }
    assertThat(cache.evictions()).isGreaterThan(1000);
  }

  /**
   * Backpressure: with a dirty limit of two pages, a writer of many pages forces as it goes, so the
   * dirty bytes stay within the limit plus the pages of one write, and what it forced is in the
   * bucket before any force of its own.
   */
  @Test
  void a_writer_past_the_dirty_limit_forces_before_it_goes_on() throws IOException {
    PageCache cache = new PageCache(4 * PAGE, 2 * PAGE);
    BucketStorage s = create("dirty-limit/", SETTINGS.withCache(cache));
    for (int p = 0; p < 12; p++) {
      write(s, (long) p * PAGE, filled(PAGE, p + 1));
      assertThat(cache.dirtyBytes()).as("after page %d", p).isLessThanOrEqualTo(3L * PAGE);
    }
    s.abandon(); // no force of its own
    BucketStorage reopened = open("dirty-limit/", false);
    long kept = reopened.sizeBytes() / PAGE;
    assertThat(kept).as("pages the writer forced as it went").isGreaterThanOrEqualTo(9);
    for (int p = 0; p < kept; p++) {
      assertThat(read(reopened, (long) p * PAGE, PAGE)).isEqualTo(filled(PAGE, p + 1));
    }
    reopened.close();
  }

  /**
   * Writers stamp their own sectors with rising numbers while forces run. Whatever a writer had
   * finished writing when a force began must be in the bucket after a crash; nothing may read back
   * newer than was written or older than that.
   */
  @Test
  void forces_racing_writers_keep_every_write_finished_before_they_began() throws Exception {
    raceWritersAndForces(Integer.getInteger("fvdisk.bucket.race.rounds", 30), SETTINGS);
  }

  /** The same race with room for two of the twelve pages: clean pages are evicted under it. */
  @Test
  void forces_racing_writers_and_eviction_keep_every_write_finished_before_they_began()
      throws Exception {
    raceWritersAndForces(
        Integer.getInteger("fvdisk.bucket.race.rounds", 30) / 2,
        SETTINGS.withCache(new PageCache(2 * PAGE, Long.MAX_VALUE)));
  }

  private void raceWritersAndForces(int rounds, BucketStorage.Settings settings) throws Exception {
    int writers = 4;
    int sectorsPerWriter = 24; // spread over pages, several writers per page
    for (int round = 0; round < rounds; round++) {
      String prefix = "race-" + round + "-" + System.identityHashCode(settings) + "/";
      BucketStorage s = create(prefix, settings);
      s.resize((long) writers * sectorsPerWriter * 512);
      s.force();
      long[][] finished = new long[writers][sectorsPerWriter];
      long[][] guaranteed = new long[writers][sectorsPerWriter];
      java.util.concurrent.atomic.AtomicBoolean stop =
          new java.util.concurrent.atomic.AtomicBoolean();
      List<java.util.concurrent.Future<?>> running = new java.util.ArrayList<>();
      ExecutorService pool = Executors.newFixedThreadPool(writers);
      SplittableRandom seeds = new SplittableRandom(round);
      for (int w = 0; w < writers; w++) {
        int writer = w;
        SplittableRandom random = seeds.split();
        running.add(
            pool.submit(
                () -> {
                  long stamp = 0;
                  while (!stop.get()) {
                    int sector = random.nextInt(sectorsPerWriter);
                    // Sector i of writer w sits at i * writers + w: neighbours belong to others.
                    long at = ((long) sector * writers + writer) * 512;
                    ByteBuffer b = ByteBuffer.allocate(512);
                    stamp++;
                    while (b.hasRemaining()) {
                      b.putLong(stamp);
                    }
                    b.flip();
                    s.write(b, at);
                    synchronized (finished[writer]) {
                      finished[writer][sector] = stamp;
                    }
                  }
                  return null;
                }));
      }
      for (int f = 0; f < 6; f++) {
        long[][] before = new long[writers][];
        for (int w = 0; w < writers; w++) {
          synchronized (finished[w]) {
            before[w] = finished[w].clone();
          }
        }
        s.force();
        guaranteed = before;
      }
      stop.set(true);
      for (java.util.concurrent.Future<?> r : running) {
        r.get();
      }
      pool.shutdown();
      s.abandon();
      BucketStorage reopened = open(prefix, false, settings);
      for (int w = 0; w < writers; w++) {
        for (int i = 0; i < sectorsPerWriter; i++) {
          long at = ((long) i * writers + w) * 512;
          ByteBuffer b = ByteBuffer.wrap(read(reopened, at, 512));
          long stamp = b.getLong();
          while (b.hasRemaining()) {
            assertThat(b.getLong())
                .as("round %d, writer %d, sector %d torn", round, w, i)
                .isEqualTo(stamp);
          }
          assertThat(stamp)
              .as("round %d, writer %d, sector %d", round, w, i)
              .isBetween(guaranteed[w][i], finished[w][i]);
        }
      }
      reopened.close();
    }
  }

  @Test
  void a_writer_that_lost_the_image_is_fenced_and_its_unforced_writes_never_show()
      throws IOException {
    BucketStorage a = create("fenced/");
    write(a, 0, filled(PAGE, 1));
    a.force();
    write(a, PAGE, filled(100, 2)); // never forced

    BucketStorage b = open("fenced/", true); // takes the image over
    assertThat(read(b, 0, PAGE)).isEqualTo(filled(PAGE, 1));
    assertThat(b.sizeBytes()).isEqualTo(PAGE);
    write(b, 10, filled(10, 3));
    b.force();

    write(a, 20, filled(10, 4));
    assertThatThrownBy(a::force).isInstanceOf(FencedException.class);
    assertThatThrownBy(() -> write(a, 0, filled(1, 5))).isInstanceOf(FencedException.class);
    a.close();

    b.close();
    BucketStorage c = open("fenced/", false);
    byte[] expected = filled(PAGE, 1);
    Arrays.fill(expected, 10, 20, (byte) 3);
    assertThat(c.sizeBytes()).isEqualTo(PAGE);
    assertThat(read(c, 0, PAGE)).isEqualTo(expected);
    c.close();
  }

  @Test
  void a_small_write_costs_one_record_and_a_page_of_zeros_no_object() throws IOException {
    BucketStorage s = create("small/");
    write(s, 3 * PAGE + 5, filled(512, 9));
    s.force();
    assertThat(store.list("small/log/")).hasSize(2);
    assertThat(store.list("small/p/")).isEmpty();

    write(s, 0, filled(PAGE, 0)); // a whole page of zeros
    s.force();
    assertThat(store.list("small/p/")).isEmpty();

    write(s, 0, filled(PAGE, 7)); // a whole page of data
    s.force();
    assertThat(store.list("small/p/")).hasSize(1);
    s.close();
  }

  @Test
  void a_page_object_replaced_behind_the_storage_is_refused() throws IOException {
    BucketStorage s = create("swapped/");
    write(s, 0, filled(PAGE, 6));
    s.close();
    List<String> pages = store.list("swapped/p/");
    assertThat(pages).hasSize(1);
    store.put(pages.get(0), ByteBuffer.wrap(filled(PAGE, 66))); // a valid object, not the one named

    BucketStorage reopened = open("swapped/", false);
    assertThatThrownBy(() -> read(reopened, 0, 16))
        .isInstanceOf(CorruptObjectException.class)
        .hasMessageContaining("not the one its record names");
    reopened.close();
  }

  @Test
  void a_force_that_fails_fails_the_storage_and_keeps_the_last_forced_content() throws IOException {
    FlakyObjectStore failing = new FlakyObjectStore(store);
    BucketStorage s = BucketStorage.create(failing, "failing/", cache(), UPLOADS, SETTINGS);
    write(s, 0, filled(PAGE, 1));
    s.force();
    write(s, 0, filled(PAGE, 2));
    failing.down(true);
    assertThatThrownBy(s::force).isInstanceOf(IOException.class);
    failing.down(false);
    assertThatThrownBy(s::force).hasMessageContaining("an earlier force failed");
    s.abandon();
    BucketStorage reopened = open("failing/", false);
    assertThat(read(reopened, 0, PAGE)).isEqualTo(filled(PAGE, 1));
    reopened.close();
  }

  @Test
  void opening_a_prefix_without_an_image_fails_and_creating_over_one_is_refused()
      throws IOException {
    assertThatThrownBy(() -> open("nothing/", false))
        .isInstanceOf(java.io.FileNotFoundException.class);
    create("twice/").close();
    assertThatThrownBy(() -> create("twice/"))
        .isInstanceOf(java.nio.file.FileAlreadyExistsException.class);
  }
}
