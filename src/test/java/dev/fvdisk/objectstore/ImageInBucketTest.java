package dev.fvdisk.objectstore;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.engine.CheckReport;
import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageOptions;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The engine, unchanged, on {@link BucketStorage}: random sector writes, zeroes, flushes,
 * snapshots, compaction, clean reopens and crashes (the process gone with its cache, the bucket
 * reopened). After a crash every sector must hold what it held at the last flush or something
 * written after it, never anything else; snapshots read what they froze; the checker finds nothing
 * wrong. Page sizes below, at and above the chunk size.
 */
class ImageInBucketTest {

  private static final int SECTOR = 512;
  private static final ExecutorService UPLOADS = Executors.newFixedThreadPool(4);

  @TempDir Path cacheDir;
  private final InMemoryObjectStore store = new InMemoryObjectStore();
  private final AtomicInteger caches = new AtomicInteger();

  @AfterAll
  static void stopUploads() {
    UPLOADS.shutdownNow();
  }

  @Test
  void the_engine_on_a_bucket_keeps_every_flushed_write_across_crashes() throws IOException {
    int seeds = Integer.getInteger("fvdisk.bucket.image.seeds", 24);
    for (int seed = 0; seed < seeds; seed++) {
      int pageBytes = new int[] {8192, 32768, 131072}[seed % 3];
      run(seed, 150, new BucketStorage.Settings(pageBytes, 4 * pageBytes, 7, 1 << 20));
    }
  }

  /**
   * The same with a cache of four pages shared by the image's storages, half of which may be dirty:
   * pages are evicted and fetched again all the time, and writers force when the dirty pages pass
   * two (those forces are allowed by the oracle, as a file's kernel may write back early).
   */
  @Test
  void the_engine_on_a_bucket_with_a_small_cache_keeps_every_flushed_write_across_crashes()
      throws IOException {
    int seeds = Integer.getInteger("fvdisk.bucket.image.seeds", 24) / 2;
    long evictions = 0;
    for (int seed = 0; seed < seeds; seed++) {
      int pageBytes = new int[] {8192, 32768, 131072}[seed % 3];
      PageCache cache = PageCache.bounded(4L * pageBytes);
      run(
          1000 + seed,
          150,
          new BucketStorage.Settings(pageBytes, 4 * pageBytes, 7, 1 << 20)
              .withCache(cache)
              .withCollectionAfter(0));
      evictions += cache.evictions();
    }
    assertThat(evictions).as("pages evicted over all seeds").isPositive();
  }

  private BucketStorage open(String prefix, BucketStorage.Settings settings) throws IOException {
    return BucketStorage.open(
        store,
        prefix,
        cacheDir.resolve(caches.incrementAndGet() + ".cache"),
        true,
        UPLOADS,
        settings);
  }

