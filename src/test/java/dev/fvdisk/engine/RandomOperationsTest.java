package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.fvdisk.engine.CheckReport.Status;
import dev.fvdisk.engine.io.CrashingStorage;
import dev.fvdisk.engine.io.CrashingStorage.Mode;
import dev.fvdisk.engine.io.FileStorage;
import dev.fvdisk.engine.io.MemoryStorage;
import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Model-based random tests: random writes, reads, flushes, grows, checks, clean reopens, restarts
 * without close and power losses, applied to an image and to a plain byte array, compared after
 * every step.
 *
 * <p>Each seed picks its own small geometry (chunk size, virtual size, which need not be a whole
 * number of chunks, journal size, growth unit) and then runs its operations. Writes and reads use
 * random offsets and lengths, unaligned as often as not, many spanning chunks. The model is exact:
 *
 * <ul>
 *   <li>a restart without close (a killed process; the storage keeps everything written) loses
 *       exactly the chunks first written since the last durable point, which then read as zeros;
 *   <li>a power loss ({@link CrashingStorage} dropping everything not forced) returns the disk to
 *       its state at the last durable point. Durable points are a returned flush, grow or close,
 *       and every open for writing, which forces what it shows.
 * </ul>
 *
 * <p>A failure names its seed. System properties:
 *
 * <ul>
 *   <li>{@code -Dfvdisk.seed=S} runs only seed S (with the default operation count);
 *   <li>{@code -Dfvdisk.random.seeds=N} runs seeds 1..N (default 200);
 *   <li>{@code -Dfvdisk.random.ops=N} sets the operations per seed (default 200);
 *   <li>{@code -Dfvdisk.concurrent.rounds=N} sets the rounds of the concurrent tests (default 12).
 * </ul>
 */
class RandomOperationsTest {

  private static final int SECTOR_BYTES = 512;
  private static final int OPS = Integer.getInteger("fvdisk.random.ops", 200);
  private static final int CONCURRENT_ROUNDS = Integer.getInteger("fvdisk.concurrent.rounds", 12);

  private static long[] seeds() {
    String only = System.getProperty("fvdisk.seed");
    if (only != null && !only.isBlank()) {
      return new long[] {Long.parseLong(only.trim())};
    }
    return LongStream.rangeClosed(1, Integer.getInteger("fvdisk.random.seeds", 200)).toArray();
  }

  @Test
  void random_operations_match_a_byte_array_model_for_every_seed() throws Exception {
    long[] seeds = seeds();
    long operations = 0;
    for (long seed : seeds) {
      try {
        operations += new Session(seed, OPS).run();
      } catch (AssertionError | Exception e) {
        throw new AssertionError(
            "seed " + seed + " failed (rerun with -Dfvdisk.seed=" + seed + "): " + e, e);
      }
    }
    System.out.printf(
        "RandomOperationsTest: %d seeds, %d operations matched the model%n",
        seeds.length, operations);
  }

  @Test
  void unwritten_ranges_longer_than_a_mebibyte_in_large_chunks_read_as_zeros() throws Exception {
    // Chunks above 1 MiB let one read cover more than 1 MiB of an unallocated chunk.
    int chunkBytes = 4 << 20;
    MemoryStorage storage = new MemoryStorage("large-chunks");
    try (Image image =
        Image.create(
            storage,
            ImageOptions.builder(3L * chunkBytes)
                .chunkSizeBytes(chunkBytes)
                .journalSizeBytes(4096)
                .build())) {
      byte[] data = pattern(1000, 1);
      image.write(chunkBytes + 10, ByteBuffer.wrap(data));
      ByteBuffer all = ByteBuffer.allocate(3 * chunkBytes);
      image.read(0, all);
      byte[] expected = new byte[3 * chunkBytes];
      System.arraycopy(data, 0, expected, chunkBytes + 10, data.length);
      assertArrayEquals(expected, all.array());
    }
  }

  private static byte[] pattern(int lengthBytes, long seed) {
    byte[] bytes = new byte[lengthBytes];
    new SplittableRandom(seed).nextBytes(bytes);
    for (int i = 0; i < lengthBytes; i++) {
      // Never zero, so a lost write can never pass for a write of zeros.
      if (bytes[i] == 0) {
        bytes[i] = 1;
      }
    }
    return bytes;
  }

  /** One seed's run: an image, its exact model, and the random choices. */
  private static final class Session {
    private final long seed;
    private final int operations;
    private final SplittableRandom random;
    private final ImageOptions options;
    private final int chunkBytes;

    private CrashingStorage storage;
    private Image image;
    private long sizeBytes;
    private byte[] model;
    private final BitSet mappedChunks = new BitSet();
    private long durableSizeBytes;
    private byte[] durableModel;
    private BitSet durableMappedChunks = new BitSet();
    private int dataSeed;

