package dev.fvdisk.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fvdisk.engine.io.CrashingStorage;
import dev.fvdisk.engine.io.ForwardingStorage;
import dev.fvdisk.engine.io.MemoryStorage;
import dev.fvdisk.engine.io.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * Snapshots in the engine, against a model that keeps a full copy of the disk for each snapshot:
 * random writes (unaligned, across chunks), zeroes (whole chunks and parts), grows, flushes,
 * snapshots, deletes of any snapshot, compaction steps, clean reopens and power losses (everything
 * not forced is dropped, or a random part of it). After every step the live disk and every snapshot
 * read as the model says and the image checks clean; after a power loss that drops everything
 * unforced the disk is as at its last durable point, and after any power loss the snapshots are the
 * ones whose creation or deletion returned, each reading exactly as when it was taken.
 */
class SnapshotTest {

  private static final int SEEDS = Integer.getInteger("fvdisk.snapshot.seeds", 60);
  private static final int OPS = Integer.getInteger("fvdisk.snapshot.ops", 150);

  @Test
  void a_snapshot_reads_what_the_disk_held_when_it_was_taken() throws Exception {
    int chunk = 64 * 1024;
    MemoryStorage storage = new MemoryStorage("snap");
    byte[] first = CloneTest.pattern(8 * chunk, 1);
    byte[] live;
    int firstId;
    try (Image image =
        Image.create(storage, ImageOptions.builder(8L * chunk).chunkSizeBytes(chunk).build())) {
      image.write(0, ByteBuffer.wrap(first));
      SnapshotInfo s1 = image.createSnapshot("s1");
      firstId = s1.id();
      assertThat(s1.sizeBytes()).isEqualTo(8L * chunk);
      assertThat(s1.exclusiveBytes()).isZero();
      long usedBefore = image.stats().usedBytes();
      long fileBefore = image.stats().fileBytes();

      // A 4 KiB write moves its chunk to a new slot; a whole-chunk zero keeps the slot for the
      // snapshot.
      image.write(100, ByteBuffer.wrap(new byte[4096]));
      image.zero(2L * chunk, chunk);
      live = first.clone();
      Arrays.fill(live, 100, 4196, (byte) 0);
      Arrays.fill(live, 2 * chunk, 3 * chunk, (byte) 0);
      assertThat(read(image, null, 0, live.length)).isEqualTo(live);
      assertThat(read(image, "s1", 0, first.length)).isEqualTo(first);
      assertThat(image.snapshots())
          .singleElement()
          .extracting(SnapshotInfo::exclusiveBytes)
          .isEqualTo(2L * chunk);
      // The live image maps one chunk fewer; the snapshot holds two the image no longer does.
      assertThat(image.stats().usedBytes()).isEqualTo(usedBefore - chunk);
      assertThat(image.stats().fileBytes()).isEqualTo(fileBefore);
      assertThat(image.stats().snapshotBytes()).isEqualTo(2L * chunk);
      assertThat(image.check(false).status()).isEqualTo(CheckReport.Status.OK);
      // The changes since s1: the two 4 KiB blocks written into and the chunk zeroed.
      assertThat(image.changes("s1", null, 0, 8L * chunk, 1000))
          .containsExactly(
              new Extent(0, 8192, Extent.State.DATA),
              new Extent(2L * chunk, chunk, Extent.State.DATA));
      assertThat(image.changes("s1", null, 0, 8L * chunk, 1))
          .containsExactly(new Extent(0, 8192, Extent.State.DATA));
      assertThat(image.changes("s1", null, 2L * chunk + 10, 100, 1000))
          .containsExactly(new Extent(2L * chunk + 10, 100, Extent.State.DATA));

      assertThatThrownBy(() -> image.createSnapshot("s1"))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("already");
      image.deleteSnapshot("s1");
      assertThat(image.snapshots()).isEmpty();
      assertThat(image.stats().freeChunks()).isEqualTo(2);
      assertThat(read(image, null, 0, live.length)).isEqualTo(live);
    }
    try (Image image = Image.open(storage.reopen(), true)) {
      assertThat(image.snapshots()).isEmpty();
      // Ids are never given twice, also once every snapshot was deleted and the image reopened.
      assertThat(image.createSnapshot("s1").id()).isGreaterThan(firstId);
      image.deleteSnapshot("s1");
      // The two freed slots are not recorded as free: they show as leaked until reused.
      assertThat(image.check(false).problems()).isEmpty();
      assertThat(read(image, null, 0, 8 * chunk)).isEqualTo(live);
    }
  }