  private void run(int seed, int steps, BucketStorage.Settings settings) throws IOException {
    SplittableRandom random = new SplittableRandom(seed);
    String prefix = "image-" + seed + "/";
    int chunk = 32768;
    int sectors = 64 * chunk / SECTOR;
    ImageOptions options =
        ImageOptions.builder((long) sectors * SECTOR)
            .chunkSizeBytes(chunk)
            .journalSizeBytes(4096)
            .build();
    long[] current = new long[sectors];
    long[] durable = new long[sectors];
    List<Set<Long>> since = new ArrayList<>();
    for (int i = 0; i < sectors; i++) {
      since.add(new HashSet<>());
    }
    java.util.Map<String, long[]> snapshots = new java.util.HashMap<>();
    long stamp = 0;
    BucketStorage storage =
        BucketStorage.create(
            store,
            prefix,
            cacheDir.resolve(caches.incrementAndGet() + ".cache"),
            UPLOADS,
            settings);
    Image image = Image.create(storage, options);
    try {
      for (int step = 0; step < steps; step++) {
        String where = "seed " + seed + ", step " + step;
        int op = random.nextInt(100);
        if (op < 45) {
          int first = random.nextInt(sectors);
          int n = 1 + random.nextInt(Math.min(sectors - first, 1 + random.nextInt(160)));
          ByteBuffer b = ByteBuffer.allocate(n * SECTOR);
          for (int i = 0; i < n; i++) {
            stamp++;
            for (int w = 0; w < SECTOR / 8; w++) {
              b.putLong(stamp);
            }
            current[first + i] = stamp;
            since.get(first + i).add(stamp);
          }
          b.flip();
          image.write((long) first * SECTOR, b);
        } else if (op < 52) {
          int first = random.nextInt(sectors);
          int n = 1 + random.nextInt(Math.min(sectors - first, 128));
          image.zero((long) first * SECTOR, (long) n * SECTOR);
          for (int i = first; i < first + n; i++) {
            current[i] = 0;
            since.get(i).add(0L);
          }
        } else if (op < 70) {
          image.flush();
          markDurable(current, durable, since);
        } else if (op < 74 && snapshots.size() < 3) {
          String name = "s" + step;
          image.createSnapshot(name);
          snapshots.put(name, current.clone());
          markDurable(current, durable, since); // taking a snapshot flushes
        } else if (op < 77 && !snapshots.isEmpty()) {
          String name = snapshots.keySet().iterator().next();
          image.deleteSnapshot(name);
          snapshots.remove(name);
          markDurable(current, durable, since);
        } else if (op < 80) {
          image.compact(8);
        } else if (op < 86) {
          // A crash: the process and its cache are gone; the bucket is all that is left.
          storage.abandon();
          storage = open(prefix, settings);
          image = Image.open(storage, true);
          for (int i = 0; i < sectors; i++) {
            long found = readStamp(image, i, where);
            Set<Long> allowed = new HashSet<>(since.get(i));
            allowed.add(durable[i]);
            assertThat(allowed).as("%s: sector %d after a crash", where, i).contains(found);
            current[i] = found;
            durable[i] = found;
            since.get(i).clear();
          }
          // Snapshots taken before the crash were flushed when taken.
          snapshots.keySet().retainAll(names(image));
        } else if (op < 90) {
          image.close();
          storage = open(prefix, settings);
          image = Image.open(storage, true);
          markDurable(current, durable, since);
        } else {
          int first = random.nextInt(sectors);
          int n = 1 + random.nextInt(Math.min(sectors - first, 64));
          for (int i = first; i < first + n; i++) {
            assertThat(readStamp(image, i, where))
                .as("%s: sector %d", where, i)
                .isEqualTo(current[i]);
          }
          for (var s : snapshots.entrySet()) {
            ByteBuffer b = ByteBuffer.allocate(SECTOR);
            image.readSnapshot(s.getKey(), (long) first * SECTOR, b);
            assertThat(b.getLong(0))
                .as("%s: snapshot %s, sector %d", where, s.getKey(), first)
                .isEqualTo(s.getValue()[first]);
          }
        }
      }
      CheckReport report = image.check(false);
      assertThat(report.problems()).as("seed %d", seed).isEmpty();
      image.close();
    } finally {
      storage.abandon();
    }
  }

  private static Set<String> names(Image image) {
    Set<String> names = new HashSet<>();
    image.snapshots().forEach(s -> names.add(s.name()));
    return names;
  }

  private static void markDurable(long[] current, long[] durable, List<Set<Long>> since) {
    System.arraycopy(current, 0, durable, 0, current.length);
    since.forEach(Set::clear);
  }

  private static long readStamp(Image image, int sector, String where) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(SECTOR);
    image.read((long) sector * SECTOR, b);
    long stamp = b.getLong(0);
    for (int w = 1; w < SECTOR / 8; w++) {
      assertThat(b.getLong(w * 8)).as("%s: sector %d torn", where, sector).isEqualTo(stamp);
    }
    return stamp;
  }
}
