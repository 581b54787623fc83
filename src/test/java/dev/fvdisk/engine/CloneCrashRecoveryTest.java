package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Crash recovery of a clone at every write of a fixed workload: copy-on-write merges of partial
 * blocks, writes past the base's end, zeroing (partial blocks, whole blocks still in the base, and
 * whole chunks, which lose their slots and record their blocks as zero), copy-on-read copies and
 * flushes. One journal is small enough to force table and bitmap switches; the other holds several
 * rounds, so unmappings and zero blocks are replayed over present blocks journalled earlier.
 *
 * <p>After each crash the surviving bytes are opened against the unchanged base and every sector is
 * checked against {@link SectorHistory}, which starts from the base's content: flushed writes must
 * be exact, never-written sectors must still show the base (or zeros past its end), and other
 * sectors their old or new content. The map must agree with the data: a block the map places in the
 * base reads the base's bytes, and a zero extent reads zeros.
 */
class CloneCrashRecoveryTest {

  private static final int SECTOR = 512;
  private static final int CHUNK = 16 * 1024;
  private static final int BLOCK = 2048;
  private static final int BASE_BYTES = 128 * 1024;
  private static final int CLONE_BYTES = 160 * 1024;

  private record Step(char kind, long offsetBytes, byte[] data) {}

  /** The workload, the same for every crash point. */
  private static List<Step> workload() {
    Random random = new Random(42);
    List<Step> steps = new ArrayList<>();
    for (int i = 0; i < 16; i++) {
      int offset = random.nextInt(CLONE_BYTES - 1);
      int length = 1 + random.nextInt(Math.min(3 * BLOCK + 700, CLONE_BYTES - offset));
      byte[] data = new byte[length];
      random.nextBytes(data);
      steps.add(new Step('w', offset, data));
      if (i % 5 == 2) {
        steps.add(new Step('r', random.nextInt(BASE_BYTES - 4 * BLOCK), new byte[4 * BLOCK]));
      }
      if (i % 7 == 3) {
        steps.add(new Step('z', random.nextInt(CLONE_BYTES - BLOCK), new byte[BLOCK + 300]));
      }
      if (i % 4 == 2) {
        // Whole chunks of the base's range, some with blocks journalled as present.
        int chunks = 1 + random.nextInt(2);
        int first = random.nextInt(BASE_BYTES / CHUNK - chunks + 1);
        steps.add(new Step('z', (long) first * CHUNK, new byte[chunks * CHUNK]));
      }
      if (i % 6 == 5) {
        // Whole blocks, from a block boundary: zero blocks where the chunk has no slot.
        int block = random.nextInt(BASE_BYTES / BLOCK - 3);
        steps.add(new Step('z', (long) block * BLOCK, new byte[3 * BLOCK]));
      }
      if (i % 3 == 1) {
        steps.add(new Step('f', 0, null));
      }
    }
    steps.add(new Step('f', 0, null));
    return steps;
  }

  private static byte[] baseContent() {
    byte[] content = new byte[BASE_BYTES];
    new Random(7).nextBytes(content);
    Arrays.fill(content, 10 * BLOCK, 14 * BLOCK, (byte) 0);
    return content;
  }

  static Stream<Arguments> crashModes() {
    List<Arguments> arguments = new ArrayList<>();
    for (long journalBytes : new long[] {1024, 8192}) {
      for (Mode mode :
          List.of(Mode.LOSE_UNFORCED, Mode.KEEP_SOME_UNFORCED, Mode.TEAR_WRITE, Mode.FAIL_FORCE)) {
        arguments.add(Arguments.of(mode, journalBytes));
      }
    }
    return arguments.stream();
  }

  @ParameterizedTest(name = "{0}, journal of {1} bytes")
  @MethodSource("crashModes")
  void every_crash_point_keeps_flushed_writes_and_the_base_where_nothing_was_written(
      Mode mode, long journalBytes) throws Exception {
    byte[] content = baseContent();
    MemoryStorage baseStorage = new MemoryStorage("base");
    try (Image writable =
        Image.create(baseStorage, ImageOptions.builder(BASE_BYTES).chunkSizeBytes(CHUNK).build())) {
      writable.write(0, ByteBuffer.wrap(content));
    }
    Image.setReadOnly(baseStorage.reopen(), true);
    List<Step> steps = workload();
    try (Image base = Image.open(baseStorage.reopen(), false)) {
      BaseResolver bases = name -> base;
      // A failed force is armed by force number, the other modes by write number.
      CrashingStorage dryRun = run(base, bases, steps, null, mode, 0, journalBytes, 0);
      long points = mode == Mode.FAIL_FORCE ? dryRun.forceCount() : dryRun.writeCount();
      int rounds = mode == Mode.FAIL_FORCE ? 2 : 1;
      int survived = 0;
      for (long n = 1; n <= points; n++) {
        for (int round = 0; round < rounds; round++) {
          runAndCheck(base, bases, steps, content, mode, n, journalBytes, round);
          survived++;
        }
      }
      assertTrue(survived > 30, "only " + survived + " crash points");
      System.out.println(
          "CloneCrashRecoveryTest "
              + mode
              + ", journal "
              + journalBytes
              + " bytes: "
              + survived
              + " crash points survived");
    }
  }