  @Test
  void the_first_write_after_a_snapshot_writes_blocks_not_the_chunk() throws Exception {
    int chunk = 1 << 20;
    MemoryStorage memory = new MemoryStorage("partial");
    AtomicLong written = new AtomicLong();
    Storage counting =
        new ForwardingStorage(memory) {
          @Override
          public void write(ByteBuffer src, long positionBytes) throws IOException {
            written.addAndGet(src.remaining());
            super.write(src, positionBytes);
          }
        };
    byte[] first = CloneTest.pattern(4 * chunk, 5);
    byte[] second;
    byte[] live;
    try (Image image =
        Image.create(counting, ImageOptions.builder(4L * chunk).chunkSizeBytes(chunk).build())) {
      image.write(0, ByteBuffer.wrap(first));
      image.createSnapshot("s1");
      written.set(0);
      // A whole block, and 512 bytes inside another block, of chunk 0; a whole block of chunk 2.
      live = first.clone();
      writeAndModel(image, live, 8192, CloneTest.pattern(4096, 6));
      writeAndModel(image, live, 100_000, CloneTest.pattern(512, 7));
      writeAndModel(image, live, 2L * chunk + 4096, CloneTest.pattern(4096, 8));
      image.flush();
      // Three blocks of data and the journal records, far from two chunks.
      assertThat(written.get()).isLessThan(64 << 10);
      assertThat(read(image, null, 0, live.length)).isEqualTo(live);
      assertThat(read(image, "s1", 0, first.length)).isEqualTo(first);
      // The changes since s1 are the three blocks written, not their chunks.
      assertThat(image.changes("s1", null, 0, 4L * chunk, 1000))
          .containsExactly(
              new Extent(8192, 4096, Extent.State.DATA),
              new Extent(98_304, 4096, Extent.State.DATA),
              new Extent(2L * chunk + 4096, 4096, Extent.State.DATA));
      assertThat(image.changes("s1", null, 9000, 2L * chunk, 1))
          .containsExactly(new Extent(9000, 12_288 - 9000, Extent.State.DATA));

      // A second snapshot keeps the partial version of chunk 0; the next write into chunk 0
      // makes one that reads through it, and it through s1's slot.
      image.createSnapshot("s2");
      second = live.clone();
      writeAndModel(image, live, 300, CloneTest.pattern(700, 9));
      writeAndModel(image, live, chunk - 4096, CloneTest.pattern(4096, 10));
      assertThat(read(image, null, 0, live.length)).isEqualTo(live);
      assertThat(read(image, "s2", 0, second.length)).isEqualTo(second);
      assertThat(read(image, "s1", 0, first.length)).isEqualTo(first);
      assertThat(image.snapshots()).hasSize(2);
      // From s1 to the live image the chain of versions of chunk 0 names every block written.
      assertThat(image.changes("s1", null, 0, chunk, 1000))
          .containsExactly(
              new Extent(0, 4096, Extent.State.DATA),
              new Extent(8192, 4096, Extent.State.DATA),
              new Extent(98_304, 4096, Extent.State.DATA),
              new Extent(chunk - 4096, 4096, Extent.State.DATA));

      // Deleting s1 frees the slots s2's versions read through: they are filled first.
      image.deleteSnapshot("s1");
      assertThat(read(image, "s2", 0, second.length)).isEqualTo(second);
      assertThat(read(image, null, 0, live.length)).isEqualTo(live);
      // The freed slots are reused: what they held must not show anywhere.
      writeAndModel(image, live, 3L * chunk, CloneTest.pattern(chunk, 11));
      writeAndModel(image, live, chunk, CloneTest.pattern(chunk, 12));
      image.flush();
      assertThat(read(image, "s2", 0, second.length)).isEqualTo(second);
      assertThat(image.check(false).problems()).isEmpty();
    }
    try (Image image = Image.open(memory.reopen(), true)) {
      assertThat(read(image, null, 0, live.length)).isEqualTo(live);
      assertThat(read(image, "s2", 0, second.length)).isEqualTo(second);
      assertThat(image.check(false).problems()).isEmpty();
      image.deleteSnapshot("s2");
      assertThat(read(image, null, 0, live.length)).isEqualTo(live);
    }
    try (Image image = Image.open(memory.reopen(), false)) {
      assertThat(read(image, null, 0, live.length)).isEqualTo(live);
      assertThat(image.snapshots()).isEmpty();
    }
  }

  private static void writeAndModel(Image image, byte[] model, long offset, byte[] data)
      throws Exception {
    image.write(offset, ByteBuffer.wrap(data));
    System.arraycopy(data, 0, model, (int) offset, data.length);
  }

