package dev.fvdisk.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fvdisk.engine.io.MemoryStorage;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Snapshots of a clone that still reads its base: each keeps a copy of the clone's block bitmap, so
 * blocks the clone had not copied yet read from the base, also after copy-on-read, prefetch copies
 * and writes changed the clone, after a reopen and after a crash. The clone keeps its base while
 * such a snapshot exists. The changes since such a snapshot leave out blocks that were only copied
 * from the base.
 */
class CloneSnapshotTest {

  @RegisterExtension static final CheckOnClose CHECKED = new CheckOnClose();

  private static final int CHUNK = 16 << 10;
  private static final int BLOCK = 4096;
  private static final int BASE_SIZE = 24 * CHUNK;
  private static final int SIZE = BASE_SIZE + 2 * CHUNK; // the clone is larger than its base
  private static final int SEEDS = Integer.getInteger("fvdisk.clone-snapshot.seeds", 50);
  private static final int OPS = Integer.getInteger("fvdisk.clone-snapshot.ops", 300);

  private static ImageOptions.Builder options(long sizeBytes) {
    return ImageOptions.builder(sizeBytes)
        .chunkSizeBytes(CHUNK)
        .blockSizeBytes(BLOCK)
        .journalSizeBytes(4096);
  }

  private static Image readOnlyBase(CheckOnClose.Checked storage, byte[] content) throws Exception {
    try (Image base = Image.create(storage, options(content.length).build())) {
      base.write(0, ByteBuffer.wrap(content));
    }
    Image.setReadOnly(storage.reopen(), true);
    return Image.open(storage.reopen(), false);
  }

  private static byte[] readSnapshot(Image image, String name, int length) throws Exception {
    byte[] bytes = new byte[length];
    image.readSnapshot(name, 0, ByteBuffer.wrap(bytes));
    return bytes;
  }

  @Test
  void a_snapshot_of_a_clone_reads_the_base_where_the_clone_had_not_copied_a_block()
      throws Exception {
    byte[] content = CloneTest.pattern(BASE_SIZE, 1);
    try (Image base = readOnlyBase(CHECKED.memory("base"), content)) {
      CheckOnClose.Checked storage = CHECKED.memory("clone");
      byte[] expected = Arrays.copyOf(content, SIZE);
      try (Image clone =
          Image.create(storage, options(SIZE).copyOnRead(true).build(), base, "base")) {
        clone.write(BLOCK, ByteBuffer.wrap(new byte[] {1, 2, 3}));
        expected[BLOCK] = 1;
        expected[BLOCK + 1] = 2;
        expected[BLOCK + 2] = 3;
        clone.zero(5L * BLOCK, BLOCK);
        Arrays.fill(expected, 5 * BLOCK, 6 * BLOCK, (byte) 0);
        clone.createSnapshot("s1");
        // Copy-on-read copies every block, then writes change half the clone.
        assertThat(CloneTest.read(clone, 0, SIZE)).isEqualTo(expected);
        clone.write(0, ByteBuffer.wrap(CloneTest.pattern(SIZE / 2, 2)));
        assertThat(readSnapshot(clone, "s1", SIZE)).isEqualTo(expected);

        List<Extent> extents = clone.snapshotExtents("s1", 0, SIZE, 100);
        assertThat(extents.get(0)).isEqualTo(new Extent(0, BLOCK, Extent.State.BASE));
        assertThat(extents.get(1).state()).isEqualTo(Extent.State.DATA);
        assertThat(extents).contains(new Extent(BASE_SIZE, SIZE - BASE_SIZE, Extent.State.ZERO));

        // Only the client's writes are changes: nothing copy-on-read copied past them.
        assertThat(clone.changes("s1", null, 0, SIZE, 100))
            .containsExactly(new Extent(0, SIZE / 2, Extent.State.DATA));
        assertThat(clone.check(false).problems()).isEmpty();
      }
      try (Image clone = Image.open(storage.reopen(), true, locator -> base)) {
        assertThat(readSnapshot(clone, "s1", SIZE)).isEqualTo(expected);
        clone.deleteSnapshot("s1");
        assertThat(clone.check(false).problems()).isEmpty();
      }
    }
  }

  @Test
  void a_clone_keeps_its_base_while_a_snapshot_reads_it_and_stands_alone_after() throws Exception {
    byte[] content = CloneTest.pattern(BASE_SIZE, 3);
    try (Image base = readOnlyBase(CHECKED.memory("base"), content)) {
      CheckOnClose.Checked storage = CHECKED.memory("clone");
      try (Image clone = Image.create(storage, options(SIZE).build(), base, "base")) {
        clone.createSnapshot("before-prefetch");
        clone.setPrefetch(true, 0);
        awaitPrefetchDone(clone);
        assertThat(clone.baseLocator()).isEqualTo("base");
        clone.write(0, ByteBuffer.wrap(new byte[BASE_SIZE]));
        assertThat(readSnapshot(clone, "before-prefetch", BASE_SIZE)).isEqualTo(content);
        clone.deleteSnapshot("before-prefetch");
      }
      // The next open finishes the job: every block is here and no snapshot reads the base.
      try (Image clone = Image.open(storage.reopen(), true, locator -> base)) {
        awaitPrefetchDone(clone);
        assertThat(clone.baseLocator()).isNull();
        assertThat(CloneTest.read(clone, 0, BASE_SIZE)).isEqualTo(new byte[BASE_SIZE]);
      }
    }
  }

