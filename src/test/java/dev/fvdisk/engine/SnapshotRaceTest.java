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

  /**
   * With chunks of 4 KiB each chunk is one block, and writers of neighbouring sectors merge into
   * the same block of a partial version; with 16 KiB, partial versions hold some of four blocks.
   */
  @ParameterizedTest(name = "chunks of {0} bytes")
  @ValueSource(ints = {4096, 16384})
  void snapshots_taken_under_writes_hold_every_acknowledged_write_and_never_change(int chunkBytes)
      throws Exception {
    chunk = chunkBytes;
    MemoryStorage storage = new MemoryStorage("race");
    Map<String, byte[]> taken = new ConcurrentHashMap<>();
    try (Image image =
        Image.create(storage, ImageOptions.builder(SIZE).chunkSizeBytes(chunkBytes).build())) {
      AtomicBoolean stop = new AtomicBoolean();
      List<Thread> threads = new ArrayList<>();
      List<Throwable> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
      for (int w = 0; w < WRITERS; w++) {
        int writer = w;
        threads.add(worker(failures, stop, () -> write(image, writer)));
      }
      threads.add(worker(failures, stop, () -> image.compact(2)));
      threads.forEach(Thread::start);
      int deleted = 0;
      for (int round = 0; round < ROUNDS; round++) {
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
      System.out.printf(
          "SnapshotRaceTest: %d snapshots taken under %d writers and a compactor, %d deleted%n",
          ROUNDS, WRITERS, deleted);
    }
    try (Image image = Image.open(storage.reopen(), false)) {
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
    int sector = random.nextInt(SECTORS / WRITERS) * WRITERS + writer;
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

  /** The version a sector holds: 0 for zeros; fails on a torn or foreign sector. */
  private static long versionOf(byte[] bytes, int sector) {
    ByteBuffer b = ByteBuffer.wrap(bytes, sector * SECTOR, SECTOR).slice();
    long version = b.getLong(8);
    for (int i = 0; i < SECTOR; i += 16) {
      long s = b.getLong(i);
      long v = b.getLong(i + 8);
      if (version == 0 ? (s != 0 || v != 0) : (s != sector || v != version)) {
        throw new AssertionError("sector " + sector + " is torn or foreign at byte " + i);
      }
    }
    return version;
  }
}