  @Test
  void a_damaged_snapshot_directory_is_refused_at_open() throws Exception {
    int chunk = 4096;
    MemoryStorage storage = new MemoryStorage("directory");
    try (Image image =
        Image.create(storage, ImageOptions.builder(16L * chunk).chunkSizeBytes(chunk).build())) {
      image.write(0, ByteBuffer.wrap(CloneTest.pattern(4 * chunk, 3)));
      image.createSnapshot("before");
      image.write(0, ByteBuffer.wrap(new byte[chunk]));
    }
    Header header = Header.read(storage.reopen());
    assertThat(header.hasSnapshotsFeature()).isTrue();
    assertThat(header.snapshotDirectoryOffset()).isPositive();
    try (Image image = Image.open(storage.reopen(), false)) {
      assertThat(read(image, "before", 0, 4 * chunk)).isEqualTo(CloneTest.pattern(4 * chunk, 3));
    }
    long at = header.snapshotDirectoryOffset() + header.snapshotDirectoryBytes() / 2;
    ByteBuffer one = ByteBuffer.allocate(1);
    storage.reopen().read(one, at);
    storage.write(ByteBuffer.wrap(new byte[] {(byte) (one.get(0) ^ 1)}), at);
    assertThatThrownBy(() -> Image.open(storage.reopen(), false))
        .isInstanceOf(CorruptImageException.class)
        .hasMessageContaining("snapshot directory");
  }

  @Test
  void random_operations_power_losses_and_reopens_keep_every_snapshot() throws Exception {
    for (int seed = 1; seed <= SEEDS; seed++) {
      try {
        new Run(seed).go(OPS);
      } catch (AssertionError | Exception e) {
        throw new AssertionError("seed " + seed + ": " + e.getMessage(), e);
      }
    }
  }

  private static byte[] read(Image image, String snapshot, long offset, int length)
      throws Exception {
    ByteBuffer buf = ByteBuffer.allocate(length);
    if (snapshot == null) {
      image.read(offset, buf);
    } else {
      image.readSnapshot(snapshot, offset, buf);
    }
    return buf.array();
  }

  /** One seed: a geometry and a run of random operations. */
  private static final class Run {
    private final SplittableRandom random;
    private final int chunk;
    private final ImageOptions options;
    private CrashingStorage storage;
    private Image image;
    private byte[] live;
    private byte[] durable;
    private final Map<String, byte[]> snapshots = new LinkedHashMap<>();
    private int taken;

    Run(int seed) throws Exception {
      random = new SplittableRandom(seed);
      chunk = 4096 << random.nextInt(3);
      long size = (long) chunk * (4 + random.nextInt(12)) - 512L * random.nextInt(3);
      options =
          ImageOptions.builder(size)
              .chunkSizeBytes(chunk)
              .maxSizeBytes(4 * size)
              .growthUnitBytes(chunk * (1 + random.nextInt(3)))
              .journalSizeBytes(512L * (2 + random.nextInt(16)))
              .build();
      storage = CrashingStorage.wrap(new MemoryStorage("snapshots-" + seed));
      image = Image.create(storage, options);
      live = new byte[(int) size];
      durable = live.clone();
    }

    void go(int ops) throws Exception {
      try {
        for (int step = 0; step < ops; step++) {
          step(step);
          check(step);
        }
      } catch (Exception | AssertionError e) {
        try {
          image.close();
        } catch (Exception alsoFailed) {
          e.addSuppressed(alsoFailed);
        }
        throw e;
      }
      image.close();
    }