    Session(long seed, int operations) {
      this.seed = seed;
      this.operations = operations;
      this.random = new SplittableRandom(seed);
      int[] chunkChoices = {4096, 4096, 8192, 16384, 65536};
      // A few seeds use chunks above 1 MiB, where one read can span more than 1 MiB of holes.
      chunkBytes =
          random.nextInt(40) == 0 ? 2 << 20 : chunkChoices[random.nextInt(chunkChoices.length)];
      int chunks = chunkBytes > (1 << 20) ? 2 : 3 + random.nextInt(14);
      long size = (long) chunks * chunkBytes;
      if (random.nextBoolean()) {
        // The last chunk is only partly inside the disk.
        size -= (long) SECTOR_BYTES * (1 + random.nextInt(chunkBytes / SECTOR_BYTES - 1));
      }
      long maxSize = size + (long) SECTOR_BYTES * random.nextInt((int) (size / SECTOR_BYTES) + 1);
      long[] journalChoices = {512, 1024, 2048, 4096, 16384};
      options =
          ImageOptions.builder(size)
              .chunkSizeBytes(chunkBytes)
              .maxSizeBytes(maxSize)
              .journalSizeBytes(journalChoices[random.nextInt(journalChoices.length)])
              .growthUnitBytes((long) chunkBytes * (1 + random.nextInt(4)))
              .build();
    }

    /** Runs the operations; returns how many ran. */
    int run() throws IOException {
      MemoryStorage memory = new MemoryStorage("seed-" + seed);
      Image.create(memory, options).close();
      storage = CrashingStorage.wrap(memory.reopen());
      image = Image.open(storage, true);
      sizeBytes = options.sizeBytes();
      model = new byte[(int) options.maxSizeBytes()];
      markDurable();
      for (int op = 0; op < operations; op++) {
        step(op);
      }
      verifyAll("at the end");
      image.close();
      MemoryStorage survivors = storage.survivingStorage("seed-" + seed + "-final");
      CheckReport report = Images.check(survivors);
      assertNotEquals(Status.CORRUPT, report.status(), report.problems().toString());
      try (Image reopened = Image.open(survivors, false)) {
        image = reopened;
        verifyAll("after the final close and a read-only open");
      }
      return operations;
    }

    private void step(int op) throws IOException {
      int dice = random.nextInt(100);
      String where = "operation " + op;
      if (dice < 40) {
        write(where);
      } else if (dice < 60) {
        long offset = randomOffset();
        int length = randomLength(offset);
        verifyRange(offset, length, where + " (read)");
      } else if (dice < 72) {
        image.flush();
        markDurable();
      } else if (dice < 78) {
        image.close();
        image = Image.open(storage.reopen(), true);
        markDurable();
        verifyAll(where + " (after close and reopen)");
      } else if (dice < 84) {
        restartWithoutClose(where);
      } else if (dice < 90) {
        losePower(where);
      } else if (dice < 94) {
        grow(where);
      } else {
        boolean repair = random.nextBoolean();
        CheckReport report = image.check(repair);
        assertNotEquals(Status.CORRUPT, report.status(), where + ": " + report.problems());
        if (repair) {
          assertEquals(0, image.stats().leakedChunks(), where + ": repair left leaks");
        }
      }
    }

    private void write(String where) throws IOException {
      long offset = randomOffset();
      int length = randomLength(offset);
      byte[] data = pattern(length, seed * 1_000_003L + dataSeed++);
      image.write(offset, ByteBuffer.wrap(data));
      System.arraycopy(data, 0, model, (int) offset, length);
      mappedChunks.set((int) (offset / chunkBytes), (int) ((offset + length - 1) / chunkBytes) + 1);
      // Read back the write and a margin around it, where a misplaced piece would show.
      long from = Math.max(0, offset - 700);
      long to = Math.min(sizeBytes, offset + length + 700);
      verifyRange(from, (int) (to - from), where + " (write of " + length + " at " + offset + ")");
    }

    /** A killed process: the storage keeps all writes, but unflushed new mappings are lost. */
    private void restartWithoutClose(String where) throws IOException {
      image = Image.open(storage, true);
      BitSet lost = (BitSet) mappedChunks.clone();
      lost.andNot(durableMappedChunks);
      for (int c = lost.nextSetBit(0); c >= 0; c = lost.nextSetBit(c + 1)) {
        int from = c * chunkBytes;
        Arrays.fill(model, from, Math.min(model.length, from + chunkBytes), (byte) 0);
      }
      mappedChunks.andNot(lost);
      markDurable();
      verifyAll(where + " (after a restart without close, " + lost.cardinality() + " lost)");
    }

