package dev.fvdisk.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.fvdisk.engine.io.MemoryStorage;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLongArray;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Snapshots taken and deleted while writers and a compactor run. Each writer owns every fourth
 * sector and stamps what it writes with the sector and an ascending version, so a sector's versions
 * are ordered. Every snapshot must hold, in each sector, a whole version that is at least the
 * newest one acknowledged before the snapshot began and was at most begun before it returned; and
 * it must keep reading exactly that while the image changes on, and after a reopen.
 */
class SnapshotRaceTest {

  private static final int SECTOR = 512;
  private static final int SIZE = 128 << 10;
  private static final int SECTORS = SIZE / SECTOR;
  private static final int WRITERS = 4;
  private static final int ROUNDS = Integer.getInteger("fvdisk.snapshot-race.rounds", 300);

  /** Per sector: the newest version acknowledged, and the newest version begun. */
  private final AtomicLongArray acknowledged = new AtomicLongArray(SECTORS);

  private final AtomicLongArray begun = new AtomicLongArray(SECTORS);

  private final Map<String, long[]> floors = new ConcurrentHashMap<>();
  private final Map<String, long[]> ceilings = new ConcurrentHashMap<>();

  private int chunk;

  /** In the clone case, version 0 is the base's stamp of the sector rather than zeros. */
  private boolean clone;

  /**
   * Until set, a clone's writers keep to the first half of the disk and nothing copies blocks in,
   * so the snapshots taken meanwhile read the second half from the base.
   */
  private final AtomicBoolean copying = new AtomicBoolean();

  /**
   * With chunks of 4 KiB each chunk is one block, and writers of neighbouring sectors merge into
   * the same block of a partial version; with 16 KiB, partial versions hold some of four blocks.
   */
  @ParameterizedTest(name = "chunks of {0} bytes")
  @ValueSource(ints = {4096, 16384})
  void snapshots_taken_under_writes_hold_every_acknowledged_write_and_never_change(int chunkBytes)
      throws Exception {
    race(chunkBytes, null);
  }

  /**
   * The same race on a clone that still reads its base, whose every sector holds version 0 stamped:
   * copy-on-read readers and the prefetcher copy blocks in while snapshots are taken, each with a
   * copy of the bitmap, so a snapshot reads version 0 from the base or from a copy, never zeros.
   */
  @ParameterizedTest(name = "clone, chunks of {0} bytes")
  @ValueSource(ints = {4096, 16384})
  void snapshots_of_a_clone_under_copies_and_writes_hold_every_acknowledged_write(int chunkBytes)
      throws Exception {
    MemoryStorage baseStorage = new MemoryStorage("race-base");
    try (Image base =
        Image.create(baseStorage, ImageOptions.builder(SIZE).chunkSizeBytes(chunkBytes).build())) {
      ByteBuffer stamps = ByteBuffer.allocate(SIZE);
      for (int sector = 0; sector < SECTORS; sector++) {
        for (int i = 0; i < SECTOR; i += 16) {
          stamps.putLong(sector * SECTOR + i, sector).putLong(sector * SECTOR + i + 8, 0);
        }
      }
      base.write(0, stamps);
    }
    Image.setReadOnly(baseStorage.reopen(), true);
    try (Image base = Image.open(baseStorage.reopen(), false)) {
      clone = true;
      race(chunkBytes, base);
    }
  }

