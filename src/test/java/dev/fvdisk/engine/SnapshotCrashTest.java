package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fvdisk.engine.CheckReport.Status;
import dev.fvdisk.engine.io.CrashingStorage;
import dev.fvdisk.engine.io.CrashingStorage.Mode;
import dev.fvdisk.engine.io.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A workload of snapshots taken and deleted among writes that copy shared chunks, whole-chunk
 * zeroes that keep slots for snapshots, first writes after a snapshot, compaction and a clean
 * close, crashed at every storage write (three power-loss modes) and every force, with two journal
 * sizes (the smaller one fills and is replaced by table switches, which write the snapshot
 * directory). With chunks of 4 KiB every chunk is one block; with chunks of 32 KiB (eight blocks)
 * the first write into a chunk after a snapshot makes a partial version, later snapshots keep
 * partial versions that read through older ones, and deleting a snapshot fills the version that
 * read through a slot it frees.
 *
 * <p>After each crash the surviving bytes must open, the offline check must not report corruption,
 * every write acknowledged by a flush must read back (others leave each sector old or new), every
 * snapshot whose creation returned and whose deletion did not begin must exist and read exactly
 * what the disk held when it was taken, a snapshot being created or deleted at the crash may or may
 * not exist but reads exactly that if it does, and no other snapshot exists.
 */
class SnapshotCrashTest {

  private static final int C = 4096;
  private static final long SIZE = 48L * C;

  private sealed interface Step permits Write, Zero, Flush, Snap, Drop, Compact, Close, Open {}

  private record Write(long offsetBytes, int lengthBytes) implements Step {}

  private record Zero(long offsetBytes, int lengthBytes) implements Step {}

  private record Flush() implements Step {}

  private record Snap(String name) implements Step {}

  private record Drop(String name) implements Step {}

  private record Compact(int maxChunks) implements Step {}

  private record Close() implements Step {}

  private record Open() implements Step {}

  private static final List<Step> WORKLOAD =
      List.of(
          new Open(),
          new Write(0, 16 * C),
          new Flush(),
          new Snap("a"),
          // Copies of shared chunks, a whole-chunk zero that keeps two slots for "a", a first
          // write into a chunk "a" saw as zeros, and an unflushed write the snapshot must not see.
          new Write(100, 300),
          new Write(3L * C + 5, 2 * C),
          new Zero(6L * C, 2 * C),
          new Write(20L * C, 2 * C),
          new Flush(),
          new Write(9L * C, 700),
          new Snap("b"),
          new Write(0, 512),
          new Zero(C, C),
          new Write(30L * C, C),
          new Flush(),
          // Deleting the older snapshot hands "b" what it read through "a", frees the rest.
          new Drop("a"),
          new Compact(8),
          new Write(2L * C, 10),
          new Flush(),
          new Snap("c"),
          new Write(10L * C, 4 * C),
          // Deleting the middle one, then the newest later, with writes in between.
          new Drop("b"),
          new Zero(12L * C, C),
          new Flush(),
          new Close(),
          new Open(),
          new Write(40L * C, C),
          new Snap("d"),
          new Write(40L * C + 8, 8),
          new Drop("c"),
          new Write(41L * C + 100, 2 * C),
          new Snap("e"),
          new Write(42L * C, C),
          new Zero(32L * C, 8 * C),
          new Drop("d"),
          new Flush(),
          new Close());

  /**
   * The base of the clone case: random bytes over the first 40 of the 48 chunks of 4 KiB, so the
   * clone's last chunks lie past it, and a zeroed stretch. Opened read-only once for all runs.
   */
  private static final byte[] BASE_BYTES = baseBytes();

  private static @Nullable Image base;

  private static byte[] baseBytes() {
    byte[] bytes = new byte[40 * C];
    new Random(40).nextBytes(bytes);
    Arrays.fill(bytes, 24 * C, 26 * C, (byte) 0);
    return bytes;
  }

