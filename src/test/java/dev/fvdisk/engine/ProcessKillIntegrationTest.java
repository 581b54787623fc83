package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.fvdisk.engine.io.FileStorage;
import dev.fvdisk.testing.SectorStamp;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;

/**
 * Kills a real writer process with SIGKILL at random moments and checks what survives.
 *
 * <p>Each iteration starts a {@link CrashWorker} in a child JVM on the same image file, lets it
 * write from several threads under load (flushing now and then), and kills it with SIGKILL after a
 * random delay: mostly while it writes, sometimes while it is still opening, that is, recovering
 * from the previous kill. The test then checks the file with {@link Images#check(Path)}, opens it
 * read-only, and compares every sector of the virtual disk with a {@link DiskModel} built from the
 * worker's {@link CrashLog}: every acknowledged-durable write must read back (unless a later write
 * legitimately replaced it), nothing may read as foreign bytes, never-written sectors read zero,
 * and the image must never be corrupt. Every fourth iteration it also recovers the image itself,
 * repairs it with {@link Image#check(boolean)} and writes into new chunks, checking that the
 * reclaimed slots are reused before the file grows.
 *
 * <p>A SIGKILL loses nothing the process already handed to the kernel, so this test exercises the
 * engine's own ordering and recovery logic on a real file with real {@code fsync}: journal replay,
 * commit rounds cut short, journal recycling through table copies, leaked chunk slots and their
 * reuse. Power loss, which also drops unforced writes, is the business of the fault-injecting
 * storage tests. Leaked chunks are rare here: the engine journals a new mapping in the same commit
 * round that forces its data, and recovery cuts off the slots past the last durable mapping, so a
 * slot only leaks when the kill follows an allocation that lost a race with a concurrent commit
 * round.
 *
 * <p><b>Clones.</b> The second test runs the same loop on a copy-on-write clone of a read-only base
 * image file whose sectors carry base stamps ({@link SectorStamp#fillBase}), with a zero stretch
 * the base never wrote. The clone is larger than the base, and the base's range ends inside a
 * block, so writes land in the base's range (partial blocks make the engine merge base bytes into
 * whole blocks), past it and across its end. The worker opens the base read-only and the clone for
 * writing; in some runs it switches copy-on-read on and reads random ranges from other threads, in
 * some it switches prefetching on with no start delay and no pacing, so background copies race with
 * the writes and the kill. After each kill the clone must check as not corrupt, and a read-only
 * open through the base must show: every acknowledged-durable write; the base's content (or zeros
 * past the base's end) wherever no write ever reached; old or new content elsewhere, as for a plain
 * image; and an extent map that agrees with what the reads return, which is how a bitmap and a
 * chunk table that disagree would show (a BASE extent must read the base's content, a ZERO extent
 * zeros, and a ZERO extent inside the base's range only where zero-block detection may have marked
 * zeros the base holds). A clone found with prefetching done must also open, verify and map the
 * same with no base at all. Each clone gets a random block size, journal size and zero-block
 * detection; a new clone replaces it once its prefetching is done or after {@value
 * #CLONE_MAX_KILLS} kills, so that kills keep landing while much of the base is still in the base.
 * The base file must not change by a single byte.
 *
 * <p>The number of kills is {@code -Dfvdisk.kill.iterations} (default 20, under half a minute on
 * two cores) for the plain image and {@code -Dfvdisk.kill.clone.iterations} (default 10, about 20
 * seconds) for clones. The seed is printed and can be fixed with {@code -Dfvdisk.kill.seed}; it
 * repeats every random choice (kill delays, write sizes and offsets, clone settings), though not
 * the threads' timing. The long variants, a few minutes each:
 *
 * <pre>
 * ./mvnw -B verify -Dfvdisk.kill.iterations=200 -Dit.test=ProcessKillIntegrationTest#sigkilled_writer*
 * ./mvnw -B verify -Dfvdisk.kill.clone.iterations=100 -Dit.test=ProcessKillIntegrationTest#sigkilled_clone*
 * </pre>
 *
 * <p>On failure the images, the logs and the worker's output stay in {@code target/process-kill-*}.
 */
class ProcessKillIntegrationTest {

  private static final int CHUNK_BYTES = 64 << 10;
  private static final long SIZE_BYTES = 64L << 20;
  private static final long HOT_BYTES = 16L << 20;
  // Two journal records: every third commit round with new mappings recycles the journal.
  private static final long JOURNAL_BYTES = 1024;
  private static final long GROWTH_UNIT_BYTES = 4L * CHUNK_BYTES;
  private static final int WRITER_THREADS = 3;
  private static final int REPAIR_EVERY = 4;
  private static final int MAX_FRESH_CHUNKS_PER_RUN = 48;
  private static final int REPAIR_NEW_CHUNKS = 4;
  private static final int SIGKILL_EXIT_STATUS = 128 + 9;
  private static final long WORKER_MAX_RUN_MILLIS = 120_000;
  private static final long WAIT_MILLIS = 60_000;