    private void step(int step) throws Exception {
      int op = random.nextInt(100);
      if (op < 40) {
        int at = random.nextInt(live.length);
        int length = 1 + random.nextInt(Math.min(live.length - at, 3 * chunk));
        byte[] data = new byte[length];
        random.nextBytes(data);
        image.write(at, ByteBuffer.wrap(data));
        System.arraycopy(data, 0, live, at, length);
      } else if (op < 52) {
        int at = random.nextInt(live.length / 512) * 512;
        int length = 512 * (1 + random.nextInt((live.length - at) / 512));
        if (random.nextBoolean()) {
          // Whole chunks more often than a random range would give them.
          at = random.nextInt(live.length / chunk) * chunk;
          length = Math.min(live.length - at, chunk * (1 + random.nextInt(2)));
        }
        image.zero(at, length);
        Arrays.fill(live, at, at + length, (byte) 0);
      } else if (op < 60) {
        image.flush();
        durable = live.clone();
      } else if (op < 70) {
        if (snapshots.size() < 6) {
          String name = "s" + taken++;
          image.createSnapshot(name);
          snapshots.put(name, live.clone());
          durable = live.clone();
        }
      } else if (op < 78) {
        if (!snapshots.isEmpty()) {
          List<String> names = new ArrayList<>(snapshots.keySet());
          String name = names.get(random.nextInt(names.size()));
          image.deleteSnapshot(name);
          snapshots.remove(name);
          durable = live.clone();
        }
      } else if (op < 84) {
        if (image.compact(1 + random.nextInt(4)).movedChunks() > 0) {
          durable = live.clone(); // a step that moved chunks commits everything
        }
      } else if (op < 87) {
        long grown = live.length + 512L * (1 + random.nextInt(2 * chunk / 512));
        if (grown <= image.maxSizeBytes()) {
          image.grow(grown);
          live = Arrays.copyOf(live, (int) grown);
          durable = live.clone();
        }
      } else if (op < 93) {
        image.close();
        durable = live.clone();
        image = Image.open(storage.reopen(), true);
      } else {
        // Power loss: what was not forced is gone (all of it, or a random part of it).
        boolean keepSome = random.nextBoolean();
        storage.crashNow(
            keepSome ? CrashingStorage.Mode.KEEP_SOME_UNFORCED : CrashingStorage.Mode.LOSE_UNFORCED,
            random.nextLong());
        try {
          image.close();
        } catch (java.io.IOException expected) {
          // The crashed storage refuses the close's writes.
        }
        storage = storage.reboot("after-crash-" + step);
        image = Image.open(storage, true);
        if (keepSome) {
          // Each sector written since the last durable point may or may not have survived; the
          // snapshots, durable when taken, must read exactly as before all the same.
          live = read(image, null, 0, live.length);
        } else {
          live = durable.clone();
        }
        durable = live.clone();
      }
    }

    private void check(int step) throws Exception {
      assertThat(image.sizeBytes()).as("step %d: size", step).isEqualTo(live.length);
      assertSame(read(image, null, 0, live.length), live, "step " + step + ": the live disk");
      List<String> names = new ArrayList<>();
      for (SnapshotInfo info : image.snapshots()) {
        names.add(info.name());
      }
      assertThat(names)
          .as("step %d: snapshots", step)
          .containsExactlyElementsOf(snapshots.keySet());
      for (Map.Entry<String, byte[]> s : snapshots.entrySet()) {
        byte[] expected = s.getValue();
        assertSame(
            read(image, s.getKey(), 0, expected.length),
            expected,
            "step " + step + ": snapshot " + s.getKey());
        // Its map covers it in order, and what it calls zero reads as zeros.
        long at = 0;
        for (Extent e : image.snapshotExtents(s.getKey(), 0, expected.length, 1 << 20)) {
          assertThat(e.offsetBytes()).as("step %d: map of %s", step, s.getKey()).isEqualTo(at);
          at = e.endBytes();
          if (e.state() == Extent.State.ZERO) {
            for (int b = (int) e.offsetBytes(); b < e.endBytes(); b++) {
              if (expected[b] != 0) {
                throw new AssertionError(
                    "step " + step + ": " + s.getKey() + " maps byte " + b + " as zero");
              }
            }
          }
        }
        assertThat(at).as("step %d: map of %s", step, s.getKey()).isEqualTo(expected.length);
      }
      CheckReport report = image.check(false);
      assertThat(report.problems()).as("step %d: check", step).isEmpty();
      checkChanges(step);
    }

    /**
     * Every byte where a later snapshot, or the live disk, differs from an earlier snapshot lies in
     * a change the image lists between them.
     */
    private void checkChanges(int step) throws Exception {
      List<String> names = new ArrayList<>(snapshots.keySet());
      for (int i = 0; i < names.size(); i++) {
        byte[] from = snapshots.get(names.get(i));
        for (int j = i + 1; j <= names.size(); j++) {
          String toName = j == names.size() ? null : names.get(j);
          byte[] to = toName == null ? live : snapshots.get(toName);
          List<Extent> changes = image.changes(names.get(i), toName, 0, to.length, 1 << 20);
          boolean[] covered = new boolean[to.length];
          for (Extent e : changes) {
            Arrays.fill(covered, (int) e.offsetBytes(), (int) e.endBytes(), true);
          }
          for (int b = 0; b < to.length; b++) {
            boolean differs = b >= from.length || from[b] != to[b];
            if (differs && !covered[b]) {
              throw new AssertionError(
                  "step "
                      + step
                      + ": byte "
                      + b
                      + " differs between "
                      + names.get(i)
                      + " and "
                      + (toName == null ? "the live disk" : toName)
                      + " but is in no change");
            }
          }
        }
      }
    }

    private void assertSame(byte[] actual, byte[] expected, String what) {
      int at = Arrays.mismatch(actual, expected);
      if (at >= 0) {
        throw new AssertionError(
            what + ": first difference at byte " + at + " (chunk " + at / chunk + ")");
      }
    }
  }
}