  private static synchronized Image base() throws IOException {
    if (base == null) {
      MemoryStorage storage = new MemoryStorage("base");
      try (Image image = Image.create(storage, ImageOptions.builder(BASE_BYTES.length).build())) {
        image.write(0, ByteBuffer.wrap(BASE_BYTES));
      }
      Image.setReadOnly(storage.reopen(), true);
      base = Image.open(storage.reopen(), false);
    }
    return base;
  }

  private static CrashingStorage freshImage(long journalBytes, int chunkBytes, boolean clone)
      throws IOException {
    MemoryStorage storage = new MemoryStorage("snapshot-crash");
    ImageOptions options =
        ImageOptions.builder(SIZE)
            .chunkSizeBytes(chunkBytes)
            .blockSizeBytes(C)
            .journalSizeBytes(journalBytes)
            .growthUnitBytes(Math.max(2L * C, chunkBytes))
            .build();
    (clone ? Image.create(storage, options, base(), "base") : Image.create(storage, options))
        .close();
    return CrashingStorage.wrap(storage.reopen());
  }

  private static Image open(dev.fvdisk.engine.io.Storage storage, boolean writable)
      throws IOException {
    return Image.open(storage, writable, locator -> base());
  }

  /** What the test knows of one run. */
  private static final class Run {
    final SectorHistory model;
    final Map<String, byte[]> sure = new HashMap<>();
    final Map<String, byte[]> maybe = new HashMap<>();
    Image image;
    Throwable failure;

    Run(boolean clone) {
      model =
          new SectorHistory(clone ? Arrays.copyOf(BASE_BYTES, (int) SIZE) : new byte[(int) SIZE]);
    }
  }

  private static Run run(CrashingStorage storage, String label, boolean clone) {
    Run run = new Run(clone);
    for (int i = 0; i < WORKLOAD.size(); i++) {
      try {
        execute(WORKLOAD.get(i), i, storage, run);
      } catch (IOException | RuntimeException e) {
        run.failure = e;
        return run;
      } catch (AssertionError e) {
        throw new AssertionError(label + ": step " + i + ": " + e.getMessage(), e);
      }
    }
    return run;
  }

  private static void execute(Step step, int index, CrashingStorage storage, Run run)
      throws IOException {
    if (step instanceof Write w) {
      byte[] data = new byte[w.lengthBytes()];
      new Random(index * 1_000_003L + w.lengthBytes()).nextBytes(data);
      run.model.recordWrite(w.offsetBytes(), data);
      run.image.write(w.offsetBytes(), ByteBuffer.wrap(data));
    } else if (step instanceof Zero z) {
      run.model.recordWrite(z.offsetBytes(), new byte[z.lengthBytes()]);
      run.image.zero(z.offsetBytes(), z.lengthBytes());
    } else if (step instanceof Flush) {
      int[] acknowledged = run.model.snapshot();
      run.image.flush();
      run.model.acknowledge(acknowledged);
    } else if (step instanceof Snap s) {
      // Taking a snapshot flushes first: what it holds is durable when it returns.
      int[] acknowledged = run.model.snapshot();
      run.maybe.put(s.name(), run.model.latest(0, (int) SIZE));
      run.image.createSnapshot(s.name());
      run.model.acknowledge(acknowledged);
      run.sure.put(s.name(), run.maybe.remove(s.name()));
    } else if (step instanceof Drop d) {
      run.maybe.put(d.name(), run.sure.remove(d.name()));
      run.image.deleteSnapshot(d.name());
      run.maybe.remove(d.name());
    } else if (step instanceof Compact k) {
      run.image.compact(k.maxChunks());
    } else if (step instanceof Close) {
      Image image = run.image;
      run.image = null;
      int[] acknowledged = run.model.snapshot();
      image.close();
      run.model.acknowledge(acknowledged);
    } else if (step instanceof Open) {
      run.image = open(storage.reopen(), true);
      byte[] observed = read(run.image, null, (int) SIZE);
      assertNull(run.model.violation(0, observed));
      run.model.resyncDurable(0, observed);
    }
  }