  // Clones: the base's range ends 41 sectors into a chunk, inside a block of every block size.
  private static final long CLONE_SIZE_BYTES = 128L << 20;
  private static final long BASE_SIZE_BYTES = (96L << 20) + 41 * SectorStamp.SECTOR_BYTES;
  private static final long CLONE_HOT_BYTES = 112L << 20;
  private static final long BASE_HOLE_START_SECTOR = (8L << 20) / SectorStamp.SECTOR_BYTES + 3;
  private static final long BASE_HOLE_END_SECTOR = (10L << 20) / SectorStamp.SECTOR_BYTES + 5;
  private static final int[] CLONE_BLOCK_BYTES = {4096, 16 << 10, CHUNK_BYTES};
  private static final long[] CLONE_JOURNAL_BYTES = {JOURNAL_BYTES, 4096, 16 << 10};
  private static final int CLONE_MAX_KILLS = 4;
  private static final int CLONE_READER_THREADS = 2;

  /**
   * Prefetching for the test's own writable opens of a clone (repairs, clean closes): it waits for
   * an hour of client quiet, so it never copies a block there and the free-chunk counts stay exact.
   */
  private static final PrefetchTuning IDLE_PREFETCH =
      new PrefetchTuning(1 << 20, 100, 80, 0, 1, 3_600_000);

  private final Figures figures = new Figures();
  private Path dir;
  private Path image;
  private long hotBytes;
  private DiskModel model;
  private long freshNextChunk;
  private long freshEndChunk;
  private long lastRecoveryMicros = 5000;
  private long lastPrefetchMillis = 400;
  private long leakedChunksAtNextOpen;
  // Null for the plain image.
  private @Nullable CloneMode clone;

  @Test
  void sigkilled_writer_never_loses_a_flushed_write_nor_corrupts_the_image() throws Exception {
    int iterations = Integer.getInteger("fvdisk.kill.iterations", 20);
    long seed = Long.getLong("fvdisk.kill.seed", new SecureRandom().nextLong());
    System.out.printf(
        "process kill test: %d kills, seed %d (repeat with -Dfvdisk.kill.seed=%d)%n",
        iterations, seed, seed);
    Random random = new Random(seed);
    dir = Files.createTempDirectory(Files.createDirectories(Path.of("target")), "process-kill-");
    image = dir.resolve("disk.fvd");
    hotBytes = HOT_BYTES;
    freshNextChunk = HOT_BYTES / CHUNK_BYTES;
    freshEndChunk = SIZE_BYTES / CHUNK_BYTES;
    ImageOptions options =
        ImageOptions.builder(SIZE_BYTES)
            .chunkSizeBytes(CHUNK_BYTES)
            .maxSizeBytes(4 * SIZE_BYTES)
            .journalSizeBytes(JOURNAL_BYTES)
            .growthUnitBytes(GROWTH_UNIT_BYTES)
            .build();
    Images.create(image, options).close();
    model = new DiskModel(SIZE_BYTES);
    long startNanos = System.nanoTime();

    try {
      for (int i = 0; i < iterations; i++) {
        killOneWorker(i, iterations, random);
        if (i % REPAIR_EVERY == REPAIR_EVERY - 1) {
          repairAndReuse(i, random);
        }
      }
      finalCleanCycle();
    } finally {
      figures.runtimeMillis = (System.nanoTime() - startNanos) / 1_000_000;
      System.out.println(figures.summary(seed, false));
    }
    assertEquals(0, figures.durableBytesLost, "acknowledged-durable bytes lost");
    assertEquals(0, figures.foreignSectors, "sectors with foreign content");
    assertEquals(0, figures.corruptResults, "checks that found the image corrupt");
    assertEquals(iterations, figures.kills, "kills survived");
    deleteRecursively(dir);
  }

