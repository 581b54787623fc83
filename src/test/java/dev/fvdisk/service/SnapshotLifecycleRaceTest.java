package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Races snapshot create, delete, list and read against durable writes and zeroes of the same image,
 * and, every other round, against deleting the image. What the service acknowledged is final:
 *
 * <ul>
 *   <li>a snapshot reads, for each writer's region, one of the writer's versions between the last
 *       one acknowledged before the snapshot was asked for and the last one started when it was
 *       acknowledged, however later writes, zeroes and deletions of other snapshots go;
 *   <li>a snapshot whose deletion was acknowledged is never read again, and the list holds exactly
 *       the snapshots created and not deleted;
 *   <li>once the image's deletion is acknowledged, no call reaches it, snapshot calls included, and
 *       an image is never reported missing before its deletion started.
 * </ul>
 *
 * <p>Each writer owns a region and writes it whole with its own stamp and a counter, so the
 * versions of a region are ordered. Regions share chunk 0 (partial copy-on-write of one chunk by
 * four writers), cover chunk 1 whole (whole-chunk writes and whole-chunk zeroes), and sit inside
 * chunk 2; chunk 3 is never written.
 */
class SnapshotLifecycleRaceTest {

  private static final int ROUNDS = Integer.getInteger("fvdisk.snapshot-race.rounds", 40);
  private static final ServiceLimits LIMITS =
      new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 16);
  private static final int CHUNK = 64 << 10;
  private static final int SIZE_BYTES = 4 * CHUNK;
  private static final String NAME = "vm";

  /** Writer regions: offset and length in bytes. */
  private static final int[][] REGIONS = {
    {0, 16 << 10},
    {16 << 10, 16 << 10},
    {32 << 10, 16 << 10},
    {48 << 10, 16 << 10},
    {CHUNK, CHUNK},
    {2 * CHUNK + (8 << 10), 16 << 10}
  };

  @Test
  void acknowledged_snapshot_results_are_final(@TempDir Path dir) throws Exception {
    ImageService service = new ImageService(new ImageDirectory(dir), LIMITS);
    service.openAll();
    int created = 0;
    int deleted = 0;
    int verifiedReads = 0;
    try {
      for (int round = 0; round < ROUNDS; round++) {
        service.create(
            new CreateImageCommand(
                NAME, (long) SIZE_BYTES, null, (long) CHUNK, null, null, null, null));
        Race race = new Race(service);
        race.start();
        pauseMicros(10_000 + ThreadLocalRandom.current().nextInt(30_000));
        boolean racingDelete = round % 2 == 1;
        VirtualDisk heldView = null;
        long deleteStartedAt = Long.MAX_VALUE;
        long deletedAt;
        if (racingDelete) {
          heldView = attachNewest(service, race);
          deleteStartedAt = System.nanoTime();
          service.delete(NAME, null);
          deletedAt = System.nanoTime();
          pauseMicros(2000);
          race.stop();
        } else {
          race.stop();
          race.checkFinalState(round);
          heldView = attachNewest(service, race);
          deleteStartedAt = System.nanoTime();
          service.delete(NAME, null);
          deletedAt = System.nanoTime();
        }

        assertThat(race.unexpected).as("round %d: unexpected failures", round).isEmpty();
        assertThat(race.reachedImageAfter(deletedAt))
            .as("round %d: calls that started after the image's deletion and reached it", round)
            .isEmpty();
        assertThat(race.imageMissingBefore(deleteStartedAt))
            .as("round %d: calls that found no image before its deletion started", round)
            .isEmpty();
        assertThat(race.snapshotReadAfterItsDeletion())
            .as("round %d: snapshots read after their deletion was acknowledged", round)
            .isEmpty();
        assertGone(service, heldView, round);
        created += race.created.get();
        deleted += race.deletions.get();
        verifiedReads += race.verifiedReads.get();
      }
    } finally {
      service.close();
    }
    System.out.printf(
        "snapshot race: %d rounds, %d snapshots taken, %d deleted, %d snapshot reads verified%n",
        ROUNDS, created, deleted, verifiedReads);
    assertThat(created).isPositive();
    assertThat(verifiedReads).isPositive();
  }

  /** A view of the newest snapshot taken so far, or null; it must go dead with the image. */
  private static @Nullable VirtualDisk attachNewest(ImageService service, Race race) {
    Snap newest = race.newest();
    if (newest == null) {
      return null;
    }
    try {
      return service.attachSnapshot(NAME, newest.name());
    } catch (SnapshotNotFoundException | ImageNotFoundException e) {
      return null;
    }
  }

  private static void assertGone(ImageService service, @Nullable VirtualDisk view, int round) {
    assertThatThrownBy(() -> service.snapshots(NAME))
        .as("round %d: list", round)
        .isInstanceOf(ImageNotFoundException.class);
    assertThatThrownBy(() -> service.createSnapshot(NAME, "after"))
        .as("round %d: create", round)
        .isInstanceOf(ImageNotFoundException.class);
    assertThatThrownBy(() -> service.deleteSnapshot(NAME, "s0"))
        .as("round %d: delete", round)
        .isInstanceOf(ImageNotFoundException.class);
    assertThatThrownBy(() -> service.attachSnapshot(NAME, "s0"))
        .as("round %d: attach", round)
        .isInstanceOf(ImageNotFoundException.class);
    if (view != null) {
      try (view) {
        assertThatThrownBy(() -> view.read(0, ByteBuffer.allocate(512)))
            .as("round %d: a view attached before the image's deletion", round)
            .isInstanceOfAny(ImageNotFoundException.class, SnapshotNotFoundException.class);
      }
    }
  }

  private static void pauseMicros(long micros) {
    LockSupport.parkNanos(TimeUnit.MICROSECONDS.toNanos(micros));
  }

  /**
   * A snapshot the race took: for each writer, the versions its region may show.
   *
   * @param lowest the writer's last acknowledged version when the snapshot was asked for
   * @param highest the writer's last started version when the snapshot was acknowledged
   */
  private record Snap(String name, long[] lowest, long[] highest) {}

  /** A call's outcome, for the checks against the acknowledged deletions. */
  private record Outcome(
      String kind,
      @Nullable String snapshot,
      long startedAt,
      long endedAt,
      boolean reachedImage,
      boolean imageMissing) {}

  /** The threads of one round, and what they saw. */
  private static final class Race {

    final Queue<String> unexpected = new ConcurrentLinkedQueue<>();
    final Queue<Outcome> outcomes = new ConcurrentLinkedQueue<>();
    final AtomicInteger created = new AtomicInteger();
    final AtomicInteger deletions = new AtomicInteger();
    final AtomicInteger verifiedReads = new AtomicInteger();
    private final ImageService service;
    private final AtomicLongArray started = new AtomicLongArray(REGIONS.length);
    private final AtomicLongArray acknowledged = new AtomicLongArray(REGIONS.length);
    private final Map<String, Snap> live = new ConcurrentHashMap<>();
    private final Map<String, Long> deletedAt = new ConcurrentHashMap<>();
    private final List<String> order = new ArrayList<>();
    private final List<Thread> threads = new ArrayList<>();
    private volatile boolean stopping;

    Race(ImageService service) {
      this.service = service;
      for (int w = 0; w < REGIONS.length; w++) {
        int writer = w;
        threads.add(new Thread(() -> write(writer), "snapshot-race-writer-" + w));
      }
      threads.add(new Thread(this::takeSnapshots, "snapshot-race-creator"));
      threads.add(new Thread(this::deleteSnapshots, "snapshot-race-deleter"));
      threads.add(new Thread(this::readSnapshots, "snapshot-race-reader"));
    }

    void start() {
      threads.forEach(Thread::start);
    }

    void stop() throws InterruptedException {
      stopping = true;
      for (Thread t : threads) {
        t.join(TimeUnit.SECONDS.toMillis(30));
        assertThat(t.isAlive()).as("%s still running", t.getName()).isFalse();
      }
    }

    synchronized @Nullable Snap newest() {
      for (int i = order.size() - 1; i >= 0; i--) {
        Snap s = live.get(order.get(i));
        if (s != null) {
          return s;
        }
      }
      return null;
    }

    private void write(int writer) {
      int offset = REGIONS[writer][0];
      int length = REGIONS[writer][1];
      for (long version = 1; !stopping; version++) {
        long v = version;
        started.set(writer, v);
        boolean done =
            attempt(
                "write",
                null,
                () -> {
                  try (VirtualDisk disk = service.attach(NAME, Access.READ_WRITE)) {
                    if (zeroes(writer, v)) {
                      disk.zero(offset, length, Durability.DURABLE);
                    } else {
                      disk.write(offset, stamp(writer, v, length), Durability.DURABLE);
                    }
                  }
                });
        if (done) {
          acknowledged.set(writer, v);
        }
      }
    }

    private void takeSnapshots() {
      for (int n = 0; !stopping; n++) {
        String name = "s" + n;
        long[] lowest = copy(acknowledged);
        boolean done = attempt("create", name, () -> service.createSnapshot(NAME, name));
        if (!done) {
          continue;
        }
        Snap snap = new Snap(name, lowest, copy(started));
        synchronized (this) {
          order.add(name);
          live.put(name, snap);
        }
        created.incrementAndGet();
        read(snap);
        pauseMicros(ThreadLocalRandom.current().nextInt(1000));
      }
    }

    private void deleteSnapshots() {
      ThreadLocalRandom random = ThreadLocalRandom.current();
      while (!stopping) {
        pauseMicros(500 + random.nextInt(2500));
        Snap victim = randomLive(random);
        if (victim == null) {
          continue;
        }
        boolean done =
            attempt("delete", victim.name(), () -> service.deleteSnapshot(NAME, victim.name()));
        if (done) {
          deletedAt.put(victim.name(), System.nanoTime());
          live.remove(victim.name());
          deletions.incrementAndGet();
        }
      }
    }

    private void readSnapshots() {
      ThreadLocalRandom random = ThreadLocalRandom.current();
      while (!stopping) {
        if (random.nextInt(4) == 0) {
          attempt("list", null, this::checkList);
          continue;
        }
        Snap snap = randomLive(random);
        if (snap == null) {
          pauseMicros(200);
        } else {
          read(snap);
        }
      }
    }

    /** Reads a whole snapshot and checks every region against the versions it may show. */
    private void read(Snap snap) {
      ByteBuffer all = ByteBuffer.allocate(SIZE_BYTES);
      boolean done =
          attempt(
              "read",
              snap.name(),
              () -> {
                try (VirtualDisk disk = service.attachSnapshot(NAME, snap.name())) {
                  assertThat(disk.sizeBytes()).isEqualTo(SIZE_BYTES);
                  // In pieces, so a deletion can land between them.
                  for (int offset = 0; offset < SIZE_BYTES; offset += CHUNK) {
                    disk.read(offset, all.limit(offset + CHUNK).position(offset));
                  }
                }
              });
      if (done) {
        String wrong = check(snap, all.array());
        if (wrong != null) {
          unexpected.add("snapshot " + snap.name() + ": " + wrong);
        } else {
          verifiedReads.incrementAndGet();
        }
      }
    }

    /** The list is oldest first, and holds no snapshot whose deletion was acknowledged before. */
    private void checkList() {
      long startedAt = System.nanoTime();
      List<SnapshotDescriptor> listed = service.snapshots(NAME);
      int previous = -1;
      for (SnapshotDescriptor d : listed) {
        int n = Integer.parseInt(d.name().substring(1));
        assertThat(n).as("list order").isGreaterThan(previous);
        previous = n;
        Long deleted = deletedAt.get(d.name());
        assertThat(deleted == null || deleted > startedAt)
            .as("%s listed after its deletion", d.name())
            .isTrue();
      }
    }

    /** With the race stopped: the list is exactly what was created and not deleted, all intact. */
    void checkFinalState(int round) {
      List<String> expected;
      synchronized (this) {
        expected = order.stream().filter(live::containsKey).toList();
      }
      assertThat(service.snapshots(NAME).stream().map(SnapshotDescriptor::name).toList())
          .as("round %d: the snapshots after the race", round)
          .isEqualTo(expected);
      for (String name : expected) {
        read(live.get(name));
      }
    }

    private @Nullable Snap randomLive(ThreadLocalRandom random) {
      List<Snap> snaps = new ArrayList<>(live.values());
      return snaps.isEmpty() ? null : snaps.get(random.nextInt(snaps.size()));
    }

    /** Runs a call; true when it returned. Not-found answers are logged for the final checks. */
    private boolean attempt(String kind, @Nullable String snapshot, Request request) {
      long startedAt = System.nanoTime();
      try {
        request.run();
        outcomes.add(new Outcome(kind, snapshot, startedAt, System.nanoTime(), true, false));
        return true;
      } catch (ImageNotFoundException e) {
        outcomes.add(new Outcome(kind, snapshot, startedAt, System.nanoTime(), false, true));
      } catch (SnapshotNotFoundException e) {
        if (!kind.equals("read")) {
          // Only the deleter deletes, and only snapshots the creator saw taken.
          unexpected.add(kind + " " + snapshot + ": " + e);
        }
        outcomes.add(new Outcome(kind, snapshot, startedAt, System.nanoTime(), false, false));
      } catch (Exception | AssertionError e) {
        unexpected.add(kind + " " + snapshot + ": " + e);
      }
      return false;
    }

    List<Outcome> reachedImageAfter(long nanos) {
      return outcomes.stream().filter(o -> o.reachedImage() && o.startedAt() > nanos).toList();
    }

    List<Outcome> imageMissingBefore(long nanos) {
      return outcomes.stream().filter(o -> o.imageMissing() && o.endedAt() < nanos).toList();
    }

    List<Outcome> snapshotReadAfterItsDeletion() {
      return outcomes.stream()
          .filter(o -> o.kind().equals("read") && o.reachedImage())
          .filter(
              o -> {
                Long deleted = deletedAt.get(o.snapshot());
                return deleted != null && o.startedAt() > deleted;
              })
          .toList();
    }

    @FunctionalInterface
    interface Request {
      void run() throws Exception;
    }
  }

  /** Whether {@code writer}'s version {@code version} zeroes its region rather than writing it. */
  private static boolean zeroes(int writer, long version) {
    return writer >= 4 && version % 5 == 0;
  }

  /** A region filled with longs naming the writer and the version. */
  private static ByteBuffer stamp(int writer, long version, int length) {
    ByteBuffer b = ByteBuffer.allocate(length);
    while (b.hasRemaining()) {
      b.putLong(((long) (writer + 1) << 32) | version);
    }
    return b.flip();
  }

  /** Why the snapshot's bytes are not what it may show, or null when they are. */
  private static @Nullable String check(Snap snap, byte[] bytes) {
    ByteBuffer all = ByteBuffer.wrap(bytes);
    boolean[] owned = new boolean[SIZE_BYTES];
    for (int w = 0; w < REGIONS.length; w++) {
      int offset = REGIONS[w][0];
      int length = REGIONS[w][1];
      for (int i = offset; i < offset + length; i++) {
        owned[i] = true;
      }
      long first = all.getLong(offset);
      for (int i = offset; i < offset + length; i += Long.BYTES) {
        if (all.getLong(i) != first) {
          return "writer " + w + "'s region mixes versions at byte " + i;
        }
      }
      long lowest = snap.lowest()[w];
      long highest = snap.highest()[w];
      boolean fits = false;
      if (first == 0) {
        for (long v = lowest; v <= highest && !fits; v++) {
          fits = v == 0 || zeroes(w, v);
        }
      } else {
        long version = first & 0xffffffffL;
        fits =
            first >>> 32 == w + 1 && version >= lowest && version <= highest && !zeroes(w, version);
      }
      if (!fits) {
        return "writer "
            + w
            + " shows "
            + (first == 0 ? "zeros" : "version " + (first & 0xffffffffL))
            + ", not one of versions "
            + lowest
            + " to "
            + highest;
      }
    }
    for (int i = 0; i < SIZE_BYTES; i++) {
      if (!owned[i] && bytes[i] != 0) {
        return "byte " + i + ", which no one writes, is not zero";
      }
    }
    return null;
  }

  private static long[] copy(AtomicLongArray values) {
    long[] copy = new long[values.length()];
    for (int i = 0; i < copy.length; i++) {
      copy[i] = values.get(i);
    }
    return copy;
  }
}
