package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fvdisk.engine.io.FileStorage;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Zeroing whole chunks takes their slots away, and a flush hands them to other chunks; compaction
 * moves chunks into freed slots and cuts the file; reads and writes that looked a mapping up just
 * before must notice. Writers stamp every sector with its own virtual offset, another thread zeroes
 * whole chunks, flushes run all the time so freed slots are reused at once, compaction steps run
 * all the time too, and readers check that every sector reads as zeros or as a stamp of its own
 * offset: never another chunk's bytes, never a stale stamp in a reused slot. Reads from the file
 * are slowed down, so that lookups queue behind the slot locks that zeroes and writes take.
 */
class ZeroRaceTest {

  @RegisterExtension static final CheckOnClose CHECKED = new CheckOnClose();

  private static final int CHUNK = 64 * 1024;
  private static final int CHUNKS = 24;
  private static final int SECTOR = 512;
  private static final int WRITERS = 3; // the first one zeroes
  private static final int READERS = 4;
  private static final int ROUNDS_PER_WRITER = 6000;

  @TempDir Path dir;

  @Test
  void reads_and_writes_racing_zeroes_and_flushes_never_see_another_chunks_bytes()
      throws Exception {
    ImageOptions options =
        ImageOptions.builder((long) CHUNKS * CHUNK)
            .chunkSizeBytes(CHUNK)
            .growthUnitBytes(CHUNK)
            .build();
    SlowCountingStorage storage =
        new SlowCountingStorage(FileStorage.createNew(dir.resolve("zero.fvd")));
    try (Image image = Image.create(storage, options)) {
      storage.setReadDelayMillis(1);
      AtomicBoolean done = new AtomicBoolean();
      ConcurrentLinkedQueue<String> wrong = new ConcurrentLinkedQueue<>();
      AtomicLong zeroes = new AtomicLong();
      AtomicLong reads = new AtomicLong();
      AtomicLong moved = new AtomicLong();
      AtomicLong released = new AtomicLong();
      List<Thread> threads = new ArrayList<>();
      List<Throwable> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
      for (int w = 0; w < WRITERS; w++) {
        int writer = w;
        threads.add(
            new Thread(
                () -> {
                  SplittableRandom random = new SplittableRandom(writer);
                  try {
                    for (int round = 1; round <= ROUNDS_PER_WRITER; round++) {
                      long chunkStart = (long) random.nextInt(CHUNKS) * CHUNK;
                      if (writer == 0) {
                        image.zero(chunkStart, CHUNK);
                        zeroes.incrementAndGet();
                      } else {
                        int sectors = 1 + random.nextInt(16);
                        int first = random.nextInt(CHUNK / SECTOR - sectors + 1);
                        byte[] data = new byte[sectors * SECTOR];
                        for (int s = 0; s < sectors; s++) {
                          stamp(data, s * SECTOR, chunkStart + (long) (first + s) * SECTOR, round);
                        }
                        image.write(chunkStart + (long) first * SECTOR, ByteBuffer.wrap(data));
                      }
                    }
                  } catch (Throwable e) {
                    failures.add(e);
                  }
                }));
      }
      List<Thread> background = new ArrayList<>();
      background.add(
          new Thread(
              () -> {
                try {
                  while (!done.get()) {
                    image.flush();
                  }
                } catch (Throwable e) {
                  failures.add(e);
                }
              }));
      background.add(
          new Thread(
              () -> {
                try {
                  while (!done.get()) {
                    CompactionStep step = image.compact(4);
                    moved.addAndGet(step.movedChunks());
                    released.addAndGet(step.releasedBytes());
                  }
                } catch (Throwable e) {
                  failures.add(e);
                }
              }));
      for (int r = 0; r < READERS; r++) {
        int reader = r;
        background.add(
            new Thread(
                () -> {
                  SplittableRandom random = new SplittableRandom(100 + reader);
                  ByteBuffer buf = ByteBuffer.allocate(2 * CHUNK);
                  try {
                    while (!done.get()) {
                      long start = (long) random.nextInt(CHUNKS - 2) * CHUNK;
                      long offset = start + (long) random.nextInt(CHUNK / SECTOR) * SECTOR;
                      buf.clear().limit(CHUNK + random.nextInt(CHUNK / SECTOR) * SECTOR);
                      image.read(offset, buf);
                      for (int at = 0; at < buf.limit(); at += SECTOR) {
                        String problem = check(buf.array(), at, offset + at);
                        if (problem != null) {
                          wrong.add(problem);
                        }
                      }
                      reads.incrementAndGet();
                    }
                  } catch (Throwable e) {
                    failures.add(e);
                  }
                }));
      }
      background.forEach(Thread::start);
      threads.forEach(Thread::start);
      for (Thread t : threads) {
        t.join();
      }
      done.set(true);
      for (Thread t : background) {
        t.join();
      }
      assertEquals(List.of(), failures);
      assertEquals(List.of(), List.copyOf(wrong).subList(0, Math.min(5, wrong.size())));
      assertTrue(zeroes.get() > 100 && reads.get() > 10, zeroes + " zeroes, " + reads + " reads");
      // How much compaction finds to move depends on timing (often dozens of chunks, at times
      // none); CompactionRaceTest is the one that requires moves.
      storage.setReadDelayMillis(0);
      ByteBuffer all = ByteBuffer.allocate(CHUNKS * CHUNK);
      image.read(0, all);
      for (int at = 0; at < all.limit(); at += SECTOR) {
        String problem = check(all.array(), at, at);
        if (problem != null) {
          wrong.add("at the end: " + problem);
        }
      }
      assertEquals(List.of(), List.copyOf(wrong).subList(0, Math.min(5, wrong.size())));
      assertEquals(CheckReport.Status.OK, image.check(false).status());
      System.out.printf(
          "ZeroRaceTest: %d zeroes, %d chunks moved, %d bytes released, %d reads of up to 2"
              + " chunks checked%n",
          zeroes.get(), moved.get(), released.get(), reads.get());
    }
  }

  /** Fills a sector with its virtual offset and the round that wrote it. */
  private static void stamp(byte[] data, int at, long virtualOffset, int round) {
    ByteBuffer b = ByteBuffer.wrap(data, at, SECTOR);
    while (b.remaining() >= 16) {
      b.putLong(virtualOffset).putLong(round);
    }
  }

  /** Null when the sector reads as zeros or as a stamp of {@code virtualOffset}, else why not. */
  private static String check(byte[] data, int at, long virtualOffset) {
    ByteBuffer b = ByteBuffer.wrap(data, at, SECTOR);
    long first = b.getLong(at);
    long round = b.getLong(at + 8);
    if (first == 0 && round == 0) {
      for (int i = at; i < at + SECTOR; i++) {
        if (data[i] != 0) {
          return "sector at " + virtualOffset + " is neither zeros nor a stamp";
        }
      }
      return null;
    }
    if (first != virtualOffset) {
      return "sector at " + virtualOffset + " holds the stamp of offset " + first;
    }
    for (int i = at; i < at + SECTOR; i += 16) {
      if (b.getLong(i) != virtualOffset || b.getLong(i + 8) != round) {
        return "sector at " + virtualOffset + " is torn";
      }
    }
    return null;
  }
}