    /** Power fails: only what was forced survives. */
    private void losePower(String where) throws IOException {
      storage.crashNow(Mode.LOSE_UNFORCED, seed);
      storage = storage.reboot("seed-" + seed + "-after-power-loss");
      CheckReport offline = Images.check(storage);
      assertNotEquals(Status.CORRUPT, offline.status(), where + ": " + offline.problems());
      image = Image.open(storage, true);
      assertEquals(offline.leakedChunks(), image.stats().leakedChunks(), where);
      sizeBytes = durableSizeBytes;
      model = durableModel.clone();
      mappedChunks.clear();
      mappedChunks.or(durableMappedChunks);
      markDurable();
      verifyAll(where + " (after power loss)");
    }

    private void grow(String where) throws IOException {
      long room = (options.maxSizeBytes() - sizeBytes) / SECTOR_BYTES;
      if (room == 0) {
        return;
      }
      long newSize = sizeBytes + SECTOR_BYTES * (1 + random.nextLong(room));
      image.grow(newSize);
      sizeBytes = newSize;
      markDurable();
      assertEquals(newSize, image.sizeBytes(), where);
    }

    private void markDurable() {
      durableSizeBytes = sizeBytes;
      durableModel = model.clone();
      durableMappedChunks = (BitSet) mappedChunks.clone();
    }

    private long randomOffset() {
      return random.nextBoolean()
          ? SECTOR_BYTES * random.nextLong(sizeBytes / SECTOR_BYTES)
          : random.nextLong(sizeBytes);
    }

    private int randomLength(long offset) {
      long room = sizeBytes - offset;
      long length =
          switch (random.nextInt(4)) {
            case 0 -> 1 + random.nextInt(600);
            case 1 -> SECTOR_BYTES * (1L + random.nextInt(8));
            case 2 -> 1 + random.nextInt(chunkBytes);
            default -> 1 + random.nextLong(chunkBytes * 5L / 2);
          };
      return (int) Math.max(1, Math.min(room, length));
    }

    private void verifyRange(long offset, int length, String where) throws IOException {
      ByteBuffer buf = ByteBuffer.allocate(length);
      image.read(offset, buf);
      byte[] expected = Arrays.copyOfRange(model, (int) offset, (int) offset + length);
      if (!Arrays.equals(expected, buf.array())) {
        int i = Arrays.mismatch(expected, buf.array());
        throw new AssertionError(
            where
                + ": byte at offset "
                + (offset + i)
                + " (chunk "
                + (offset + i) / chunkBytes
                + ") reads "
                + buf.array()[i]
                + ", model has "
                + expected[i]
                + "; "
                + options);
      }
    }

