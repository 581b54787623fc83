package dev.fvdisk.service;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Races the service's background compaction against writes, zeroes, reads, deletes, read-only marks
 * and checks of the image it is compacting. Every round fills an image, zeroes its lower half (so
 * compaction has chunks to move down) and then lets a thread run compaction passes back to back,
 * one chunk per step, while the image is used and changed. Whatever the interleaving, the image
 * reads exactly what was written, checks clean, survives a restart, and no step fails.
 */
class BackgroundCompactionTest {

  private static final int ROUNDS = Integer.getInteger("fvdisk.compaction-race.rounds", 120);
  private static final ServiceLimits LIMITS =
      new ServiceLimits(1L << 40, null, 65536, 0, 4096, 1000, 16);
  private static final int CHUNK = 64 << 10;
  private static final int CHUNKS = 16;
  private static final int SIZE = CHUNK * CHUNKS;
  private static final String NAME = "vm";

  private final AtomicLong movedBytes = new AtomicLong();
  private final AtomicLong releasedBytes = new AtomicLong();
  private final AtomicLong failures = new AtomicLong();
  private final ImageServiceObserver observer =
      new ImageServiceObserver() {
        @Override
        public void compacted(String name, long moved, long released) {
          movedBytes.addAndGet(moved);
          releasedBytes.addAndGet(released);
        }

        @Override
        public void compactionFailed(String name) {
          failures.incrementAndGet();
        }
      };

  @Test
  void compaction_racing_the_image_s_use_and_lifecycle_keeps_every_write(@TempDir Path dir)
      throws Exception {
    Random random = new Random(20261206);
    ImageService service = open(dir);
    int roundsThatMoved = 0;
    try {
      for (int round = 0; round < ROUNDS; round++) {
        Compactor compactor = oneChunkAStep(service);
        byte[] model = new byte[SIZE];
        service.create(
            new CreateImageCommand(NAME, (long) SIZE, null, (long) CHUNK, null, null, null, null));
        try (VirtualDisk disk = service.attach(NAME, Access.READ_WRITE)) {
          byte[] all = new byte[SIZE];
          random.nextBytes(all);
          write(disk, model, 0, all, Durability.BUFFERED);
          zero(disk, model, 0, SIZE / 2, Durability.DURABLE);
        }

        long movedBefore = movedBytes.get();
        Ticker ticker = new Ticker(compactor);
        ticker.start();
        boolean deleted = false;
        try (VirtualDisk disk = service.attach(NAME, Access.READ_WRITE)) {
          int operations = random.nextInt(40);
          for (int i = 0; i < operations; i++) {
            int at = random.nextInt(SIZE / 4096) * 4096;
            Durability durability = random.nextBoolean() ? Durability.DURABLE : Durability.BUFFERED;
            switch (random.nextInt(4)) {
              case 0 -> zero(disk, model, at, Math.min(SIZE - at, CHUNK), durability);
              case 1 -> assertSameBytes(readAll(disk), model, "round " + round + ", read " + i);
              default -> {
                byte[] data = new byte[4096];
                random.nextBytes(data);
                write(disk, model, at, data, durability);
              }
            }
          }
        }
        switch (random.nextInt(4)) {
          case 0 -> {
            service.delete(NAME, null);
            deleted = true;
          }
          case 1 -> {
            service.update(NAME, new ImageChanges(null, true, null, null, null), null);
            service.update(NAME, new ImageChanges(null, false, null, null, null), null);
          }
          case 2 ->
              assertThat(service.check(NAME, false).problems()).as("round %d", round).isEmpty();
          default -> {
            // Compaction runs on alone for a moment.
            Thread.sleep(random.nextInt(5));
          }
        }
        if (!deleted) {
          assertSameBytes(readAll(service), model, "round " + round + ", while compacting");
        }
        ticker.finish();
        if (movedBytes.get() > movedBefore) {
          roundsThatMoved++;
        }
        if (deleted) {
          continue;
        }
        assertThat(service.check(NAME, false).problems()).as("round %d", round).isEmpty();
        if (round % 10 == 0) {
          service.close();
          service = open(dir);
          assertSameBytes(readAll(service), model, "round " + round + ", after a restart");
        }
        service.delete(NAME, null);
      }
    } finally {
      service.close();
    }
    System.out.printf(
        "BackgroundCompactionTest: %d rounds, %d in which chunks moved; %d bytes moved, %d bytes"
            + " cut from files, %d failed steps%n",
        ROUNDS, roundsThatMoved, movedBytes.get(), releasedBytes.get(), failures.get());
    assertThat(failures.get()).as("failed compaction steps").isZero();
    // Not vacuous: compaction really ran during the races, in most rounds.
    assertThat(roundsThatMoved).isGreaterThan(ROUNDS / 2);
  }