  @Test
  void sigkilled_clone_writer_keeps_flushed_writes_and_base_content_and_a_consistent_map()
      throws Exception {
    int iterations = Integer.getInteger("fvdisk.kill.clone.iterations", 10);
    long seed = Long.getLong("fvdisk.kill.seed", new SecureRandom().nextLong());
    System.out.printf(
        "process kill test on clones: %d kills, seed %d (repeat with -Dfvdisk.kill.seed=%d)%n",
        iterations, seed, seed);
    Random random = new Random(seed);
    dir =
        Files.createTempDirectory(
            Files.createDirectories(Path.of("target")), "process-kill-clone-");
    image = dir.resolve("clone.fvd");
    hotBytes = CLONE_HOT_BYTES;
    Path basePath = dir.resolve("base.fvd");
    createBase(basePath);
    String baseDigest = fileDigest(basePath);
    long startNanos = System.nanoTime();

    try (Image base = Images.open(basePath, false)) {
      clone = new CloneMode(basePath, base);
      newClone(random);
      for (int i = 0; i < iterations; i++) {
        killOneWorker(i, iterations, random);
        if (i % REPAIR_EVERY == REPAIR_EVERY - 1) {
          repairAndReuse(i, random);
        }
        if (i < iterations - 1
            && (clone.prefetchDone || clone.killsOfThisClone >= CLONE_MAX_KILLS)) {
          finalCleanCycle();
          newClone(random);
        }
      }
      finalCleanCycle();
    } finally {
      figures.runtimeMillis = (System.nanoTime() - startNanos) / 1_000_000;
      System.out.println(figures.summary(seed, true));
    }
    assertEquals(0, figures.durableBytesLost, "acknowledged-durable bytes lost");
    assertEquals(0, figures.foreignSectors, "sectors with foreign content");
    assertEquals(0, figures.corruptResults, "checks that found the image corrupt");
    assertEquals(0, figures.mapDisagreements, "sectors where the extent map and reads disagree");
    assertEquals(iterations, figures.kills, "kills survived");
    assertEquals(baseDigest, fileDigest(basePath), "the base image file changed");
    deleteRecursively(dir);
  }

  /**
   * Writes the base: base stamps everywhere but a zero stretch that starts and ends inside blocks,
   * then marks it read-only.
   */
  private static void createBase(Path basePath) throws IOException {
    ImageOptions options =
        ImageOptions.builder(BASE_SIZE_BYTES)
            .chunkSizeBytes(CHUNK_BYTES)
            .journalSizeBytes(64 << 10)
            .growthUnitBytes(16L << 20)
            .build();
    try (Image base = Images.create(basePath, options)) {
      int sectorsPerWrite = (1 << 20) / SectorStamp.SECTOR_BYTES;
      ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
      long sectors = BASE_SIZE_BYTES / SectorStamp.SECTOR_BYTES;
      for (long first = 0; first < sectors; first += sectorsPerWrite) {
        int n = (int) Math.min(sectorsPerWrite, sectors - first);
        buf.clear();
        for (int k = 0; k < n; k++) {
          if (baseContent(first + k) == SectorStamp.BASE) {
            SectorStamp.fillBase(buf, SectorStamp.BASE_TAG, first + k, 1);
          } else {
            buf.put(new byte[SectorStamp.SECTOR_BYTES]);
          }
        }
        buf.flip();
        base.write(first * SectorStamp.SECTOR_BYTES, buf);
      }
    }
    Images.setReadOnly(basePath, true);
  }

  /** What a clone's sector holds before anything is written to it. */
  private static long baseContent(long sector) {
    boolean inBase = sector < BASE_SIZE_BYTES / SectorStamp.SECTOR_BYTES;
    boolean inHole = sector >= BASE_HOLE_START_SECTOR && sector < BASE_HOLE_END_SECTOR;
    return inBase && !inHole ? SectorStamp.BASE : SectorStamp.ZERO;
  }

  /** Replaces the clone, if any, with a new one of the base, with random settings. */
  private void newClone(Random random) throws IOException {
    CloneMode c = clone;
    Files.deleteIfExists(image);
    c.blockSizeBytes = CLONE_BLOCK_BYTES[random.nextInt(CLONE_BLOCK_BYTES.length)];
    c.journalBytes = CLONE_JOURNAL_BYTES[random.nextInt(CLONE_JOURNAL_BYTES.length)];
    c.detectZeroBlocks = random.nextBoolean();
    ImageOptions options =
        ImageOptions.builder(CLONE_SIZE_BYTES)
            .chunkSizeBytes(CHUNK_BYTES)
            .maxSizeBytes(4 * CLONE_SIZE_BYTES)
            .journalSizeBytes(c.journalBytes)
            .growthUnitBytes(GROWTH_UNIT_BYTES)
            .blockSizeBytes(c.blockSizeBytes)
            .detectZeroBlocks(c.detectZeroBlocks)
            .build();
    try (FileStorage storage = FileStorage.createNew(image)) {
      Image.create(storage, options, c.base, CrashWorker.BASE_LOCATOR).close();
    }
    c.killsOfThisClone = 0;
    c.prefetchDone = false;
    model = new DiskModel(CLONE_SIZE_BYTES, ProcessKillIntegrationTest::baseContent);
    freshNextChunk = CLONE_HOT_BYTES / CHUNK_BYTES;
    freshEndChunk = CLONE_SIZE_BYTES / CHUNK_BYTES;
    leakedChunksAtNextOpen = 0;
    figures.clones++;
    System.out.printf(
        "clone %d: %d-byte blocks, %d-byte journal, zero-block detection %s%n",
        figures.clones, c.blockSizeBytes, c.journalBytes, c.detectZeroBlocks ? "on" : "off");
  }

