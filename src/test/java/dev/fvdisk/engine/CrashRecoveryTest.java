package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.fvdisk.engine.CheckReport.Status;
import dev.fvdisk.engine.io.CrashingStorage;
import dev.fvdisk.engine.io.CrashingStorage.Mode;
import dev.fvdisk.engine.io.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Runs one fixed workload, crashes it at every storage write (and every force), and checks what
 * survives.
 *
 * <p>The workload is run once without a crash to count its writes and forces. Then, for every write
 * number N and every crash mode of {@link CrashingStorage}, a fresh image runs the workload until
 * the crash at N, and the surviving bytes are opened again. Each time:
 *
 * <ul>
 *   <li>the image opens, and the offline check never reports corruption;
 *   <li>every write acknowledged by a flush (or grow, or close) that returned reads back exactly,
 *       and every other write left each 512-byte sector with its old or its new content ({@link
 *       SectorHistory} keeps the allowed versions);
 *   <li>leaked chunks are counted (by the opener and the offline check alike, and matching the
 *       file's slots minus the mapped chunks), the next first write reuses one without growing the
 *       file, the reused chunk reads zeros where it was not rewritten, and {@code check(true)}
 *       reclaims the rest.
 * </ul>
 *
 * <p>The workload covers first-touch writes across chunks, overwrites, unaligned writes, writes
 * straddling chunk boundaries, a flush of more mappings than one journal record holds, enough
 * flushed allocations to recycle a journal of 1024 or 4096 bytes several times, a restart without
 * close (which loses an unflushed mapping), a grow, a clean close and a clean reopen.
 *
 * <p>The modes that choose at random (tear point, which unforced writes survive) use a seed derived
 * from the crash point, so every run is repeatable. Set {@code -Dfvdisk.crash.rounds=N} (default 1)
 * to try N different random choices at every crash point.
 */
class CrashRecoveryTest {

  private static final int CHUNK_BYTES = 4096;
  private static final long INITIAL_SIZE_BYTES = 96L * CHUNK_BYTES;
  private static final long GROWN_SIZE_BYTES = 128L * CHUNK_BYTES;

  private static final int ROUNDS = Integer.getInteger("fvdisk.crash.rounds", 1);

  private sealed interface Step permits Write, Zero, Flush, Grow, Compact, Restart, Close, Open {}

  private record Write(long offsetBytes, int lengthBytes) implements Step {}

  /** Zeroes a range: chunks it covers whole lose their slots. */
  private record Zero(long offsetBytes, int lengthBytes) implements Step {}

  private record Flush() implements Step {}

  private record Grow(long newSizeBytes) implements Step {}

  /** One compaction step: moves chunks from the end of the file into freed slots, then cuts it. */
  private record Compact(int maxChunks) implements Step {}

  /** Abandons the open image without closing it and opens the same bytes again. */
  private record Restart() implements Step {}

  private record Close() implements Step {}

  /** Opens the image again after a close. */
  private record Open() implements Step {}

  private static final List<Step> WORKLOAD = workload();

  private static List<Step> workload() {
    long c = CHUNK_BYTES;
    return List.of(
        // First-touch writes: aligned, unaligned, and one straddling a chunk boundary.
        new Write(0, 512),
        new Write(3 * c + 100, 300),
        new Write(7 * c - 200, 1000),
        new Flush(),
        // Overwrites of flushed data, and writes that overwrite and allocate at once.
        new Write(50, 700),
        new Write(4 * c - 96, 200),
        new Write(10 * c - 512, (int) (2 * c + 1024)),
        new Flush(),
        // 64 new mappings in one flush: more than one journal record (59 mappings each), so the
        // append spans two sectors, or, when the journal lacks the room, the table is rewritten.
        new Write(30 * c + 5, (int) (64 * c - 10)),
        new Flush(),
        // One new chunk per flush, one journal record each: a 1024-byte journal (two records)
        // and a 4096-byte one (eight) both recycle, writing the whole table in a new epoch.
        new Write(c + 64, 100),
        new Flush(),
        new Write(2 * c + 128, 101),
        new Flush(),
        new Write(5 * c + 192, 102),
        new Flush(),
        new Write(8 * c + 256, 103),
        new Flush(),
        new Write(13 * c + 320, 104),
        new Flush(),
        new Write(11 * c + 7, 3000),
        new Flush(),
        // Unflushed: an overwrite, and a first touch whose mapping the restart loses. Its slot is
        // the newest, so recovery cuts it off the file instead of counting it as leaked.
        new Write(2 * c + 10, 20),
        new Write(14 * c, (int) c),
        new Restart(),
        // The next first touch gets that slot number again and must not see the old bytes.
        new Write(14 * c + 8, 512),
        new Write(5 * c + 1, 2),
        new Flush(),
        // Zeroes free whole chunks. Their slots must not go to the chunks first written in the
        // same round (a torn append could keep the new mapping and lose the unmapping, and the
        // zeroed chunk would read another chunk's data), only to those written after it.
        new Zero(31 * c, (int) (8 * c)),
        new Zero(11 * c + 100, 200),
        new Write(20 * c, (int) (2 * c)),
        new Flush(),
        // Compaction moves the chunks in the highest slots down into the freed ones, while a write
        // of a chunk it may move is not flushed yet (that chunk stays where it is).
        new Write(70 * c + 3, 1000),
        new Compact(4),
        new Write(22 * c + 1, (int) (3 * c)),
        new Zero(40 * c - 1, (int) (2 * c + 2)),
        new Flush(),
        new Compact(64),
        new Grow(GROWN_SIZE_BYTES),
        new Write(100 * c - 3, 10),
        new Write(GROWN_SIZE_BYTES - 96, 96),
        new Flush(),
        // The newest slots freed: the clean close gives them back to the file system.
        new Zero(GROWN_SIZE_BYTES - c, (int) c),
        new Zero(99 * c, (int) (2 * c)),
        // Unflushed writes that only the clean close makes durable.
        new Write(0, (int) (3 * c)),
        new Write(16 * c + 7, 9),
        new Close(),
        new Open(),
        new Write(110 * c, 512),
        new Flush(),
        new Write(3 * c, 10),
        new Close());
  }

  private static ImageOptions options(long journalBytes) {
    return ImageOptions.builder(INITIAL_SIZE_BYTES)
        .chunkSizeBytes(CHUNK_BYTES)
        .maxSizeBytes(GROWN_SIZE_BYTES)
        .journalSizeBytes(journalBytes)
        .growthUnitBytes(2L * CHUNK_BYTES)
        .build();
  }

  /** A freshly created and cleanly closed image, wrapped so that writes can be counted. */
  private static CrashingStorage freshImage(long journalBytes) throws IOException {
    MemoryStorage storage = new MemoryStorage("crash-test");
    Image.create(storage, options(journalBytes)).close();
    return CrashingStorage.wrap(storage.reopen());
  }

  private static byte[] dataFor(int stepIndex, int lengthBytes) {
    byte[] data = new byte[lengthBytes];
    new Random(stepIndex * 1_000_003L + lengthBytes).nextBytes(data);
    return data;
  }

  /** The state of one workload run, as far as the test knows it. */
  private static final class Run {
    final SectorHistory model = new SectorHistory(GROWN_SIZE_BYTES);
    long sizeBytes = INITIAL_SIZE_BYTES;

    /** The size a grow that did not return may or may not have reached; -1 if none. */
    long growingToBytes = -1;

    Image image;
    Throwable firstFailure;
    long leakedChunksAfterRestart = -1;
    long movedChunks;
  }

  /**
   * Runs the workload. With {@code stopAtFirstFailure}, as after a crash, it stops at the first
   * exception. Otherwise, for transient failures, it stops writing but still flushes, closes and
   * reopens, so the engine's error paths run to the end.
   */
  private static Run runWorkload(
      CrashingStorage storage, boolean stopAtFirstFailure, String label) {
    List<Step> steps = new ArrayList<>();
    steps.add(new Open());
    steps.addAll(WORKLOAD);
    return runSteps(steps, new Run(), storage, stopAtFirstFailure, label);
  }

  private static Run runSteps(
      List<Step> steps,
      Run run,
      CrashingStorage storage,
      boolean stopAtFirstFailure,
      String label) {
    for (int i = 0; i < steps.size(); i++) {
      try {
        execute(steps.get(i), i, storage, run);
      } catch (IOException | RuntimeException e) {
        if (run.firstFailure == null) {
          run.firstFailure = e;
        }
        if (stopAtFirstFailure) {
          return run;
        }
      } catch (AssertionError e) {
        throw new AssertionError(
            label + ": " + e.getMessage() + " (after first failure " + run.firstFailure + ")", e);
      }
    }
    return run;
  }

  private static void execute(Step step, int stepIndex, CrashingStorage storage, Run run)
      throws IOException {
    boolean writesAllowed = run.firstFailure == null && run.image != null;
    if (step instanceof Write w) {
      if (!writesAllowed) {
        return;
      }
      byte[] data = dataFor(stepIndex, w.lengthBytes());
      run.model.recordWrite(w.offsetBytes(), data);
      try {
        run.image.write(w.offsetBytes(), ByteBuffer.wrap(data));
      } catch (IOException | RuntimeException e) {
        run.model.markLastWriteFailed(w.offsetBytes(), w.lengthBytes());
        throw e;
      }
    } else if (step instanceof Zero z) {
      if (!writesAllowed) {
        return;
      }
      run.model.recordWrite(z.offsetBytes(), new byte[z.lengthBytes()]);
      try {
        run.image.zero(z.offsetBytes(), z.lengthBytes());
      } catch (IOException | RuntimeException e) {
        run.model.markLastWriteFailed(z.offsetBytes(), z.lengthBytes());
        throw e;
      }
    } else if (step instanceof Flush) {
      if (run.image != null) {
        int[] snapshot = run.model.snapshot();
        run.image.flush();
        run.model.acknowledge(snapshot);
      }
    } else if (step instanceof Compact k) {
      // It changes no content; whatever it makes durable, the model does not count on.
      if (writesAllowed) {
        run.movedChunks += run.image.compact(k.maxChunks()).movedChunks();
      }
    } else if (step instanceof Grow g) {
      if (!writesAllowed) {
        return;
      }
      int[] snapshot = run.model.snapshot();
      run.growingToBytes = g.newSizeBytes();
      run.image.grow(g.newSizeBytes());
      run.sizeBytes = g.newSizeBytes();
      run.growingToBytes = -1;
      run.model.acknowledge(snapshot);
    } else if (step instanceof Close) {
      if (run.image != null) {
        Image image = run.image;
        run.image = null;
        int[] snapshot = run.model.snapshot();
        image.close();
        run.model.acknowledge(snapshot);
      }
    } else if (step instanceof Restart || step instanceof Open) {
      // A restart abandons the open image, as a killed process would.
      run.image = null;
      Image image = Image.open(storage.reopen(), true);
      run.image = image;
      resyncAfterOpen(image, run, "open at step " + stepIndex);
      if (step instanceof Restart) {
        run.leakedChunksAfterRestart = image.stats().leakedChunks();
      }
    }
  }

  /**
   * Checks what an open during the workload shows, then takes it as the new truth: opening for
   * writing forces everything it shows (the header, or after a crash the recovered table, is
   * written and forced), so it is all durable from here on.
   */
  private static void resyncAfterOpen(Image image, Run run, String where) throws IOException {
    long size = image.sizeBytes();
    assertTrue(
        size == run.sizeBytes || size == run.growingToBytes,
        where + ": size " + size + ", expected " + run.sizeBytes);
    byte[] observed = read(image, 0, (int) size);
    String violation = run.model.violation(0, observed);
    assertNull(violation, where + ": " + violation);
    run.model.resyncDurable(0, observed);
    run.sizeBytes = size;
    run.growingToBytes = -1;
  }

  private static byte[] read(Image image, long offsetBytes, int lengthBytes) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(lengthBytes);
    image.read(offsetBytes, buf);
    return buf.array();
  }

  private static boolean causedBy(Throwable failure, Class<? extends Throwable> type) {
    for (Throwable t = failure; t != null; t = t.getCause()) {
      if (type.isInstance(t)) {
        return true;
      }
    }
    return false;
  }

  /** The counts of one crash-free run; also checks that run end to end. */
  private record Baseline(long writes, long forces) {}

  private static Baseline baseline(long journalBytes) throws IOException {
    CrashingStorage storage = freshImage(journalBytes);
    Run run = runWorkload(storage, true, "baseline");
    if (run.firstFailure != null) {
      throw new AssertionError("the workload fails without any crash", run.firstFailure);
    }
    assertEquals(0, run.leakedChunksAfterRestart, "the restart lost only the newest slot");
    assertTrue(run.movedChunks > 0, "compaction moved nothing");
    System.out.printf("CrashRecoveryTest: compaction moved %d chunks%n", run.movedChunks);
    MemoryStorage bytes = storage.survivingStorage("baseline");
    // The chunks zeroed and not used again lie unreferenced in the file: reported as leaked (and
    // reused first) until a repair frees them, as a crash's leftovers are; nothing else may be.
    CheckReport check = Images.check(bytes);
    assertEquals(Status.LEAKS, check.status(), check.problems().toString());
    // Every whole-table write starts a new epoch: create starts at 1, and the restart, the grow
    // and the two closes account for 4 more. Anything beyond is the journal recycling.
    long recycles = Header.read(bytes).stableEpoch() - 5;
    System.out.printf(
        "CrashRecoveryTest: the workload recycles a %d-byte journal %d times%n",
        journalBytes, recycles);
    assertTrue(recycles >= 1, "the workload never fills the journal");
    try (Image image = Image.open(bytes, false)) {
      assertEquals(GROWN_SIZE_BYTES, image.sizeBytes());
      assertArrayEquals(
          run.model.latest(0, (int) GROWN_SIZE_BYTES), read(image, 0, (int) GROWN_SIZE_BYTES));
    }
    try (Image image = Image.open(bytes.reopen(), true)) {
      assertEquals(check.leakedChunks(), image.stats().leakedChunks());
      assertEquals(check.leakedChunks(), image.check(true).reclaimedChunks());
      assertEquals(Status.OK, image.check(false).status());
    }
    return new Baseline(storage.writeCount(), storage.forceCount());
  }

  static Stream<Arguments> writeCrashModes() {
    List<Arguments> arguments = new ArrayList<>();
    for (long journalBytes : new long[] {1024, 4096}) {
      for (Mode mode : List.of(Mode.LOSE_UNFORCED, Mode.KEEP_SOME_UNFORCED, Mode.TEAR_WRITE)) {
        arguments.add(Arguments.of(mode, journalBytes));
      }
    }
    return arguments.stream();
  }

  @ParameterizedTest(name = "{0}, journal of {1} bytes")
  @MethodSource("writeCrashModes")
  void crash_at_every_write_keeps_acknowledged_data_and_reuses_leaked_chunks(
      Mode mode, long journalBytes) throws IOException {
    Baseline baseline = baseline(journalBytes);
    int rounds = mode == Mode.LOSE_UNFORCED ? 1 : ROUNDS;
    int survived = 0;
    for (long n = 1; n <= baseline.writes(); n++) {
      for (int round = 0; round < rounds; round++) {
        long seed = n * 7919 + round;
        String label =
            String.format(
                "%s at write %d of %d, journal %d bytes, seed %d",
                mode, n, baseline.writes(), journalBytes, seed);
        CrashingStorage storage = freshImage(journalBytes);
        storage.arm(mode, n, seed);
        Run run = runWorkload(storage, true, label);
        assertTrue(storage.crashed(), label + ": the crash point was never reached");
        assertNotNull(run.firstFailure, label + ": the crash went unnoticed");
        assertTrue(
            causedBy(run.firstFailure, CrashingStorage.CrashedException.class),
            label + ": failed with something other than the crash: " + run.firstFailure);
        verifySurvivors(storage.survivingStorage("survivor"), run, label);
        survived++;
      }
    }
    System.out.printf(
        "CrashRecoveryTest: %d crash points survived (%s, %d writes, journal %d bytes)%n",
        survived, mode, baseline.writes(), journalBytes);
    assertEquals(baseline.writes() * rounds, survived);
  }

  @ParameterizedTest(name = "journal of {0} bytes")
  @ValueSource(longs = {1024, 4096})
  void failed_force_at_every_point_never_acknowledges_lost_data(long journalBytes)
      throws IOException {
    Baseline baseline = baseline(journalBytes);
    int survived = 0;
    for (long n = 1; n <= baseline.forces(); n++) {
      for (int round = 0; round < ROUNDS; round++) {
        long seed = n * 104_729 + round;
        String label =
            String.format(
                "force %d of %d failed, journal %d bytes, seed %d",
                n, baseline.forces(), journalBytes, seed);
        CrashingStorage storage = freshImage(journalBytes);
        storage.arm(Mode.FAIL_FORCE, n, seed);
        Run run = runWorkload(storage, true, label);
        assertTrue(storage.crashed(), label + ": the failing force was never reached");
        assertTrue(
            causedBy(run.firstFailure, CrashingStorage.CrashedException.class),
            label + ": failed with something other than the force: " + run.firstFailure);
        verifySurvivors(storage.survivingStorage("survivor"), run, label);
        survived++;
      }
    }
    System.out.printf(
        "CrashRecoveryTest: %d failed-force points survived (%d forces, journal %d bytes)%n",
        survived, baseline.forces(), journalBytes);
    assertEquals(baseline.forces() * ROUNDS, survived);
  }

  @ParameterizedTest(name = "journal of {0} bytes")
  @ValueSource(longs = {1024, 4096})
  void transient_write_failure_at_every_point_is_reported_and_loses_no_acknowledged_data(
      long journalBytes) throws IOException {
    Baseline baseline = baseline(journalBytes);
    int survived = 0;
    for (long n = 1; n <= baseline.writes(); n++) {
      String label =
          String.format(
              "write %d of %d failed once, journal %d bytes", n, baseline.writes(), journalBytes);
      CrashingStorage storage = freshImage(journalBytes);
      storage.arm(Mode.FAIL_WRITE_ONCE, n, n);
      Run run = runWorkload(storage, false, label);
      assertNotNull(run.firstFailure, label + ": the engine swallowed a failed write");
      assertTrue(
          causedBy(run.firstFailure, CrashingStorage.InjectedWriteException.class),
          label + ": failed with something other than the injected error: " + run.firstFailure);
      verifySurvivors(storage.survivingStorage("survivor"), run, label);
      survived++;
    }
    System.out.printf(
        "CrashRecoveryTest: %d transient write failures survived (journal %d bytes)%n",
        survived, journalBytes);
  }

  @Test
  void power_loss_keeping_a_later_journal_sector_but_not_an_earlier_one_leaks_reusable_chunks()
      throws IOException {
    // Single-threaded, chunks are allocated and journalled in the same order, so a lost mapping
    // is normally the newest and is simply cut off. A leak below the frontier needs a later
    // journal sector to survive without an earlier one: 64 new mappings take two records, written
    // in one append, and the force after it fails with only some sectors on the disk.
    int leakingSeeds = 0;
    int reuseCrashPoints = 0;
    int seeds = 32;
    byte[] data = dataFor(1, 64 * CHUNK_BYTES);
    for (long seed = 0; seed < seeds; seed++) {
      String label = "two-record append, force failed, seed " + seed;
      CrashingStorage storage = freshImage(4096);
      Run run = new Run();
      Image image = Image.open(storage, true);
      run.model.recordWrite(0, data);
      image.write(0, ByteBuffer.wrap(data));
      // The flush forces the data, appends the records, then forces them: fail the second force.
      long journalForce = storage.forceCount() + 2;
      storage.arm(Mode.FAIL_FORCE, journalForce, seed);
      assertThrows(IOException.class, image::flush, label);
      assertTrue(storage.crashed(), label + ": the journal force was never reached");
      MemoryStorage survivors = storage.survivingStorage("survivor");
      if (Images.check(survivors).leakedChunks() > 0) {
        leakingSeeds++;
        reuseCrashPoints += crashWhileReusingLeakedChunks(storage, data, label);
      }
      verifySurvivors(survivors, run, label);
    }
    System.out.printf(
        "CrashRecoveryTest: %d of %d torn two-record appends left leaked chunks;"
            + " %d crash points while reusing them survived%n",
        leakingSeeds, seeds, reuseCrashPoints);
    assertTrue(leakingSeeds > 0, "no seed produced a leak, so reuse was never checked");
  }

  /**
   * Reuses leaked chunks, whose slots still hold old bytes, and crashes at every write and force of
   * that. A reused slot must be zeroed durably before its mapping is journalled, or a crash could
   * leave a durable mapping to the old bytes.
   *
   * @return the number of crash points survived
   */
  private static int crashWhileReusingLeakedChunks(
      CrashingStorage leaky, byte[] lostWrite, String label) throws IOException {
    long c = CHUNK_BYTES;
    List<Step> steps =
        List.of(
            new Open(),
            new Write(64 * c + 1000, 100),
            new Write(65 * c + 1000, 100),
            new Write(66 * c, (int) (2 * c + 512)),
            new Flush(),
            new Write(70 * c + 4000, 200),
            new Flush(),
            new Close());
    CrashingStorage counting = CrashingStorage.wrap(leaky.survivingStorage("leaky"));
    Run baseline = runSteps(steps, runAfter(lostWrite), counting, true, label + ", reuse");
    if (baseline.firstFailure != null) {
      throw new AssertionError(label + ": reuse fails without a crash", baseline.firstFailure);
    }
    int survived = 0;
    for (Mode mode : List.of(Mode.KEEP_SOME_UNFORCED, Mode.FAIL_FORCE)) {
      long points = mode == Mode.FAIL_FORCE ? counting.forceCount() : counting.writeCount();
      for (long n = 1; n <= points; n++) {
        String where = label + ", reuse with " + mode + " at " + n + " of " + points;
        CrashingStorage storage = CrashingStorage.wrap(leaky.survivingStorage("leaky"));
        storage.arm(mode, n, n);
        Run run = runSteps(steps, runAfter(lostWrite), storage, true, where);
        assertTrue(storage.crashed(), where + ": the crash point was never reached");
        verifySurvivors(storage.survivingStorage("survivor"), run, where);
        survived++;
      }
    }
    return survived;
  }

  /** A model that knows an unacknowledged write of {@code lostWrite} at offset 0. */
  private static Run runAfter(byte[] lostWrite) {
    Run run = new Run();
    run.model.recordWrite(0, lostWrite);
    return run;
  }

  private static void verifySurvivors(MemoryStorage survivors, Run run, String label)
      throws IOException {
    CheckReport offline = Images.check(survivors);
    assertNotEquals(
        Status.CORRUPT, offline.status(), label + ": offline check: " + offline.problems());
    long dataOffsetBytes = Header.read(survivors).dataOffsetBytes();
    Image image;
    try {
      image = Image.open(survivors, true);
    } catch (IOException e) {
      throw new AssertionError(label + ": the surviving image does not open: " + e, e);
    }
    try {
      long size = image.sizeBytes();
      assertTrue(
          size == run.sizeBytes || size == run.growingToBytes,
          label + ": size " + size + ", expected " + run.sizeBytes);
      String violation = run.model.violation(0, read(image, 0, (int) size));
      assertNull(violation, label + ": " + violation);

      ImageStats stats = image.stats();
      assertEquals(
          offline.leakedChunks(),
          stats.leakedChunks(),
          label + ": the opener and the offline check count different leaks");
      if (stats.openedAfterCrash()) {
        // Recovery cut the file back to the frontier: every slot in it is mapped or leaked.
        long slots = (survivors.sizeBytes() - dataOffsetBytes) / CHUNK_BYTES;
        assertEquals(
            slots - stats.usedBytes() / CHUNK_BYTES,
            stats.leakedChunks(),
            label + ": leaked chunks miscounted");
      }
      verifyLeakedChunksAreReused(image, survivors, run, label);
    } finally {
      image.close();
    }
    CheckReport afterClose = Images.check(survivors.reopen());
    assertNotEquals(
        Status.CORRUPT,
        afterClose.status(),
        label + ": check after close: " + afterClose.problems());
  }

  /**
   * While leaked chunks remain, first writes into chunks nobody wrote must take them: the file does
   * not grow, and each reused chunk reads zeros where it was not written. Then a repair reclaims
   * the rest.
   */
  private static void verifyLeakedChunksAreReused(
      Image image, MemoryStorage file, Run run, String label) throws IOException {
    long leaked = image.stats().leakedChunks();
    if (leaked == 0) {
      return;
    }
    long fileBytes = file.sizeBytes();
    int reuses = 0;
    for (long chunk = image.sizeBytes() / CHUNK_BYTES - 1;
        chunk >= 0 && reuses < Math.min(leaked, 3);
        chunk--) {
      long chunkOffset = chunk * CHUNK_BYTES;
      if (!run.model.neverWritten(chunkOffset, CHUNK_BYTES)) {
        continue;
      }
      long usedBytes = image.stats().usedBytes();
      byte[] data = dataFor(-1 - (int) chunk, 1000);
      image.write(chunkOffset + 1000, ByteBuffer.wrap(data));
      reuses++;
      String where = label + ", reuse " + reuses + " (chunk " + chunk + ")";
      assertEquals(
          fileBytes, file.sizeBytes(), where + ": the file grew although a leaked chunk was free");
      assertEquals(
          leaked - reuses, image.stats().leakedChunks(), where + ": no leaked chunk reused");
      assertEquals(usedBytes + CHUNK_BYTES, image.stats().usedBytes(), where);
      byte[] expected = new byte[CHUNK_BYTES];
      System.arraycopy(data, 0, expected, 1000, data.length);
      if (!Arrays.equals(expected, read(image, chunkOffset, CHUNK_BYTES))) {
        fail(where + ": a reused chunk shows old bytes where it was not rewritten");
      }
    }
    assertTrue(reuses > 0, label + ": no never-written chunk left to test reuse with");

    long remaining = leaked - reuses;
    CheckReport repair = image.check(true);
    assertEquals(remaining == 0 ? Status.OK : Status.LEAKS, repair.status(), label);
    assertEquals(remaining, repair.reclaimedChunks(), label + ": repair reclaimed too little");
    assertEquals(0, image.stats().leakedChunks(), label);
    assertEquals(remaining, image.stats().freeChunks(), label);
    assertEquals(Status.OK, image.check(false).status(), label);
  }
}