  @Test
  void a_damaged_bitmap_copy_is_reported_at_open() throws Exception {
    try (Image base = readOnlyBase(CHECKED.memory("base"), CloneTest.pattern(BASE_SIZE, 4))) {
      MemoryStorage storage = new MemoryStorage("clone");
      long firstSlot;
      try (Image clone = Image.create(storage, options(SIZE).build(), base, "base")) {
        clone.write(0, ByteBuffer.wrap(new byte[] {9}));
        clone.createSnapshot("s1");
        SnapshotSet.Snapshot s = clone.snapshotSet().find("s1");
        firstSlot = s.baseBlocks().firstSlot();
      }
      MemoryStorage damaged = storage.reopen();
      Header header = Header.read(damaged);
      long offset = header.dataOffsetBytes() + firstSlot * header.chunkSizeBytes();
      ByteBuffer one = ByteBuffer.allocate(1);
      damaged.read(one, offset);
      one.put(0, (byte) (one.get(0) ^ 0x01)).clear();
      damaged.write(one, offset);
      assertThatThrownBy(() -> Image.open(damaged.reopen(), true, locator -> base))
          .isInstanceOf(CorruptImageException.class)
          .hasMessageContaining("bitmap copy of snapshot s1");
    }
  }

  private static void awaitPrefetchDone(Image clone) throws InterruptedException {
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (clone.prefetchStatus().state() != PrefetchStatus.State.DONE
        && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertThat(clone.prefetchStatus().state()).isEqualTo(PrefetchStatus.State.DONE);
  }

  static List<Long> seeds() {
    List<Long> seeds = new ArrayList<>();
    for (long s = 1; s <= SEEDS; s++) {
      seeds.add(s);
    }
    return seeds;
  }

  /** A snapshot under test: its bytes, and the blocks clients wrote or zeroed since it. */
  private record Taken(byte[] bytes, BitSet touched) {}

  /**
   * Writes, zeroes, reads (copy-on-read copies on or off), prefetch copies of single blocks,
   * snapshots, deletes of any snapshot, compaction, clean reopens and crashes after a flush,
   * against a model that keeps every snapshot's bytes. The changes between any two snapshots, or a
   * snapshot and the live clone, cover every byte that differs and no block of the base that only a
   * copy brought into the clone.
   */
  @ParameterizedTest(name = "seed {0}")
  @MethodSource("seeds")
  void snapshots_of_a_clone_match_the_model(long seed) throws Exception {
    SplittableRandom random = new SplittableRandom(seed);
    byte[] content = CloneTest.pattern(BASE_SIZE, (int) seed);
    Arrays.fill(content, 2 * CHUNK, 3 * CHUNK, (byte) 0);
    try (Image base = readOnlyBase(CHECKED.memory("base"), content)) {
      MemoryStorage storage = new MemoryStorage("clone");
      byte[] live = Arrays.copyOf(content, SIZE);
      Map<String, Taken> taken = new LinkedHashMap<>();
      Image clone =
          Image.create(
              storage,
              options(SIZE)
                  .copyOnRead(random.nextBoolean())
                  .detectZeroBlocks(random.nextBoolean())
                  .build(),
              base,
              "base");
      int made = 0;
      try {
        for (int step = 0; step < OPS; step++) {
          String where = "seed " + seed + ": step " + step;
          int op = random.nextInt(100);
          if (op < 25) {
            int offset = random.nextInt(SIZE - 1);
            int length = 1 + random.nextInt(Math.min(SIZE - offset, 2 * CHUNK));
            byte[] data = new byte[length];
            random.nextBytes(data);
            clone.write(offset, ByteBuffer.wrap(data));
            System.arraycopy(data, 0, live, offset, length);
            touch(taken, offset, length);
          } else if (op < 33) {
            int offset = random.nextInt(SIZE - 1);
            int length = 1 + random.nextInt(Math.min(SIZE - offset, 3 * CHUNK));
            clone.zero(offset, length);
            Arrays.fill(live, offset, offset + length, (byte) 0);
            touch(taken, offset, length);
          } else if (op < 48) {
            // A read, which copy-on-read may copy into the clone; then a prefetch copy.
            int offset = random.nextInt(SIZE - 1);
            int length = 1 + random.nextInt(Math.min(SIZE - offset, 3 * CHUNK));
            assertThat(CloneTest.read(clone, offset, length))
                .as(where + ": read")
                .isEqualTo(Arrays.copyOfRange(live, offset, offset + length));
            long block = random.nextInt(BASE_SIZE / BLOCK);
            ByteBuffer fromBase = ByteBuffer.allocate(BLOCK);
            base.read(block * BLOCK, fromBase);
            clone.copyIn(block, fromBase.flip());
          } else if (op < 58 && taken.size() < 6) {
            String name = "s" + (++made);
            clone.createSnapshot(name);
            taken.put(name, new Taken(live.clone(), new BitSet()));
          } else if (op < 65 && !taken.isEmpty()) {
            List<String> names = new ArrayList<>(taken.keySet());
            String name = names.get(random.nextInt(names.size()));
            clone.deleteSnapshot(name);
            // The next older snapshot now stands for the changes the deleted one tracked too.
            taken.remove(name);
          } else if (op < 70) {
            clone.flush();
            clone.compact(1 + random.nextInt(4));
          } else if (op < 78 && !taken.isEmpty()) {
            checkChanges(clone, taken, live, random, where);
          } else if (op < 86) {
            boolean crash = random.nextBoolean();
            if (crash) {
              clone.flush(); // and abandoned unclosed: recovery replays the journal
            } else {
              clone.close();
            }
            clone = Image.open(storage.reopen(), true, locator -> base);
          }
          assertThat(CloneTest.read(clone, 0, SIZE)).as(where + ": live clone").isEqualTo(live);
          for (Map.Entry<String, Taken> s : taken.entrySet()) {
            assertThat(readSnapshot(clone, s.getKey(), SIZE))
                .as(where + ": snapshot " + s.getKey())
                .isEqualTo(s.getValue().bytes());
          }
        }
        assertThat(clone.check(false).problems()).isEmpty();
        if (!taken.isEmpty()) {
          assertThat(clone.baseLocator()).as("a snapshot reads the base").isEqualTo("base");
        }
      } finally {
        clone.close();
      }
      try (Image reopened = Image.open(storage.reopen(), false, locator -> base)) {
        assertThat(reopened.check(false).problems()).isEmpty();
        for (Map.Entry<String, Taken> s : taken.entrySet()) {
          assertThat(readSnapshot(reopened, s.getKey(), SIZE)).isEqualTo(s.getValue().bytes());
        }
      }
    }
  }

  /** Marks the blocks a client's write or zero touched as changed since every snapshot. */
  private static void touch(Map<String, Taken> taken, int offset, int length) {
    for (Taken t : taken.values()) {
      t.touched().set(offset / BLOCK, (offset + length - 1) / BLOCK + 1);
    }
  }

  /**
   * The changes from a random snapshot to a newer one or the live clone cover every differing byte;
   * a block of the base no client touched since the older snapshot is never listed.
   */
  private static void checkChanges(
      Image clone, Map<String, Taken> taken, byte[] live, SplittableRandom random, String where)
      throws Exception {
    List<String> names = new ArrayList<>(taken.keySet());
    int fromIndex = random.nextInt(names.size());
    int toIndex = fromIndex + random.nextInt(names.size() - fromIndex + 1);
    String from = names.get(fromIndex);
    String to = toIndex == names.size() ? null : names.get(toIndex);
    if (to != null && to.equals(from)) {
      to = null;
    }
    byte[] older = taken.get(from).bytes();
    byte[] newer = to == null ? live : taken.get(to).bytes();
    BitSet listed = new BitSet(SIZE);
    for (Extent e : clone.changes(from, to, 0, SIZE, 10_000)) {
      listed.set((int) e.offsetBytes(), (int) (e.offsetBytes() + e.lengthBytes()));
    }
    String what = where + ": changes from " + from + " to " + (to == null ? "the clone" : to);
    for (int i = 0; i < SIZE; i++) {
      if (older[i] != newer[i]) {
        assertThat(listed.get(i)).as(what + ": byte " + i + " differs").isTrue();
      }
    }
    // Which blocks were still in the base when the older snapshot was taken: its bitmap copy,
    // which the snapshot reads above checked against the model step by step.
    SnapshotSet set = clone.snapshotSet();
    long[] inImageThen = set.baseBlockBits(set.find(from).id());
    BitSet touched = taken.get(from).touched();
    for (int b = 0; b < BASE_SIZE / BLOCK; b++) {
      int first = listed.nextSetBit(b * BLOCK);
      boolean listedBlock = first >= 0 && first < (b + 1) * BLOCK;
      if (listedBlock && !touched.get(b) && !Bitmap.isSet(inImageThen, b)) {
        throw new AssertionError(
            what + ": block " + b + " was in the base and only copied since, yet is listed");
      }
    }
  }
}