  /** Opens the image under test: the plain image, or the clone through the open base. */
  private Image openImage(boolean writable) throws IOException {
    if (clone == null) {
      return Images.open(image, writable);
    }
    return CrashWorker.openClone(image, clone.base, writable, IDLE_PREFETCH);
  }

  /** One iteration: run a worker, kill it, check and verify the image it leaves behind. */
  private void killOneWorker(int iteration, int iterations, Random random) throws Exception {
    long remainingFresh = freshEndChunk - freshNextChunk;
    long runsLeft = iterations - iteration;
    if (clone != null) {
      runsLeft = Math.min(runsLeft, CLONE_MAX_KILLS - clone.killsOfThisClone);
    }
    long freshBudget =
        Math.min(
            MAX_FRESH_CHUNKS_PER_RUN,
            Math.max(Math.min(2, remainingFresh), remainingFresh / runsLeft));
    CrashWorker.Clone cloneRun = null;
    if (clone != null) {
      // Prefetching soon ends the clone's dependency on the base, and with it the clone's turn:
      // in a quarter of the runs, and always in a clone's last one.
      boolean copyOnRead = random.nextBoolean();
      boolean prefetch = random.nextInt(4) == 0 || clone.killsOfThisClone == CLONE_MAX_KILLS - 1;
      cloneRun =
          new CrashWorker.Clone(
              clone.basePath, copyOnRead, copyOnRead ? CLONE_READER_THREADS : 0, prefetch);
    }
    CrashWorker.Plan plan =
        new CrashWorker.Plan(
            image,
            dir.resolve("log-" + iteration + ".txt"),
            writeIdBase(iteration) + 1,
            random.nextLong(),
            WRITER_THREADS,
            hotBytes,
            freshNextChunk,
            freshBudget,
            WORKER_MAX_RUN_MILLIS,
            cloneRun);
    String metadataBefore = metadataDigest();
    Process worker = launch(plan, iteration);
    String when;
    try {
      when = killAtRandomMoment(worker, plan, iteration, random);
    } finally {
      // Also when waiting failed: never leave a worker writing behind the test's back.
      worker.destroyForcibly();
    }
    figures.kills++;

    CrashLog.Run run = CrashLog.read(plan.log());
    assertNull(run.error(), () -> "worker failed: " + run.error());
    if (run.openMicros() < 0) {
      figures.killsBeforeOpenReturned++;
      if (run.booted() && !metadataDigest().equals(metadataBefore)) {
        figures.killsInsideOpenAfterItWrote++;
      }
    } else {
      assertEquals(
          leakedChunksAtNextOpen,
          run.leakedChunksAtOpen(),
          "leaked chunks found by the worker's open and by the last check");
    }
    if (run.openedAfterCrash()) {
      figures.workerRecoveryMicros.add(run.openMicros());
      figures.replayedRecords += run.replayedRecords();
      lastRecoveryMicros = run.openMicros();
    }
    if (run.prefetchDoneMillis() >= 0) {
      lastPrefetchMillis = run.prefetchDoneMillis();
    }
    figures.writesStarted += run.writes().size();
    figures.writesCompleted += run.completedWrites();
    figures.flushes += run.flushes();

    CheckReport report = Images.check(image);
    checkNotCorrupt(report, iteration);
    figures.leakedChunksSeen += report.leakedChunks();
    figures.maxLeakedChunks = Math.max(figures.maxLeakedChunks, report.leakedChunks());
    leakedChunksAtNextOpen = report.leakedChunks();

    DiskModel.Verdict verdict;
    PrefetchStatus prefetch = null;
    long openStartNanos = System.nanoTime();
    try (Image opened = openImage(false)) {
      figures.verifierOpenMicros.add((System.nanoTime() - openStartNanos) / 1000);
      assertEquals(
          report.leakedChunks(),
          opened.stats().leakedChunks(),
          "leaked chunks found by a read-only open and by the check");
      verdict = model.verify(opened, run.writes());
      if (clone != null) {
        prefetch = opened.prefetchStatus();
        checkExtents(opened, iteration);
      }
    }
    figures.add(verdict);
    failOnBadSectors(verdict, iteration);
    String cloneNote = "";
    if (clone != null) {
      clone.killsOfThisClone++;
      cloneNote = cloneChecks(plan.cloneSettings(), run, prefetch, iteration);
    }
    for (CrashLog.Write w : run.writes()) {
      long lastChunk = (w.offsetBytes() + w.lengthBytes() - 1) / CHUNK_BYTES;
      freshNextChunk = Math.max(freshNextChunk, lastChunk + 1);
    }
    System.out.printf(
        "kill %d (%s): %d writes started, %d durable, %d flushes; check %s, %d leaked;"
            + " %d durable writes verified, %d sectors lost, %d foreign%s%n",
        iteration + 1,
        when,
        run.writes().size(),
        verdict.durableWrites(),
        run.flushes(),
        report.status(),
        report.leakedChunks(),
        verdict.durableWritesVerified(),
        verdict.durableSectorsLost(),
        verdict.foreignSectors(),
        cloneNote);
  }