  private void race(int chunkBytes, @Nullable Image base) throws Exception {
    chunk = chunkBytes;
    MemoryStorage storage = new MemoryStorage("race");
    Map<String, byte[]> taken = new ConcurrentHashMap<>();
    ImageOptions options =
        ImageOptions.builder(SIZE)
            .chunkSizeBytes(chunkBytes)
            .blockSizeBytes(4096)
            .copyOnRead(base != null)
            .build();
    try (Image image =
        base == null
            ? Image.create(storage, options)
            : Image.create(storage, options, base, "race-base")) {
      AtomicBoolean stop = new AtomicBoolean();
      List<Thread> threads = new ArrayList<>();
      List<Throwable> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
      for (int w = 0; w < WRITERS; w++) {
        int writer = w;
        threads.add(worker(failures, stop, () -> write(image, writer)));
      }
      copying.set(base == null);
      if (base != null) {
        // A reader whose reads copy blocks in, and the prefetcher, join a third into the race:
        // the snapshots before read much of the base, the ones after ever less.
        threads.add(
            worker(
                failures,
                stop,
                () -> {
                  if (copying.get()) {
                    readAndCheck(image);
                  } else {
                    Thread.sleep(1);
                  }
                }));
      }
      threads.add(worker(failures, stop, () -> image.compact(2)));
      threads.forEach(Thread::start);
      int deleted = 0;
      for (int round = 0; round < ROUNDS; round++) {
        if (base != null && round == ROUNDS / 3) {
          copying.set(true);
          image.setPrefetch(true, 0);
        }
        long[] floor = new long[SECTORS];
        for (int s = 0; s < SECTORS; s++) {
          floor[s] = acknowledged.get(s);
        }
        String name = "r" + round;
        image.createSnapshot(name);
        long[] ceiling = new long[SECTORS];
        for (int s = 0; s < SECTORS; s++) {
          ceiling[s] = begun.get(s);
        }
        byte[] bytes = readSnapshot(image, name);
        for (int s = 0; s < SECTORS; s++) {
          long version = versionOf(bytes, s);
          assertThat(version)
              .as(
                  "snapshot %s, sector %d: a whole version between %d and %d",
                  name, s, floor[s], ceiling[s])
              .isBetween(floor[s], ceiling[s]);
        }
        taken.put(name, bytes);
        floors.put(name, floor);
        ceilings.put(name, ceiling);
        if (taken.size() > 5) {
          // Any snapshot, the newest included.
          List<String> names = new ArrayList<>(taken.keySet());
          String victim = names.get(ThreadLocalRandom.current().nextInt(names.size()));
          taken.remove(victim);
          image.deleteSnapshot(victim);
          deleted++;
        }
        assertThat(image.check(false).problems()).as("round %d", round).isEmpty();
        // Every snapshot kept still reads what it read when taken.
        for (Map.Entry<String, byte[]> e : taken.entrySet()) {
          assertUnchanged(e.getKey(), readSnapshot(image, e.getKey()), e.getValue());
        }
      }
      stop.set(true);
      for (Thread t : threads) {
        t.join();
      }
      assertThat(failures).isEmpty();
      assertThat(image.check(false).problems()).isEmpty();
      if (base != null) {
        assertThat(image.baseLocator()).as("snapshots read the base").isNotNull();
      }
      System.out.printf(
          "SnapshotRaceTest: %d snapshots taken under %d writers and a compactor, %d deleted%n",
          ROUNDS, WRITERS, deleted);
    }
    try (Image image =
        base == null
            ? Image.open(storage.reopen(), false)
            : Image.open(storage.reopen(), false, locator -> base)) {
      for (Map.Entry<String, byte[]> e : taken.entrySet()) {
        assertUnchanged(e.getKey(), readSnapshot(image, e.getKey()), e.getValue());
      }
    }
  }

  private void assertUnchanged(String name, byte[] now, byte[] then) {
    int at = java.util.Arrays.mismatch(now, then);
    if (at >= 0) {
      int sector = at / SECTOR;
      throw new AssertionError(
          String.format(
              "snapshot %s changed: sector %d (chunk %d) held version %d, now %d; when taken the"
                  + " newest acknowledged was %d, the newest begun %d",
              name,
              sector,
              at / chunk,
              versionOf(then, sector),
              versionOf(now, sector),
              floors.get(name)[sector],
              ceilings.get(name)[sector]));
    }
  }

  private interface Step {
    void run() throws Exception;
  }

  private static Thread worker(List<Throwable> failures, AtomicBoolean stop, Step step) {
    return new Thread(
        () -> {
          try {
            while (!stop.get()) {
              step.run();
            }
          } catch (Throwable e) {
            failures.add(e);
          }
        });
  }

  /** One write of one of this writer's sectors, stamped with its next version. */
  private void write(Image image, int writer) throws Exception {
    ThreadLocalRandom random = ThreadLocalRandom.current();
    int sectors = copying.get() ? SECTORS : SECTORS / 2;
    int sector = random.nextInt(sectors / WRITERS) * WRITERS + writer;
    long version = begun.get(sector) + 1;
    begun.set(sector, version);
    ByteBuffer stamp = ByteBuffer.allocate(SECTOR);
    for (int i = 0; i < SECTOR; i += 16) {
      stamp.putLong(i, sector).putLong(i + 8, version);
    }
    image.write((long) sector * SECTOR, stamp);
    acknowledged.set(sector, version);
  }

  private static byte[] readSnapshot(Image image, String name) throws Exception {
    ByteBuffer all = ByteBuffer.allocate(SIZE);
    image.readSnapshot(name, 0, all);
    return all.array();
  }

  /** A read of a random range: every sector whole, at a version some writer began. */
  private void readAndCheck(Image image) throws Exception {
    ThreadLocalRandom random = ThreadLocalRandom.current();
    int first = random.nextInt(SECTORS);
    int count = 1 + random.nextInt(Math.min(64, SECTORS - first));
    byte[] bytes = new byte[count * SECTOR];
    image.read((long) first * SECTOR, ByteBuffer.wrap(bytes));
    byte[] all = new byte[SIZE];
    System.arraycopy(bytes, 0, all, first * SECTOR, bytes.length);
    for (int s = first; s < first + count; s++) {
      versionOf(all, s);
    }
  }

  /**
   * The version a sector holds: 0 for zeros (or, on a clone, for the base's stamp); fails on a torn
   * or foreign sector.
   */
  private long versionOf(byte[] bytes, int sector) {
    ByteBuffer b = ByteBuffer.wrap(bytes, sector * SECTOR, SECTOR).slice();
    long version = b.getLong(8);
    long unwritten = clone ? sector : 0;
    for (int i = 0; i < SECTOR; i += 16) {
      long s = b.getLong(i);
      long v = b.getLong(i + 8);
      if (version == 0 ? (s != unwritten || v != 0) : (s != sector || v != version)) {
        throw new AssertionError("sector " + sector + " is torn or foreign at byte " + i);
      }
    }
    return version;
  }
}
