package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fvdisk.engine.io.FileStorage;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Compaction moves chunks while they are written: no write may be lost to a move (written into the
 * old slot after its bytes were copied) and none may land in another chunk. The first half of the
 * image is written and zeroed, so the chunks of the second half sit after free slots; writers own
 * those chunks and stamp each sector with its offset and a sequence number, while compaction moves
 * them one at a time and flushes run without pause; file reads (so a move's copy) are slowed. At
 * the end, and after a reopen, every owned sector holds exactly the last stamp written to it.
 */
class CompactionRaceTest {

  private static final int CHUNK = 64 * 1024;
  private static final int SECTOR = 512;
  private static final int FREED_CHUNKS = 16;
  private static final int OWNED_CHUNKS = 16;
  private static final int WRITERS = 2;
  private static final int WRITES_PER_WRITER = 4000;

  @TempDir Path dir;

  @Test
  void writes_racing_compaction_are_never_lost_or_misplaced() throws Exception {
    int chunks = FREED_CHUNKS + OWNED_CHUNKS;
    ImageOptions options =
        ImageOptions.builder((long) chunks * CHUNK)
            .chunkSizeBytes(CHUNK)
            .growthUnitBytes(CHUNK)
            .journalSizeBytes(8192)
            .build();
    Path file = dir.resolve("race.fvd");
    long[] lastStamp = new long[OWNED_CHUNKS * CHUNK / SECTOR];
    AtomicLong moved = new AtomicLong();
    SlowCountingStorage storage = new SlowCountingStorage(FileStorage.createNew(file));
    try (Image image = Image.create(storage, options)) {
      // Every file read returns a millisecond late, so a move holds the bytes it copies long
      // enough for writes to the chunk to queue behind it (nothing else reads until the end).
      storage.setReadDelayMillis(1);
      storage.setDelayAfterRead(true);
      AtomicBoolean done = new AtomicBoolean();
      List<Throwable> failures = new CopyOnWriteArrayList<>();
      List<Thread> background = new ArrayList<>();
      // The owned chunks take the slots after the first chunks', whose slots are then freed, so
      // compaction has all the owned chunks to move while they are written.
      image.write(0, ByteBuffer.allocate(FREED_CHUNKS * CHUNK).put(0, (byte) 1));
      for (int c = FREED_CHUNKS; c < chunks; c++) {
        image.write((long) c * CHUNK, ByteBuffer.allocate(1));
      }
      image.flush();
      image.zero(0, (long) FREED_CHUNKS * CHUNK);
      image.flush();
      background.add(loop(done, failures, null, random -> image.flush()));
      background.add(
          loop(done, failures, null, random -> moved.addAndGet(image.compact(1).movedChunks())));
      List<Thread> writers = new ArrayList<>();
      for (int w = 0; w < WRITERS; w++) {
        int writer = w;
        writers.add(
            new Thread(
                () -> {
                  SplittableRandom random = new SplittableRandom(10 + writer);
                  try {
                    for (int n = 1; n <= WRITES_PER_WRITER; n++) {
                      // Writer w owns every WRITERS-th owned chunk, so each sector has one writer.
                      int owned = random.nextInt(OWNED_CHUNKS / WRITERS) * WRITERS + writer;
                      int sectors = 1 + random.nextInt(8);
                      int first = random.nextInt(CHUNK / SECTOR - sectors + 1);
                      int index = owned * (CHUNK / SECTOR) + first;
                      ByteBuffer data = ByteBuffer.allocate(sectors * SECTOR);
                      for (int s = 0; s < sectors; s++) {
                        long stamp = (long) n * WRITERS + writer;
                        fill(data, s * SECTOR, offsetOf(index + s), stamp);
                        lastStamp[index + s] = stamp;
                      }
                      image.write(offsetOf(index), data);
                    }
                  } catch (Throwable e) {
                    failures.add(e);
                  }
                }));
      }
      background.forEach(Thread::start);
      writers.forEach(Thread::start);
      for (Thread t : writers) {
        t.join();
      }
      done.set(true);
      for (Thread t : background) {
        t.join();
      }
      assertEquals(List.of(), failures);
      assertTrue(moved.get() > 0, "compaction moved nothing");
      storage.setReadDelayMillis(0);
      image.flush();
      assertEquals(List.of(), wrongSectors(image, lastStamp));
      assertEquals(CheckReport.Status.OK, image.check(false).status());
    }
    try (Image image = Image.open(FileStorage.open(file, false), false)) {
      assertEquals(List.of(), wrongSectors(image, lastStamp));
    }
    System.out.printf("CompactionRaceTest: %d chunks moved under writes%n", moved.get());
  }

  private interface Step {
    void run(SplittableRandom random) throws Exception;
  }

  private static Thread loop(
      AtomicBoolean done, List<Throwable> failures, SplittableRandom random, Step step) {
    return new Thread(
        () -> {
          try {
            while (!done.get()) {
              step.run(random);
            }
          } catch (Throwable e) {
            failures.add(e);
          }
        });
  }

  private static long offsetOf(int ownedSectorIndex) {
    return (long) FREED_CHUNKS * CHUNK + (long) ownedSectorIndex * SECTOR;
  }

  private static void fill(ByteBuffer data, int at, long offset, long stamp) {
    for (int i = at; i < at + SECTOR; i += 16) {
      data.putLong(i, offset).putLong(i + 8, stamp);
    }
  }

  /** The first few owned sectors that do not hold their last stamp (or zeros if never written). */
  private static List<String> wrongSectors(Image image, long[] lastStamp) throws Exception {
    ByteBuffer all = ByteBuffer.allocate(OWNED_CHUNKS * CHUNK);
    image.read(offsetOf(0), all);
    List<String> wrong = new ArrayList<>();
    for (int s = 0; s < lastStamp.length && wrong.size() < 5; s++) {
      long offset = all.getLong(s * SECTOR);
      long stamp = all.getLong(s * SECTOR + 8);
      boolean expected =
          lastStamp[s] == 0
              ? offset == 0 && stamp == 0
              : offset == offsetOf(s) && stamp == lastStamp[s];
      if (!expected) {
        wrong.add(
            "sector at "
                + offsetOf(s)
                + " holds offset "
                + offset
                + " stamp "
                + stamp
                + ", expected stamp "
                + lastStamp[s]);
      }
    }
    return wrong;
  }
}