  private static byte[] read(Image image, String snapshot, int length) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(length);
    if (snapshot == null) {
      image.read(0, buf);
    } else {
      image.readSnapshot(snapshot, 0, buf);
    }
    return buf.array();
  }

  static Stream<Arguments> crashes() {
    return Stream.of(Mode.LOSE_UNFORCED, Mode.KEEP_SOME_UNFORCED, Mode.TEAR_WRITE, Mode.FAIL_FORCE)
        .flatMap(
            mode ->
                Stream.of(
                    Arguments.of(mode, 1024L, C, false),
                    Arguments.of(mode, 16384L, C, false),
                    Arguments.of(mode, 1024L, 8 * C, false),
                    Arguments.of(mode, 1024L, 8 * C, true)));
  }

  /**
   * The clone case runs the workload on a clone that reads its base throughout: its snapshots keep
   * copies of the block bitmap, written at the crash points too.
   */
  @ParameterizedTest(name = "{0}, journal of {1} bytes, chunks of {2} bytes, clone {3}")
  @MethodSource("crashes")
  void every_crash_point_keeps_acknowledged_writes_and_every_snapshot_exactly(
      Mode mode, long journalBytes, int chunkBytes, boolean clone) throws IOException {
    CrashingStorage counting = freshImage(journalBytes, chunkBytes, clone);
    Run baseline = run(counting, "baseline", clone);
    if (baseline.failure != null) {
      throw new AssertionError("the workload fails without a crash", baseline.failure);
    }
    try (Image image = open(counting.survivingStorage("baseline"), false)) {
      assertEquals(Set.of("e"), names(image), "baseline snapshots");
      assertArrayEquals(baseline.sure.get("e"), read(image, "e", (int) SIZE));
    }
    long points = mode == Mode.FAIL_FORCE ? counting.forceCount() : counting.writeCount();
    int survived = 0;
    for (long n = 1; n <= points; n++) {
      String label =
          String.format(
              "%s at %d of %d, journal %d bytes, chunks of %d bytes",
              mode, n, points, journalBytes, chunkBytes);
      CrashingStorage storage = freshImage(journalBytes, chunkBytes, clone);
      storage.arm(mode, n, n * 7919);
      Run run = run(storage, label, clone);
      assertTrue(storage.crashed(), label + ": the crash point was never reached");
      verify(storage.survivingStorage("survivor"), run, label);
      survived++;
    }
    System.out.printf(
        "SnapshotCrashTest: %d crash points survived (%s, journal %d bytes, chunks of %d bytes)%n",
        survived, mode, journalBytes, chunkBytes);
  }

  private static void verify(MemoryStorage survivors, Run run, String label) throws IOException {
    CheckReport offline = Images.check(survivors);
    assertNotEquals(Status.CORRUPT, offline.status(), label + ": " + offline.problems());
    try (Image image = open(survivors, true)) {
      String violation = run.model.violation(0, read(image, null, (int) SIZE));
      assertNull(violation, label + ": live disk: " + violation);
      Set<String> present = names(image);
      for (Map.Entry<String, byte[]> s : run.sure.entrySet()) {
        assertTrue(present.contains(s.getKey()), label + ": snapshot " + s.getKey() + " is lost");
      }
      for (String name : present) {
        byte[] expected = run.sure.containsKey(name) ? run.sure.get(name) : run.maybe.get(name);
        assertTrue(expected != null, label + ": snapshot " + name + " should not exist");
        assertArrayEquals(expected, read(image, name, (int) SIZE), label + ": snapshot " + name);
      }
      assertEquals(List.of(), image.check(false).problems(), label + ": check");
    }
  }

  private static Set<String> names(Image image) {
    Set<String> names = new HashSet<>();
    image.snapshots().forEach(s -> names.add(s.name()));
    return names;
  }
}