  @Test
  void a_busy_image_is_not_compacted_until_it_has_been_quiet(@TempDir Path dir) throws Exception {
    try (ImageService service = open(dir)) {
      Compactor compactor =
          service.newCompactor(new CompactionPolicy(Duration.ofSeconds(1), 1L << 30));
      service.create(
          new CreateImageCommand(NAME, (long) SIZE, null, (long) CHUNK, null, null, null, null));
      byte[] model = new byte[SIZE];
      try (VirtualDisk disk = service.attach(NAME, Access.READ_WRITE)) {
        byte[] all = new byte[SIZE];
        new Random(1).nextBytes(all);
        write(disk, model, 0, all, Durability.BUFFERED);
        zero(disk, model, 0, SIZE / 2, Durability.DURABLE);
        long fileBefore = service.describe(NAME).fileBytes();
        compactor.tick();
        assertThat(movedBytes.get()).as("moved right after client I/O").isZero();
        assertThat(service.describe(NAME).fileBytes()).isEqualTo(fileBefore);

        Thread.sleep(1100);
        compactor.tick();
        assertThat(movedBytes.get()).as("moved once quiet").isEqualTo(SIZE / 2);
        // The cut takes the file's unused growth reserve too.
        assertThat(service.describe(NAME).fileBytes()).isLessThanOrEqualTo(fileBefore - SIZE / 2);
        assertThat(readAll(disk)).isEqualTo(model);
      }
    }
  }

  private ImageService open(Path dir) {
    ImageService service =
        new ImageService(new ImageDirectory(dir), LIMITS, observer, Duration.ofSeconds(5));
    service.openAll();
    return service;
  }

  /** Quiet period 0 and a rate of one chunk a tick, so each pass moves one chunk at most. */
  private static Compactor oneChunkAStep(ImageService service) {
    return service.newCompactor(
        new CompactionPolicy(Duration.ZERO, CHUNK * 1000L / Compactor.TICK_MILLIS));
  }

  private static void write(
      VirtualDisk disk, byte[] model, int at, byte[] data, Durability durability) {
    disk.write(at, ByteBuffer.wrap(data), durability);
    System.arraycopy(data, 0, model, at, data.length);
  }

  private static void zero(
      VirtualDisk disk, byte[] model, int at, int length, Durability durability) {
    disk.zero(at, length, durability);
    Arrays.fill(model, at, at + length, (byte) 0);
  }

  /** Names the first 512-byte sector that differs, rather than printing a megabyte. */
  private static void assertSameBytes(byte[] actual, byte[] expected, String what) {
    int at = Arrays.mismatch(actual, expected);
    if (at >= 0) {
      int sector = at / 512 * 512;
      byte[] got = Arrays.copyOfRange(actual, sector, sector + 512);
      byte[] want = Arrays.copyOfRange(expected, sector, sector + 512);
      throw new AssertionError(
          String.format(
              "%s: first difference at byte %d (chunk %d); that sector reads %s zeros, expected %s"
                  + " zeros",
              what,
              at,
              at / CHUNK,
              Arrays.equals(got, new byte[512]) ? "all" : "not all",
              Arrays.equals(want, new byte[512]) ? "all" : "not all"));
    }
  }

  private static byte[] readAll(VirtualDisk disk) {
    ByteBuffer all = ByteBuffer.allocate(SIZE);
    disk.read(0, all);
    return all.array();
  }

  private static byte[] readAll(ImageService service) {
    try (VirtualDisk disk = service.attach(NAME, Access.READ_ONLY)) {
      return readAll(disk);
    }
  }

  /** Runs compaction passes back to back until finished. */
  private static final class Ticker extends Thread {
    private final Compactor compactor;
    private volatile boolean finishing;

    Ticker(Compactor compactor) {
      super("compaction-ticker");
      this.compactor = compactor;
    }

    @Override
    public void run() {
      while (!finishing) {
        compactor.tick();
      }
    }

    void finish() throws InterruptedException {
      finishing = true;
      join();
    }
  }
}