  /**
   * After a kill of a clone's worker: counts what the run did and, when prefetching has finished,
   * checks that the clone opens, reads and maps the same with no base at all.
   *
   * @return a note for the kill's line
   */
  private String cloneChecks(
      CrashWorker.Clone settings, CrashLog.Run run, PrefetchStatus prefetch, int iteration)
      throws IOException {
    figures.copyOnReadRuns += settings.copyOnRead() ? 1 : 0;
    figures.prefetchRuns += settings.prefetch() ? 1 : 0;
    boolean done = prefetch.state() == PrefetchStatus.State.DONE;
    if (settings.prefetch() && run.openMicros() >= 0 && !done) {
      figures.killsWhilePrefetching++;
    }
    String note =
        String.format(
            "; %s%s, %.1f%% of the base in the clone, %s",
            settings.copyOnRead() ? "copy-on-read with readers" : "no copy-on-read",
            settings.prefetch() ? ", prefetching" : "",
            100.0 * prefetch.copiedBytes() / prefetch.totalBytes(),
            done
                ? "prefetching done"
                    + (run.prefetchDoneMillis() < 0
                        ? ""
                        : " after " + run.prefetchDoneMillis() + " ms")
                : "depends on the base");
    if (!done) {
      return note;
    }
    figures.prefetchCompletions++;
    clone.prefetchDone = true;
    // Standalone now: no resolver, so a clone that still wanted its base would fail to open.
    try (Image alone = Images.open(image, false)) {
      assertNull(alone.baseLocator(), "base locator of a clone that finished prefetching");
      DiskModel.Verdict verdict = model.verify(alone, List.of());
      failOnBadSectors(verdict, iteration);
      checkExtents(alone, iteration);
    }
    figures.standaloneVerifications++;
    return note + ", verified again without the base";
  }

  /**
   * Checks that the extent map of the clone open read-only agrees with the content the last {@link
   * DiskModel#verify} read from it: the extents tile the disk, a BASE extent lies inside the base's
   * range and reads exactly the base's content, a ZERO extent reads zeros and, inside the base's
   * range, lies only where the base holds zeros (zero-block detection, prefetching and copy-on-read
   * take such blocks over without storing them). Anything else means the bitmap and the chunk table
   * disagree about where a block's data is.
   */
  private void checkExtents(Image opened, int iteration) {
    List<Extent> extents = opened.extents(0, opened.sizeBytes(), Integer.MAX_VALUE);
    figures.extentsChecked += extents.size();
    long baseEndSector = opened.baseLocator() == null ? 0 : clone.baseSectors();
    List<String> problems = new ArrayList<>();
    long bad = 0;
    long expectedStart = 0;
    for (Extent e : extents) {
      if (e.offsetBytes() != expectedStart
          || e.offsetBytes() % SectorStamp.SECTOR_BYTES != 0
          || e.lengthBytes() % SectorStamp.SECTOR_BYTES != 0) {
        fail(where(iteration) + ": extents do not tile the disk in sectors: " + extents);
      }
      expectedStart = e.endBytes();
      for (long s = e.offsetBytes() / SectorStamp.SECTOR_BYTES;
          s < e.endBytes() / SectorStamp.SECTOR_BYTES;
          s++) {
        long found = model.contentAt(s);
        boolean inBase = s < baseEndSector;
        boolean ok =
            switch (e.state()) {
              case BASE -> inBase && found == baseContent(s);
              case ZERO ->
                  found == SectorStamp.ZERO && (!inBase || baseContent(s) == SectorStamp.ZERO);
              case DATA -> true;
            };
        if (!ok) {
          bad++;
          if (problems.size() < 10) {
            problems.add(
                String.format(
                    "sector %d (byte %d) in %s reads %s; its base content is %s",
                    s, s * SectorStamp.SECTOR_BYTES, e, found, baseContent(s)));
          }
        }
      }
    }
    if (expectedStart != opened.sizeBytes()) {
      fail(where(iteration) + ": extents end at " + expectedStart + ": " + extents);
    }
    figures.mapDisagreements += bad;
    if (bad > 0) {
      fail(
          where(iteration)
              + ": "
              + bad
              + " sectors where the extent map and the reads disagree:\n  "
              + String.join("\n  ", problems));
    }
  }