  private static void runAndCheck(
      Image base,
      BaseResolver bases,
      List<Step> steps,
      byte[] content,
      Mode mode,
      long n,
      long journalBytes,
      int round)
      throws Exception {
    SectorHistory history = new SectorHistory(CLONE_BYTES);
    history.resyncDurable(0, Arrays.copyOf(content, CLONE_BYTES));
    CrashingStorage storage = run(base, bases, steps, history, mode, n, journalBytes, round);
    String where = mode + " at point " + n + ", journal " + journalBytes + " bytes, round " + round;
    MemoryStorage survivor = storage.survivingStorage("survivor");
    assertNotEquals(
        CheckReport.Status.CORRUPT, Images.check(survivor).status(), where + ": offline check");
    try (Image clone = Image.open(survivor.reopen(), false, bases)) {
      byte[] actual = new byte[CLONE_BYTES];
      clone.read(0, ByteBuffer.wrap(actual));
      assertNull(history.violation(0, actual), where);
      for (Extent e : clone.extents(0, CLONE_BYTES, Integer.MAX_VALUE)) {
        byte[] bytes = Arrays.copyOfRange(actual, (int) e.offsetBytes(), (int) e.endBytes());
        if (e.state() == Extent.State.BASE) {
          assertArrayEquals(
              Arrays.copyOfRange(content, (int) e.offsetBytes(), (int) e.endBytes()),
              bytes,
              where + ": base extent " + e);
        } else if (e.state() == Extent.State.ZERO) {
          assertArrayEquals(new byte[bytes.length], bytes, where + ": zero extent " + e);
        }
      }
    }
    // The recovered clone takes writes again.
    try (Image clone = Image.open(survivor.reopen(), true, bases)) {
      clone.write(3 * BLOCK + 5, ByteBuffer.wrap(new byte[] {1, 2, 3}));
      clone.flush();
      assertNotEquals(CheckReport.Status.CORRUPT, clone.check(false).status(), where);
    }
  }

  /**
   * Runs the workload on a new clone whose storage crashes at write {@code crashAt} in {@code mode}
   * ({@code crashAt} 0: never), recording writes and flushes in {@code history} if given.
   */
  private static CrashingStorage run(
      Image base,
      BaseResolver bases,
      List<Step> steps,
      SectorHistory history,
      Mode mode,
      long crashAt,
      long journalBytes,
      int round)
      throws IOException {
    MemoryStorage fresh = new MemoryStorage("clone");
    ImageOptions options =
        ImageOptions.builder(CLONE_BYTES)
            .chunkSizeBytes(CHUNK)
            .blockSizeBytes(BLOCK)
            .journalSizeBytes(journalBytes)
            .growthUnitBytes(2L * CHUNK)
            .copyOnRead(true)
            .build();
    Image.create(fresh, options, base, "base").close();
    CrashingStorage storage = CrashingStorage.wrap(fresh.reopen());
    if (crashAt > 0) {
      storage.arm(mode, crashAt, crashAt * 31 + mode.ordinal() + 1009L * round);
    }
    try {
      // Opening for writing writes a header: a crash can hit it too.
      Image clone = Image.open(storage, true, bases);
      for (Step step : steps) {
        switch (step.kind()) {
          case 'w' -> {
            if (history != null) {
              history.recordWrite(step.offsetBytes(), step.data());
            }
            clone.write(step.offsetBytes(), ByteBuffer.wrap(step.data()));
          }
          case 'z' -> {
            if (history != null) {
              history.recordWrite(step.offsetBytes(), new byte[step.data().length]);
            }
            clone.zero(step.offsetBytes(), step.data().length);
          }
          case 'r' -> clone.read(step.offsetBytes(), ByteBuffer.allocate(step.data().length));
          default -> {
            int[] snapshot = history == null ? null : history.snapshot();
            clone.flush();
            if (history != null) {
              history.acknowledge(snapshot);
            }
          }
        }
      }
      clone.close();
    } catch (CrashingStorage.CrashedException | ImageFailedException e) {
      // The crash: what the storage kept is checked by the caller.
    }
    if (crashAt == 0) {
      assertTrue(!storage.crashed());
    }
    return storage;
  }
}