    private void verifyAll(String where) throws IOException {
      assertEquals(sizeBytes, image.sizeBytes(), where + ": virtual size");
      verifyRange(0, (int) sizeBytes, where);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Concurrent writers

  private static final int THREADS = 4;
  private static final int CONCURRENT_CHUNK_BYTES = 4096;

  /** Sector-aligned but not chunk-aligned, so neighbouring threads share chunks. */
  private static final int REGION_BYTES = 5 * CONCURRENT_CHUNK_BYTES + 1536;

  private static final long CONCURRENT_SIZE_BYTES =
      Header.ceilDiv((long) THREADS * REGION_BYTES, CONCURRENT_CHUNK_BYTES)
          * CONCURRENT_CHUNK_BYTES;

  private static ImageOptions concurrentOptions(long journalBytes) {
    return ImageOptions.builder(CONCURRENT_SIZE_BYTES)
        .chunkSizeBytes(CONCURRENT_CHUNK_BYTES)
        .maxSizeBytes(CONCURRENT_SIZE_BYTES)
        .journalSizeBytes(journalBytes)
        .growthUnitBytes(CONCURRENT_CHUNK_BYTES)
        .build();
  }

  /**
   * Runs {@link #THREADS} writers, each on its own sectors, writing at random and flushing now and
   * then, and returns their models. Each writer checks its own region as it goes.
   */
  private static List<SectorHistory> writeConcurrently(Supplier<Image> image, long seed)
      throws Exception {
    List<SectorHistory> models = new ArrayList<>();
    ExecutorService pool = Executors.newFixedThreadPool(THREADS);
    CyclicBarrier start = new CyclicBarrier(THREADS);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < THREADS; t++) {
        SectorHistory model = new SectorHistory(CONCURRENT_SIZE_BYTES);
        models.add(model);
        long regionStart = (long) t * REGION_BYTES;
        SplittableRandom random = new SplittableRandom(seed * 31 + t);
        futures.add(
            pool.submit(
                () -> {
                  start.await();
                  for (int op = 0; op < 150; op++) {
                    int dice = random.nextInt(10);
                    if (dice < 7) {
                      long offset = regionStart + random.nextInt(REGION_BYTES);
                      int length =
                          1
                              + random.nextInt(
                                  (int)
                                      Math.min(
                                          2 * CONCURRENT_CHUNK_BYTES,
                                          regionStart + REGION_BYTES - offset));
                      byte[] data = pattern(length, random.nextLong());
                      model.recordWrite(offset, data);
                      image.get().write(offset, ByteBuffer.wrap(data));
                    } else if (dice < 9) {
                      int[] snapshot = model.snapshot();
                      image.get().flush();
                      model.acknowledge(snapshot);
                    } else {
                      ByteBuffer buf = ByteBuffer.allocate(REGION_BYTES);
                      image.get().read(regionStart, buf);
                      assertArrayEquals(
                          model.latest(regionStart, REGION_BYTES),
                          buf.array(),
                          "a writer's own region changed under it");
                    }
                  }
                  return null;
                }));
      }
      for (Future<?> future : futures) {
        future.get(120, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
    return models;
  }

  private static void verifyRegions(Image image, List<SectorHistory> models, String where)
      throws IOException {
    for (int t = 0; t < THREADS; t++) {
      long regionStart = (long) t * REGION_BYTES;
      ByteBuffer buf = ByteBuffer.allocate(REGION_BYTES);
      image.read(regionStart, buf);
      String violation = models.get(t).violation(regionStart, buf.array());
      assertNull(violation, where + ", writer " + t + ": " + violation);
    }
  }

  @Test
  void concurrent_writers_and_flushes_keep_every_acknowledged_write_through_power_loss()
      throws Exception {
    long leakedTotal = 0;
    for (int round = 0; round < CONCURRENT_ROUNDS; round++) {
      long seed = 1000 + round;
      String where = "concurrent round " + round + " (seed " + seed + ")";
      MemoryStorage memory = new MemoryStorage("concurrent");
      Image.create(memory, concurrentOptions(round % 2 == 0 ? 1024 : 8192)).close();
      CrashingStorage storage = CrashingStorage.wrap(memory.reopen());
      Image image = Image.open(storage, true);
      List<SectorHistory> models = writeConcurrently(() -> image, seed);
      for (int t = 0; t < THREADS; t++) {
        long regionStart = (long) t * REGION_BYTES;
        ByteBuffer buf = ByteBuffer.allocate(REGION_BYTES);
        image.read(regionStart, buf);
        assertArrayEquals(
            models.get(t).latest(regionStart, REGION_BYTES), buf.array(), where + ", writer " + t);
      }

      storage.crashNow(round % 3 == 0 ? Mode.LOSE_UNFORCED : Mode.KEEP_SOME_UNFORCED, seed);
      MemoryStorage survivors = storage.survivingStorage("concurrent-survivor");
      CheckReport offline = Images.check(survivors);
      assertNotEquals(Status.CORRUPT, offline.status(), where + ": " + offline.problems());
      try (Image reopened = Image.open(survivors, true)) {
        verifyRegions(reopened, models, where + " after power loss");
        leakedTotal += reopened.stats().leakedChunks();
        assertEquals(offline.leakedChunks(), reopened.stats().leakedChunks(), where);
        CheckReport repaired = reopened.check(true);
        assertNotEquals(Status.CORRUPT, repaired.status(), where + ": " + repaired.problems());
        assertEquals(offline.leakedChunks(), repaired.reclaimedChunks(), where);
      }
    }
    System.out.printf(
        "RandomOperationsTest: %d concurrent rounds survived power loss (%d leaked chunks seen)%n",
        CONCURRENT_ROUNDS, leakedTotal);
  }

  @Test
  void concurrent_writers_on_a_file_keep_flushed_writes_after_the_process_dies(@TempDir Path dir)
      throws Exception {
    for (int round = 0; round < CONCURRENT_ROUNDS; round++) {
      long seed = 2000 + round;
      String where = "file round " + round + " (seed " + seed + ")";
      Path file = dir.resolve("concurrent-" + round + ".fvd");
      Images.create(file, concurrentOptions(2048)).close();
      // Hold the storage ourselves, so the "process death" can drop it without Image.close.
      Storage storage = FileStorage.open(file, true);
      Image image = Image.open(storage, true);
      List<SectorHistory> models = writeConcurrently(() -> image, seed);
      verifyRegions(image, models, where + " before the restart");
      storage.close();

      try (Image reopened = Images.open(file, true)) {
        verifyRegions(reopened, models, where + " after the restart");
      }
      CheckReport report = Images.check(file);
      assertNotEquals(Status.CORRUPT, report.status(), where + ": " + report.problems());
    }
  }
}