  /** Waits a random time, kills the worker with SIGKILL and says when that was. */
  private String killAtRandomMoment(
      Process worker, CrashWorker.Plan plan, int iteration, Random random) throws Exception {
    String when;
    // Sometimes aim at the worker's own recovery of the previous kill, which takes milliseconds.
    if (iteration > 0 && random.nextInt(6) == 0) {
      awaitLine(worker, plan, "B");
      long delayMicros = random.nextInt((int) (2 * lastRecoveryMicros + 2000));
      TimeUnit.MICROSECONDS.sleep(delayMicros);
      when = String.format("aimed at recovery, %.1f ms after boot", delayMicros / 1000.0);
    } else if (plan.cloneSettings() != null
        && plan.cloneSettings().prefetch()
        && random.nextBoolean()) {
      // Aim at the prefetching copies and the switch to standalone at their end.
      awaitLine(worker, plan, "O ");
      long delayMillis = random.nextInt((int) (3 * lastPrefetchMillis / 2 + 20));
      Thread.sleep(delayMillis);
      when = "aimed at prefetching, " + delayMillis + " ms after open";
    } else {
      awaitLine(worker, plan, "O ");
      long delayMillis = 20 + random.nextInt(1500);
      Thread.sleep(delayMillis);
      when = delayMillis + " ms after open";
    }
    assertTrue(worker.isAlive(), () -> "worker exited on its own: " + output(worker, plan));
    worker.destroyForcibly();
    assertTrue(worker.waitFor(WAIT_MILLIS, TimeUnit.MILLISECONDS), "worker did not die");
    // destroyForcibly() must mean SIGKILL, not a polite SIGTERM the JVM could run hooks for.
    assertEquals(SIGKILL_EXIT_STATUS, worker.exitValue(), "exit status of a SIGKILLed process");
    return when;
  }

  /**
   * Recovers the image in this JVM, reclaims its leaked chunks and writes into untouched chunks:
   * those must take the reclaimed slots instead of growing the file. After a clean close the slots
   * not reused are leaked again, because free slots are remembered in memory only.
   */
  private void repairAndReuse(int iteration, Random random) throws Exception {
    long leakedAfterKill = Images.check(image).leakedChunks();
    List<CrashLog.Write> writes = new ArrayList<>();
    long reclaimed;
    long newChunks;
    long reused;
    try (Image opened = openImage(true)) {
      assertEquals(
          leakedAfterKill,
          opened.stats().leakedChunks(),
          "leaked chunks found by opening and by checking");
      CheckReport report = opened.check(true);
      checkNotCorrupt(report, iteration);
      reclaimed = report.reclaimedChunks();
      assertEquals(leakedAfterKill, reclaimed, "chunks reclaimed by the repair");
      assertEquals(reclaimed, opened.stats().freeChunks(), "free chunks after the repair");
      newChunks = Math.min(REPAIR_NEW_CHUNKS, freshEndChunk - freshNextChunk);
      reused = Math.min(reclaimed, newChunks);
      long fileBytes = opened.stats().fileBytes();
      ByteBuffer buf = ByteBuffer.allocate(CHUNK_BYTES);
      for (int k = 0; k < newChunks; k++) {
        int sectors = 8 + random.nextInt(CHUNK_BYTES / SectorStamp.SECTOR_BYTES - 8);
        long firstSector =
            (freshNextChunk + k) * (CHUNK_BYTES / SectorStamp.SECTOR_BYTES)
                + random.nextInt(CHUNK_BYTES / SectorStamp.SECTOR_BYTES - sectors + 1);
        long writeId = writeIdBase(iteration) + (1L << 31) + k;
        buf.clear();
        SectorStamp.fill(buf, SectorStamp.IMAGE_TAG, writeId, firstSector, sectors);
        buf.flip();
        long offsetBytes = firstSector * SectorStamp.SECTOR_BYTES;
        writes.add(
            new CrashLog.Write(writeId, offsetBytes, buf.remaining(), 2 * k, 2 * k + 1, true));
        opened.write(offsetBytes, buf);
      }
      opened.flush();
      assertEquals(reclaimed - reused, opened.stats().freeChunks(), "free chunks after reuse");
      if (newChunks <= reclaimed) {
        assertEquals(fileBytes, opened.stats().fileBytes(), "file size after reusing free chunks");
      }
    }
    freshNextChunk += newChunks;
    figures.repairs++;
    figures.reclaimedChunks += reclaimed;
    figures.reusedChunks += reused;

    try (Image opened = openImage(false)) {
      DiskModel.Verdict verdict = model.verify(opened, writes);
      figures.add(verdict);
      failOnBadSectors(verdict, iteration);
      if (clone != null) {
        checkExtents(opened, iteration);
      }
    }
    CheckReport after = Images.check(image);
    checkNotCorrupt(after, iteration);
    assertEquals(reclaimed - reused, after.leakedChunks(), "leaked chunks after a clean close");
    leakedChunksAtNextOpen = after.leakedChunks();
    System.out.printf(
        "repair after kill %d: reclaimed %d leaked chunks; %d new chunks took %d of them;"
            + " %d leaked again%n",
        iteration + 1, reclaimed, newChunks, reused, after.leakedChunks());
  }

