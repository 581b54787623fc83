package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Races {@code delete} against every other use of the same name: lists, look-ups, reads, durable
 * writes, flushes, checks and re-creates. A delete that was acknowledged is final: no request that
 * starts afterwards reaches the image, no write is acknowledged into it, and a restart shows what
 * the service said before it. (A look-up used to reopen the file between the registry removal and
 * the unlink, bringing the image back as a ghost that took writes into an unlinked file.)
 */
class DeleteRaceTest {

  private static final int ROUNDS = Integer.getInteger("fvdisk.delete-race.rounds", 200);
  private static final ServiceLimits LIMITS =
      new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 16);
  private static final long SIZE_BYTES = 256 << 10;
  private static final int WRITE_BYTES = 4096;
  private static final String NAME = "vm";

  @Test
  void an_acknowledged_delete_is_final(@TempDir Path dir) throws Exception {
    ImageService service = open(dir);
    try {
      for (int round = 0; round < ROUNDS; round++) {
        service.create(newImage());
        Race race = new Race(service, 4);
        race.start();
        pauseMicros(ThreadLocalRandom.current().nextInt(2000));
        service.delete(NAME, null);
        long deletedAt = System.nanoTime();
        pauseMicros(2000);
        race.stop();

        assertThat(race.unexpected).as("round %d: unexpected failures", round).isEmpty();
        assertThat(race.reachedImageAfter(deletedAt))
            .as("round %d: requests that started after the delete and reached the image", round)
            .isEmpty();
        assertGone(service, dir, round);
        service.close();
        service = open(dir);
        assertGone(service, dir, round);
      }
    } finally {
      service.close();
    }
  }

  @Test
  void delete_racing_re_create_leaves_what_the_service_said_after_a_restart(@TempDir Path dir)
      throws Exception {
    ImageService service = open(dir);
    try {
      for (int round = 0; round < ROUNDS; round++) {
        if (!exists(service)) {
          service.create(newImage());
        }
        ImageService racing = service;
        Race race = new Race(racing, 3);
        race.start();
        Thread deleter = churn(race, () -> racing.delete(NAME, null));
        Thread creator = churn(race, () -> racing.create(newImage()));
        deleter.join();
        creator.join();
        race.stop();
        assertThat(race.unexpected).as("round %d: unexpected failures", round).isEmpty();

        boolean existed = exists(service);
        assertThat(Files.exists(dir.resolve(NAME + ".fvd")))
            .as("round %d: the file exists exactly when the service shows the image", round)
            .isEqualTo(existed);
        byte[] before = existed ? readAll(service) : null;
        service.close();
        service = open(dir);
        assertThat(exists(service))
            .as("round %d: image present after restart", round)
            .isEqualTo(existed);
        if (existed) {
          assertThat(readAll(service))
              .as("round %d: every acknowledged write survives the restart", round)
              .isEqualTo(before);
        }
      }
    } finally {
      service.close();
    }
  }

  private static ImageService open(Path dir) {
    ImageService service = new ImageService(new ImageDirectory(dir), LIMITS);
    service.openAll();
    return service;
  }

  private static CreateImageCommand newImage() {
    return new CreateImageCommand(NAME, SIZE_BYTES, null, 65536L, null, null, null, null);
  }

  private static void assertGone(ImageService service, Path dir, int round) {
    assertThatThrownBy(() -> service.describe(NAME))
        .as("round %d: look-up after delete", round)
        .isInstanceOf(ImageNotFoundException.class);
    assertThatThrownBy(() -> service.flush(NAME, null))
        .as("round %d: flush after delete", round)
        .isInstanceOf(ImageNotFoundException.class);
    assertThat(service.list()).as("round %d: list after delete", round).isEmpty();
    assertThat(service.storageSnapshot().images()).as("round %d: storage", round).isEmpty();
    assertThat(service.failedImages()).as("round %d: failed images", round).isEmpty();
    assertThat(dir.resolve(NAME + ".fvd")).as("round %d: the file", round).doesNotExist();
  }

  private static boolean exists(ImageService service) {
    try {
      service.describe(NAME);
      return true;
    } catch (ImageNotFoundException e) {
      return false;
    }
  }

  private static byte[] readAll(ImageService service) throws Exception {
    ByteBuffer all = ByteBuffer.allocate((int) SIZE_BYTES);
    try (VirtualDisk disk = service.attach(NAME, Access.READ_ONLY)) {
      disk.read(0, all);
    }
    return all.array();
  }

  private static void pauseMicros(long micros) {
    LockSupport.parkNanos(TimeUnit.MICROSECONDS.toNanos(micros));
  }

  /** A thread that runs {@code change} three times at random moments while the race runs. */
  private static Thread churn(Race race, Race.Request change) {
    Thread t =
        new Thread(
            () -> {
              for (int i = 0; i < 3; i++) {
                pauseMicros(ThreadLocalRandom.current().nextInt(1500));
                race.attempt("churn", change);
              }
            },
            "delete-race-churn");
    t.start();
    return t;
  }

  /**
   * Worker threads that send every kind of request for the image until stopped, each one logged
   * with its start time and whether it reached the image.
   */
  private static final class Race {

    @FunctionalInterface
    interface Request {
      void run() throws Exception;
    }

    record Outcome(String kind, long startedAt, boolean reachedImage) {}

    final Queue<Outcome> outcomes = new ConcurrentLinkedQueue<>();
    final Queue<String> unexpected = new ConcurrentLinkedQueue<>();
    private final ImageService service;
    private final List<Thread> workers = new ArrayList<>();
    private volatile boolean stopping;

    Race(ImageService service, int threads) {
      this.service = service;
      for (int i = 0; i < threads; i++) {
        workers.add(new Thread(this::work, "delete-race-worker-" + i));
      }
    }

    void start() {
      workers.forEach(Thread::start);
    }

    void stop() throws InterruptedException {
      stopping = true;
      for (Thread t : workers) {
        t.join(TimeUnit.SECONDS.toMillis(30));
        assertThat(t.isAlive()).as("%s still running", t.getName()).isFalse();
      }
    }

    private void work() {
      ThreadLocalRandom random = ThreadLocalRandom.current();
      while (!stopping) {
        switch (random.nextInt(6)) {
          case 0 ->
              attempt(
                  "list",
                  () -> {
                    if (service.list().stream().noneMatch(d -> d.name().equals(NAME))) {
                      throw new ImageNotFoundException(NAME);
                    }
                  });
          case 1 -> attempt("describe", () -> service.describe(NAME));
          case 2 ->
              attempt(
                  "read",
                  () -> {
                    try (VirtualDisk disk = service.attach(NAME, Access.READ_ONLY)) {
                      disk.read(0, ByteBuffer.allocate(WRITE_BYTES));
                    }
                  });
          case 3 -> {
            long offset = random.nextLong(SIZE_BYTES / WRITE_BYTES) * WRITE_BYTES;
            byte[] data = new byte[WRITE_BYTES];
            random.nextBytes(data);
            attempt(
                "write",
                () -> {
                  try (VirtualDisk disk = service.attach(NAME, Access.READ_WRITE)) {
                    disk.write(offset, ByteBuffer.wrap(data), Durability.DURABLE);
                  }
                });
          }
          case 4 -> attempt("flush", () -> service.flush(NAME, null));
          default -> attempt("check", () -> service.check(NAME, false));
        }
      }
    }

    void attempt(String kind, Request request) {
      long startedAt = System.nanoTime();
      try {
        request.run();
        outcomes.add(new Outcome(kind, startedAt, true));
      } catch (ImageNotFoundException | ImageExistsException e) {
        outcomes.add(new Outcome(kind, startedAt, false));
      } catch (Exception | AssertionError e) {
        unexpected.add(kind + ": " + e);
      }
    }

    List<Outcome> reachedImageAfter(long nanos) {
      return outcomes.stream().filter(o -> o.reachedImage() && o.startedAt() > nanos).toList();
    }
  }
}
