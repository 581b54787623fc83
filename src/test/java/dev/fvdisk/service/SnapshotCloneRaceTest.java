package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Races clones of a snapshot ({@code golden@s1}) against what could take their base away: deleting
 * the snapshot, deleting the image, and overwriting the image while it is marked read-only and
 * back. Whatever the order, no clone ever exists whose snapshot is gone, and a clone reads exactly
 * the snapshot's bytes, never the image's current ones.
 *
 * <p>In each round of the two deletion races, one round in five runs the two calls one after the
 * other in each order, so both outcomes are certain to be checked; the other rounds start them
 * together, one of them after a random short spin. Every 25th round where the clone won, the
 * service is restarted and the clone must still read the snapshot and still protect it.
 */
class SnapshotCloneRaceTest {

  private static final int ROUNDS = Integer.getInteger("fvdisk.snapshot-clone-race.rounds", 200);
  private static final ServiceLimits LIMITS =
      new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 16);
  private static final int CHUNK = 64 << 10;
  private static final int SIZE = 4 * CHUNK;
  private static final String GOLDEN = "golden";
  private static final String SNAPSHOT = "s1";
  private static final String CLONE = "clone";
  private static final String BASE = GOLDEN + "@" + SNAPSHOT;
  private static final long MAX_SPIN_NANOS = TimeUnit.MILLISECONDS.toNanos(3);

  // ---- deleting the snapshot against creating a clone of it ----

  @Test
  void a_snapshot_deletion_racing_a_clone_of_it_never_leaves_a_clone_without_its_snapshot(
      @TempDir Path dir) throws Exception {
    ImageService service = open(dir);
    Map<String, Integer> seen = new TreeMap<>();
    long startedAt = System.nanoTime();
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      for (int round = 0; round < ROUNDS; round++) {
        byte[] snapshotContent = content(2L * round);
        byte[] current = goldenWithSnapshot(service, snapshotContent, 2L * round + 1);
        ImageService racing = service;
        Throwable[] outcome =
            run(
                pool,
                round,
                () -> racing.deleteSnapshot(GOLDEN, SNAPSHOT),
                () -> racing.create(cloneOf(BASE, false)));
        Throwable deleted = outcome[0];
        Throwable created = outcome[1];
        String as = "round " + round + ": delete answered " + deleted + ", create " + created;
        seen.merge(kind(round) + (created == null ? " clone-won" : " delete-won"), 1, Integer::sum);

        assertThat(deleted == null && created == null)
            .as("%s: both succeeded, so a clone reads a deleted snapshot", as)
            .isFalse();
        boolean listed = snapshotNames(service, GOLDEN).contains(SNAPSHOT);
        if (created == null) {
          assertThat(deleted).as(as).isInstanceOf(SnapshotInUseException.class);
          assertThat(((ServiceException) deleted).properties())
              .as(as)
              .containsEntry("image", GOLDEN)
              .containsEntry("snapshot", SNAPSHOT)
              .containsEntry("clones", List.of(CLONE));
          assertThat(listed).as("%s: s1 listed", as).isTrue();
          assertCloneOfSnapshot(service, snapshotContent, as);
          assertThatThrownBy(() -> racing.deleteSnapshot(GOLDEN, SNAPSHOT))
              .as("%s: deleting s1 again", as)
              .isInstanceOf(SnapshotInUseException.class);
          if (round % 25 == 2) {
            service = restart(service, dir);
            assertCloneOfSnapshot(service, snapshotContent, as + ", after a restart");
            ImageService restarted = service;
            assertThatThrownBy(() -> restarted.deleteSnapshot(GOLDEN, SNAPSHOT))
                .as("%s: deleting s1 after a restart", as)
                .isInstanceOf(SnapshotInUseException.class);
          }
        } else {
          assertThat(created).as(as).isInstanceOf(SnapshotNotFoundException.class);
          assertThat(deleted).as(as).isNull();
          assertThat(listed).as("%s: s1 listed", as).isFalse();
          assertThat(exists(service, CLONE)).as("%s: the clone exists", as).isFalse();
          assertThat(dir.resolve(CLONE + ".fvd")).as(as).doesNotExist();
        }
        assertNoCloneWithoutItsSnapshot(service, as);
        assertThat(readAll(service, GOLDEN)).as("%s: golden", as).isEqualTo(current);

        // Once the clone is gone the snapshot may go.
        if (exists(service, CLONE)) {
          service.delete(CLONE, null);
          service.deleteSnapshot(GOLDEN, SNAPSHOT);
        }
        assertThat(snapshotNames(service, GOLDEN)).as(as).isEmpty();
        service.delete(GOLDEN, null);
      }
    } finally {
      pool.shutdownNow();
      service.close();
    }
    report("snapshot deletion against clone creation", seen, startedAt);
  }

  // ---- deleting the image against creating a clone of its snapshot ----

  @Test
  void an_image_deletion_racing_a_clone_of_its_snapshot_leaves_one_or_the_other(@TempDir Path dir)
      throws Exception {
    ImageService service = open(dir);
    Map<String, Integer> seen = new TreeMap<>();
    long startedAt = System.nanoTime();
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      for (int round = 0; round < ROUNDS; round++) {
        byte[] snapshotContent = content(2L * round);
        byte[] current = goldenWithSnapshot(service, snapshotContent, 2L * round + 1);
        ImageService racing = service;
        Throwable[] outcome =
            run(
                pool,
                round,
                () -> racing.delete(GOLDEN, null),
                () -> racing.create(cloneOf(BASE, false)));
        Throwable deleted = outcome[0];
        Throwable created = outcome[1];
        String as = "round " + round + ": delete answered " + deleted + ", create " + created;
        seen.merge(kind(round) + (created == null ? " clone-won" : " delete-won"), 1, Integer::sum);

        assertThat(deleted == null && created == null)
            .as("%s: both succeeded, so a clone reads a deleted image", as)
            .isFalse();
        if (created == null) {
          assertThat(deleted).as(as).isInstanceOf(ImageInUseException.class);
          assertThat(((ServiceException) deleted).properties())
              .as(as)
              .containsEntry("image", GOLDEN)
              .containsEntry("clones", List.of(CLONE));
          assertThat(snapshotNames(service, GOLDEN)).as(as).containsExactly(SNAPSHOT);
          assertThat(readAll(service, GOLDEN)).as("%s: golden", as).isEqualTo(current);
          assertCloneOfSnapshot(service, snapshotContent, as);
          if (round % 25 == 2) {
            service = restart(service, dir);
            assertCloneOfSnapshot(service, snapshotContent, as + ", after a restart");
            ImageService restarted = service;
            assertThatThrownBy(() -> restarted.delete(GOLDEN, null))
                .as("%s: deleting golden after a restart", as)
                .isInstanceOf(ImageInUseException.class);
          }
          assertNoCloneWithoutItsSnapshot(service, as);
          service.delete(CLONE, null);
          service.delete(GOLDEN, null);
        } else {
          // The image is gone, not merely the snapshot: the answer names the image.
          assertThat(created).as(as).isInstanceOf(ImageNotFoundException.class);
          assertThat(deleted).as(as).isNull();
          assertNoCloneWithoutItsSnapshot(service, as);
        }
        assertThat(service.list()).as("%s: images left", as).isEmpty();
        assertThat(dir.resolve(GOLDEN + ".fvd")).as(as).doesNotExist();
        assertThat(dir.resolve(CLONE + ".fvd")).as(as).doesNotExist();
      }
    } finally {
      pool.shutdownNow();
      service.close();
    }
    report("image deletion against clone creation", seen, startedAt);
  }

  // ---- overwriting the image, and marking it read-only and back, while clones read ----

  @Test
  void a_clone_reads_its_snapshot_while_the_image_is_overwritten_and_marked_read_only_and_back(
      @TempDir Path dir) throws Exception {
    int rounds = Math.max(1, ROUNDS / 20);
    ImageService service = open(dir);
    long startedAt = System.nanoTime();
    int verified = 0;
    int toggles = 0;
    int goldenWrites = 0;
    int clonesMade = 0;
    try {
      for (int round = 0; round < rounds; round++) {
        byte[] snapshotContent = content(2L * round);
        goldenWithSnapshot(service, snapshotContent, 2L * round + 1);
        service.create(cloneOf(BASE, false));
        // The clone's own write, over chunk 1 and into chunk 2: reads mix it with the snapshot.
        byte[] own = content(1_000_000L + round);
        int ownOffset = 2 * CHUNK - 8192;
        byte[] ownBytes = Arrays.copyOf(own, 12288);
        write(service, CLONE, ownOffset, ownBytes);
        byte[] expected = snapshotContent.clone();
        System.arraycopy(ownBytes, 0, expected, ownOffset, ownBytes.length);

        ReadRace race = new ReadRace(service, snapshotContent, expected);
        race.start();
        race.awaitToggles(6);
        race.stop();
        assertThat(race.unexpected).as("round %d: unexpected failures", round).isEmpty();
        assertThat(race.toggles.get()).as("round %d: toggles", round).isGreaterThanOrEqualTo(6);
        assertThat(race.verifiedReads.get()).as("round %d: verified reads", round).isPositive();

        assertThat(service.describe(GOLDEN).readOnly()).isFalse();
        assertThat(readAll(service, CLONE))
            .as("round %d: clone after the race", round)
            .isEqualTo(expected);
        assertThat(readSnapshot(service))
            .as("round %d: s1 after the race", round)
            .isEqualTo(snapshotContent);
        assertThat(readAll(service, GOLDEN))
            .as("round %d: golden moved on", round)
            .isNotEqualTo(snapshotContent);
        assertThatThrownBy(() -> service.deleteSnapshot(GOLDEN, SNAPSHOT))
            .isInstanceOf(SnapshotInUseException.class);
        assertNoCloneWithoutItsSnapshot(service, "round " + round);
        verified += race.verifiedReads.get();
        toggles += race.toggles.get();
        goldenWrites += race.goldenWrites.get();
        clonesMade += race.clonesMade.get();

        service.delete(CLONE, null);
        for (String snapshot : snapshotNames(service, GOLDEN)) {
          service.deleteSnapshot(GOLDEN, snapshot);
        }
        service.delete(GOLDEN, null);
      }
    } finally {
      service.close();
    }
    System.out.printf(
        "snapshot clone race, overwrites and read-only marks: %d rounds, %d reads verified, %d"
            + " read-only toggles, %d writes into golden, %d clones made while racing, %d ms%n",
        rounds,
        verified,
        toggles,
        goldenWrites,
        clonesMade,
        TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startedAt));
  }

  /**
   * The threads of one round of the read race: writers into golden, a taker and deleter of further
   * snapshots of golden, a toggler of its read-only mark, readers of the clone and of s1, and a
   * maker of second clones of s1 that reads each one and deletes it.
   */
  private static final class ReadRace {

    final Queue<String> unexpected = new ConcurrentLinkedQueue<>();
    final AtomicInteger verifiedReads = new AtomicInteger();
    final AtomicInteger toggles = new AtomicInteger();
    final AtomicInteger goldenWrites = new AtomicInteger();
    final AtomicInteger clonesMade = new AtomicInteger();
    private final ImageService service;
    private final byte[] snapshotContent;
    private final byte[] cloneContent;
    private final List<Thread> threads = new ArrayList<>();
    private volatile boolean stopping;

    ReadRace(ImageService service, byte[] snapshotContent, byte[] cloneContent) {
      this.service = service;
      this.snapshotContent = snapshotContent;
      this.cloneContent = cloneContent;
      for (int i = 0; i < 2; i++) {
        threads.add(new Thread(this::writeGolden, "clone-race-golden-writer-" + i));
        threads.add(new Thread(this::readClone, "clone-race-clone-reader-" + i));
      }
      threads.add(new Thread(this::churnSnapshots, "clone-race-snapshots"));
      threads.add(new Thread(this::readSnapshot, "clone-race-s1-reader"));
      threads.add(new Thread(this::makeClones, "clone-race-cloner"));
      threads.add(new Thread(this::toggleReadOnly, "clone-race-toggler"));
    }

    void start() {
      threads.forEach(Thread::start);
    }

    void awaitToggles(int count) throws InterruptedException {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (toggles.get() < count && unexpected.isEmpty() && System.nanoTime() < deadline) {
        Thread.sleep(5);
      }
    }

    void stop() throws InterruptedException {
      stopping = true;
      for (Thread t : threads) {
        t.join(TimeUnit.SECONDS.toMillis(30));
        assertThat(t.isAlive()).as("%s still running", t.getName()).isFalse();
      }
    }

    private void writeGolden() {
      ThreadLocalRandom random = ThreadLocalRandom.current();
      while (!stopping) {
        // Whole chunks, single blocks and spans across a chunk boundary.
        int length =
            switch (random.nextInt(3)) {
              case 0 -> CHUNK;
              case 1 -> 4096;
              default -> 3 * 4096;
            };
        int offset = random.nextInt((SIZE - length) / 4096 + 1) * 4096;
        byte[] data = new byte[length];
        random.nextBytes(data);
        attempt(
            "write golden",
            () -> {
              try (VirtualDisk disk = service.attach(GOLDEN, Access.READ_WRITE)) {
                disk.write(
                    offset,
                    ByteBuffer.wrap(data),
                    random.nextBoolean() ? Durability.DURABLE : Durability.BUFFERED);
              }
              goldenWrites.incrementAndGet();
            },
            ImageReadOnlyException.class);
      }
    }

    /** Takes snapshots s2, s3, ... of golden and deletes them, and tries s1 now and then. */
    private void churnSnapshots() {
      ThreadLocalRandom random = ThreadLocalRandom.current();
      List<String> taken = new ArrayList<>();
      for (int n = 2; !stopping; n++) {
        String name = "s" + n;
        attempt(
            "take " + name,
            () -> {
              service.createSnapshot(GOLDEN, name);
              taken.add(name);
            },
            ImageReadOnlyException.class);
        pauseMicros(random.nextInt(1000));
        if (taken.size() > 2 || (!taken.isEmpty() && random.nextBoolean())) {
          String victim = taken.get(random.nextInt(taken.size()));
          attempt(
              "delete " + victim,
              () -> {
                service.deleteSnapshot(GOLDEN, victim);
                taken.remove(victim);
              },
              ImageReadOnlyException.class);
        }
        if (random.nextInt(8) == 0) {
          try {
            service.deleteSnapshot(GOLDEN, SNAPSHOT);
            unexpected.add("s1 was deleted while the clone reads it");
          } catch (SnapshotInUseException | ImageReadOnlyException e) {
            // As it must be.
          } catch (RuntimeException e) {
            unexpected.add("delete s1: " + e);
          }
        }
      }
    }

    private void toggleReadOnly() {
      ThreadLocalRandom random = ThreadLocalRandom.current();
      while (!stopping) {
        pauseMicros(500 + random.nextInt(3000));
        boolean done =
            attempt(
                "mark read-only",
                () -> {
                  ImageDescriptor d =
                      service.update(GOLDEN, new ImageChanges(null, true, null, null, null), null);
                  assertThat(d.readOnly()).isTrue();
                });
        pauseMicros(500 + random.nextInt(3000));
        // Cleared even when stopping, so the round ends with golden writable.
        done &=
            attempt(
                "clear read-only",
                () -> {
                  ImageDescriptor d =
                      service.update(GOLDEN, new ImageChanges(null, false, null, null, null), null);
                  assertThat(d.readOnly()).isFalse();
                });
        if (done) {
          toggles.incrementAndGet();
        }
      }
    }

    /** Reads random spans of the clone and checks them against the snapshot and its own write. */
    private void readClone() {
      ThreadLocalRandom random = ThreadLocalRandom.current();
      while (!stopping) {
        int offset = random.nextInt(SIZE / 512) * 512;
        int length = Math.min(SIZE - offset, (1 + random.nextInt(3 * CHUNK / 512)) * 512);
        attempt(
            "read clone",
            () -> {
              ByteBuffer dst = ByteBuffer.allocate(length);
              try (VirtualDisk disk = service.attach(CLONE, Access.READ_ONLY)) {
                disk.read(offset, dst);
              }
              checkSpan("clone", dst.array(), cloneContent, offset);
            });
      }
    }

    private void readSnapshot() {
      while (!stopping) {
        attempt(
            "read s1",
            () -> checkSpan("s1", SnapshotCloneRaceTest.readSnapshot(service), snapshotContent, 0));
      }
    }

    /** Creates a second clone of s1, reads it whole, and deletes it, again and again. */
    private void makeClones() {
      while (!stopping) {
        attempt(
            "second clone",
            () -> {
              ImageDescriptor d = service.create(cloneOf(BASE, false, "second"));
              assertThat(d.base()).isEqualTo(BASE);
              clonesMade.incrementAndGet();
              try {
                checkSpan("second clone", readAll(service, "second"), snapshotContent, 0);
              } finally {
                service.delete("second", null);
              }
            });
        pauseMicros(ThreadLocalRandom.current().nextInt(2000));
      }
    }

    private void checkSpan(String what, byte[] read, byte[] whole, int offset) {
      byte[] want = Arrays.copyOfRange(whole, offset, offset + read.length);
      int at = Arrays.mismatch(read, want);
      if (at >= 0) {
        throw new AssertionError(
            what
                + " differs at byte "
                + (offset + at)
                + " of a read of "
                + read.length
                + " bytes at "
                + offset);
      }
      verifiedReads.incrementAndGet();
    }

    /** Runs a call; true when it returned. The expected refusals are not failures. */
    @SafeVarargs
    private boolean attempt(
        String kind, Request request, Class<? extends ServiceException>... expected) {
      try {
        request.run();
        return true;
      } catch (Exception | AssertionError e) {
        for (Class<? extends ServiceException> type : expected) {
          if (type.isInstance(e)) {
            return false;
          }
        }
        unexpected.add(kind + ": " + e);
        return false;
      }
    }

    @FunctionalInterface
    interface Request {
      void run() throws Exception;
    }
  }

  // ---- helpers ----

  @FunctionalInterface
  private interface Call {
    void run() throws Exception;
  }

  private static String kind(int round) {
    return switch (round % 5) {
      case 0 -> "delete-first";
      case 1 -> "create-first";
      default -> "raced";
    };
  }

  /**
   * Runs {@code delete} and {@code create}: one after the other in rounds 0 and 1 (mod 5), else
   * started together with one of them a random spin late. Returns what each threw, null when it
   * returned.
   */
  private static Throwable[] run(ExecutorService pool, int round, Call delete, Call create)
      throws Exception {
    switch (round % 5) {
      case 0 -> {
        return new Throwable[] {outcome(delete), outcome(create)};
      }
      case 1 -> {
        Throwable created = outcome(create);
        return new Throwable[] {outcome(delete), created};
      }
      default -> {
        ThreadLocalRandom random = ThreadLocalRandom.current();
        long spin = random.nextLong(MAX_SPIN_NANOS);
        boolean deleteLate = random.nextBoolean();
        CountDownLatch ready = new CountDownLatch(2);
        CountDownLatch go = new CountDownLatch(1);
        Future<Throwable> deleted =
            pool.submit(() -> late(ready, go, deleteLate ? spin : 0, delete));
        Future<Throwable> created =
            pool.submit(() -> late(ready, go, deleteLate ? 0 : spin, create));
        ready.await();
        go.countDown();
        return new Throwable[] {
          deleted.get(30, TimeUnit.SECONDS), created.get(30, TimeUnit.SECONDS)
        };
      }
    }
  }

  private static @Nullable Throwable late(
      CountDownLatch ready, CountDownLatch go, long spinNanos, Call call)
      throws InterruptedException {
    ready.countDown();
    go.await();
    long until = System.nanoTime() + spinNanos;
    while (System.nanoTime() < until) {
      Thread.onSpinWait();
    }
    return outcome(call);
  }

  private static @Nullable Throwable outcome(Call call) {
    try {
      call.run();
      return null;
    } catch (Exception e) {
      return e;
    }
  }

  private static ImageService open(Path dir) {
    ImageService service = new ImageService(new ImageDirectory(dir), LIMITS);
    service.openAll();
    return service;
  }

  private static ImageService restart(ImageService service, Path dir) {
    service.close();
    ImageService reopened = open(dir);
    assertThat(reopened.failedImages()).as("images that failed to open").isEmpty();
    return reopened;
  }

  /**
   * Creates a writable golden holding {@code snapshotContent}, takes s1 of it, and overwrites part
   * of it (part of chunk 0, chunk 1 whole, blocks inside chunk 2; chunk 3 stays shared with s1).
   * Returns golden's content now.
   */
  private static byte[] goldenWithSnapshot(
      ImageService service, byte[] snapshotContent, long laterSeed) {
    service.create(
        new CreateImageCommand(GOLDEN, (long) SIZE, null, (long) CHUNK, null, null, null, null));
    write(service, GOLDEN, 0, snapshotContent);
    service.createSnapshot(GOLDEN, SNAPSHOT);
    byte[] later = content(laterSeed);
    byte[] current = snapshotContent.clone();
    int[][] spans = {{4096, 8192}, {CHUNK, CHUNK}, {2 * CHUNK + 12288, 16384}};
    for (int[] span : spans) {
      byte[] data = Arrays.copyOfRange(later, span[0], span[0] + span[1]);
      write(service, GOLDEN, span[0], data);
      System.arraycopy(data, 0, current, span[0], data.length);
    }
    return current;
  }

  private static CreateImageCommand cloneOf(String base, boolean prefetch) {
    return cloneOf(base, prefetch, CLONE);
  }

  private static CreateImageCommand cloneOf(String base, boolean prefetch, String name) {
    return new CreateImageCommand(name, null, base, (long) CHUNK, 4096L, null, prefetch, null);
  }

  /** The clone exists, names golden@s1 as its base, and reads exactly the snapshot's bytes. */
  private static void assertCloneOfSnapshot(ImageService service, byte[] snapshotContent, String as)
      throws Exception {
    ImageDescriptor clone = service.describe(CLONE);
    assertThat(clone.base()).as("%s: the clone's base", as).isEqualTo(BASE);
    assertThat(clone.sizeBytes()).as(as).isEqualTo(SIZE);
    assertThat(readAll(service, CLONE))
        .as("%s: the clone reads s1's bytes", as)
        .isEqualTo(snapshotContent);
  }

  /** Every clone of a snapshot names a snapshot its image still has. */
  private static void assertNoCloneWithoutItsSnapshot(ImageService service, String as) {
    for (ImageDescriptor image : service.list()) {
      String base = image.base();
      if (base == null || base.indexOf('@') < 0) {
        continue;
      }
      BaseName name = BaseName.parse(base);
      List<String> snapshots;
      try {
        snapshots = snapshotNames(service, name.image());
      } catch (ImageNotFoundException e) {
        snapshots = List.of();
      }
      assertThat(snapshots)
          .as("%s: clone %s reads %s, whose snapshot must exist", as, image.name(), base)
          .contains(name.snapshot());
    }
  }

  private static List<String> snapshotNames(ImageService service, String image) {
    return service.snapshots(image).stream().map(SnapshotDescriptor::name).toList();
  }

  private static boolean exists(ImageService service, String name) {
    try {
      service.describe(name);
      return true;
    } catch (ImageNotFoundException e) {
      return false;
    }
  }

  private static void write(ImageService service, String name, long offset, byte[] data) {
    try (VirtualDisk disk = service.attach(name, Access.READ_WRITE)) {
      disk.write(offset, ByteBuffer.wrap(data), Durability.DURABLE);
    }
  }

  private static byte[] readAll(ImageService service, String name) {
    ByteBuffer all = ByteBuffer.allocate(SIZE);
    try (VirtualDisk disk = service.attach(name, Access.READ_ONLY)) {
      disk.read(0, all);
    }
    return all.array();
  }

  private static byte[] readSnapshot(ImageService service) {
    ByteBuffer all = ByteBuffer.allocate(SIZE);
    try (VirtualDisk disk = service.attachSnapshot(GOLDEN, SNAPSHOT)) {
      disk.read(0, all);
    }
    return all.array();
  }

  /** Random bytes from a seed, so every round's snapshot differs from the last. */
  private static byte[] content(long seed) {
    byte[] b = new byte[SIZE];
    new SplittableRandom(seed * 0x9E3779B97F4A7C15L + 7).nextBytes(b);
    return b;
  }

  private static void pauseMicros(long micros) {
    LockSupport.parkNanos(TimeUnit.MICROSECONDS.toNanos(micros));
  }

  private static void report(String what, Map<String, Integer> seen, long startedAt) {
    System.out.printf(
        "snapshot clone race, %s: %d rounds, outcomes %s, %d ms%n",
        what, ROUNDS, seen, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startedAt));
  }
}