  /** Recovers once more, closes cleanly, and checks that neither changed a single sector. */
  private void finalCleanCycle() throws Exception {
    openImage(true).close();
    CheckReport report = Images.check(image);
    checkNotCorrupt(report, -1);
    try (Image opened = openImage(false)) {
      assertTrue(!opened.stats().openedAfterCrash(), "image not clean after a clean close");
      DiskModel.Verdict verdict = model.verify(opened, List.of());
      failOnBadSectors(verdict, -1);
      if (clone != null) {
        checkExtents(opened, -1);
      }
    }
  }

  /**
   * The image's length and a checksum of its first megabyte, where this test's layout keeps the
   * headers, both table copies and the journal: it changes once an open has written anything.
   */
  private String metadataDigest() throws IOException {
    try (FileChannel channel = FileChannel.open(image, StandardOpenOption.READ)) {
      ByteBuffer buf = ByteBuffer.allocate((int) Math.min(channel.size(), 1 << 20));
      while (buf.hasRemaining()) {
        if (channel.read(buf, buf.position()) < 0) {
          break;
        }
      }
      CRC32C crc = new CRC32C();
      crc.update(buf.flip());
      return channel.size() + "/" + Long.toHexString(crc.getValue());
    }
  }

  private Process launch(CrashWorker.Plan plan, int iteration) throws IOException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    // A small, quick-starting JVM: C1 only, class data sharing, no perf-data file.
    command.addAll(
        List.of(
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            "-Xshare:auto",
            "-XX:+UseSerialGC",
            "-XX:-UsePerfData",
            "-cp",
            System.getProperty("java.class.path"),
            CrashWorker.class.getName()));
    command.addAll(plan.toArgs());
    return new ProcessBuilder(command)
        .redirectOutput(dir.resolve("worker-" + iteration + ".out").toFile())
        .redirectError(dir.resolve("worker-" + iteration + ".err").toFile())
        .start();
  }

  /** Waits until the worker's log has a complete line starting with {@code prefix}. */
  private void awaitLine(Process worker, CrashWorker.Plan plan, String prefix) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MILLIS);
    while (System.nanoTime() < deadline) {
      if (Files.exists(plan.log())) {
        String log = Files.readString(plan.log());
        // Only whole lines count; the last one may still be being written.
        String complete = log.substring(0, log.lastIndexOf('\n') + 1);
        if (complete.lines().anyMatch(line -> line.startsWith(prefix))) {
          return;
        }
      }
      if (!worker.isAlive()) {
        fail("worker exited before logging '" + prefix + "': " + output(worker, plan));
      }
      TimeUnit.MILLISECONDS.sleep(1);
    }
    fail("worker did not log '" + prefix + "' within " + WAIT_MILLIS + " ms");
  }

  private String output(Process worker, CrashWorker.Plan plan) {
    String status = worker.isAlive() ? "running" : "exit status " + worker.exitValue();
    try {
      String name = plan.log().getFileName().toString().replace("log-", "worker-");
      Path err = dir.resolve(name.replace(".txt", ".err"));
      return status + "; stderr: " + (Files.exists(err) ? Files.readString(err) : "");
    } catch (IOException e) {
      return status + "; stderr unreadable: " + e;
    }
  }

  private void checkNotCorrupt(CheckReport report, int iteration) {
    if (report.status() == CheckReport.Status.CORRUPT) {
      figures.corruptResults++;
    }
    assertNotEquals(
        CheckReport.Status.CORRUPT,
        report.status(),
        () -> where(iteration) + ": check found the image corrupt: " + report.problems());
  }

  private void failOnBadSectors(DiskModel.Verdict verdict, int iteration) {
    if (!verdict.ok()) {
      fail(
          where(iteration)
              + ": "
              + verdict.durableSectorsLost()
              + " durable sectors lost, "
              + verdict.foreignSectors()
              + " foreign sectors:\n  "
              + String.join("\n  ", verdict.failures()));
    }
  }

  private String where(int iteration) {
    String when = iteration < 0 ? "after a clean close" : "after kill " + (iteration + 1);
    return when + " (files kept in " + dir + ")";
  }

  /** The length and a checksum of a whole file. */
  private static String fileDigest(Path file) throws IOException {
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
      CRC32C crc = new CRC32C();
      for (long position = 0; channel.read(buf.clear(), position) > 0; ) {
        position += buf.flip().remaining();
        crc.update(buf);
      }
      return channel.size() + "/" + Long.toHexString(crc.getValue());
    }
  }

  /** The clone test's base and the settings of the clone now under test. */
  private static final class CloneMode {
    final Path basePath;
    final Image base;
    int blockSizeBytes;
    long journalBytes;
    boolean detectZeroBlocks;
    int killsOfThisClone;
    boolean prefetchDone;

    CloneMode(Path basePath, Image base) {
      this.basePath = basePath;
      this.base = base;
    }

    long baseSectors() {
      return Math.min(BASE_SIZE_BYTES, CLONE_SIZE_BYTES) / SectorStamp.SECTOR_BYTES;
    }
  }

  /** Write ids of iteration {@code i} are {@code (i + 1) << 32} plus a counter; never 0 or -1. */
  private static long writeIdBase(int iteration) {
    return (iteration + 1L) << 32;
  }

  private static void deleteRecursively(Path root) throws IOException {
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  /** The numbers the run reports at the end. */
  private static final class Figures {
    long kills;
    long killsBeforeOpenReturned;
    long killsInsideOpenAfterItWrote;
    long writesStarted;
    long writesCompleted;
    long flushes;
    long durableWrites;
    long durableWritesVerified;
    long durableBytesVerified;
    long durableBytesLost;
    long foreignSectors;
    long corruptResults;
    long leakedChunksSeen;
    long maxLeakedChunks;
    long repairs;
    long reclaimedChunks;
    long reusedChunks;
    long replayedRecords;
    long untouchedSectorsVerified;
    long baseSectorsVerified;
    long clones;
    long copyOnReadRuns;
    long prefetchRuns;
    long prefetchCompletions;
    long killsWhilePrefetching;
    long standaloneVerifications;
    long extentsChecked;
    long mapDisagreements;
    long runtimeMillis;
    final List<Long> workerRecoveryMicros = new ArrayList<>();
    final List<Long> verifierOpenMicros = new ArrayList<>();

    void add(DiskModel.Verdict v) {
      durableWrites += v.durableWrites();
      durableWritesVerified += v.durableWritesVerified();
      durableBytesVerified += v.durableSectorsVerified() * SectorStamp.SECTOR_BYTES;
      durableBytesLost += v.durableSectorsLost() * SectorStamp.SECTOR_BYTES;
      foreignSectors += v.foreignSectors();
      untouchedSectorsVerified += v.untouchedSectorsVerified();
      baseSectorsVerified += v.baseSectorsVerified();
    }

    String summary(long seed, boolean clones) {
      String common =
          String.format(
              "process kill test%s, seed %d, %.1f s:%n"
                  + "  kills survived                 %d (%d before the worker's open returned,"
                  + " %d of them after it had changed the file)%n"
                  + "  writes started / completed     %d / %d, %d flushes%n"
                  + "  durable writes verified        %d of %d%n"
                  + "  durable bytes verified         %d (%.1f MiB)%n"
                  + "  acknowledged-durable bytes lost %d%n"
                  + "  foreign sectors                %d%n"
                  + "  corrupt check results          %d%n"
                  + "  leaked chunks seen             %d in total, at most %d after one kill%n"
                  + "  repairs                        %d: %d chunks reclaimed, %d reused%n"
                  + "  journal records replayed       %d%n"
                  + "  worker recovery open           p50 %.1f ms, p99 %.1f ms (%d recoveries)%n"
                  + "  verifier read-only open        p50 %.1f ms, p99 %.1f ms",
              clones ? " on clones" : "",
              seed,
              runtimeMillis / 1000.0,
              kills,
              killsBeforeOpenReturned,
              killsInsideOpenAfterItWrote,
              writesStarted,
              writesCompleted,
              flushes,
              durableWritesVerified,
              durableWrites,
              durableBytesVerified,
              durableBytesVerified / 1048576.0,
              durableBytesLost,
              foreignSectors,
              corruptResults,
              leakedChunksSeen,
              maxLeakedChunks,
              repairs,
              reclaimedChunks,
              reusedChunks,
              replayedRecords,
              percentileMillis(workerRecoveryMicros, 0.50),
              percentileMillis(workerRecoveryMicros, 0.99),
              workerRecoveryMicros.size(),
              percentileMillis(verifierOpenMicros, 0.50),
              percentileMillis(verifierOpenMicros, 0.99));
      if (!clones) {
        return common;
      }
      return common
          + String.format(
              "%n  clones                         %d, runs with copy-on-read and readers %d,"
                  + " with prefetching %d (%d killed while prefetching)%n"
                  + "  prefetch completions observed  %d, %d verified again without the base%n"
                  + "  never-written sectors verified %d (%.1f MiB); sectors that read as the"
                  + " base's content %d (%.1f MiB)%n"
                  + "  extents checked against reads  %d, disagreeing sectors %d",
              this.clones,
              copyOnReadRuns,
              prefetchRuns,
              killsWhilePrefetching,
              prefetchCompletions,
              standaloneVerifications,
              untouchedSectorsVerified,
              untouchedSectorsVerified / 2048.0,
              baseSectorsVerified,
              baseSectorsVerified / 2048.0,
              extentsChecked,
              mapDisagreements);
    }

    /** The nearest-rank percentile of durations in microseconds, in milliseconds; NaN if none. */
    private static double percentileMillis(List<Long> micros, double q) {
      if (micros.isEmpty()) {
        return Double.NaN;
      }
      List<Long> sorted = micros.stream().sorted().toList();
      return sorted.get((int) Math.ceil(q * sorted.size()) - 1) / 1000.0;
    }
  }
}
