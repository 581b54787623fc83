package dev.fvdisk.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fvdisk.engine.io.MemoryStorage;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Clones whose base is a snapshot of a writable image: they read what the snapshot holds while the
 * image goes on changing, record which snapshot they were made from, and refuse at open any other
 * content in its place. The random case runs writes, zeroes, snapshots, deletes of snapshots no
 * clone reads, compaction, clones of random snapshots with writes of their own, clean reopens of
 * the whole family and crashes after a flush, against a model that keeps every snapshot's bytes.
 */
class SnapshotCloneTest {

  private static final int CHUNK = 16 << 10;
  private static final int SIZE = 32 * CHUNK;
  private static final int SEEDS = Integer.getInteger("fvdisk.snapshot-clone.seeds", 30);
  private static final int OPS = Integer.getInteger("fvdisk.snapshot-clone.ops", 120);

  @Test
  void a_clone_of_a_snapshot_reads_the_snapshot_while_the_image_changes() throws Exception {
    MemoryStorage goldenStorage = new MemoryStorage("golden");
    MemoryStorage cloneStorage = new MemoryStorage("clone");
    byte[] first = CloneTest.pattern(SIZE, 1);
    byte[] second = CloneTest.pattern(SIZE, 2);
    try (Image golden = Image.create(goldenStorage, options(SIZE).build())) {
      golden.write(0, ByteBuffer.wrap(first));
      golden.createSnapshot("s1");
      golden.write(0, ByteBuffer.wrap(second));
      BaseImage s1 = golden.snapshotBase("s1");
      assertThat(s1.isReadOnly()).isTrue();
      assertThat(s1.id()).isEqualTo(golden.id());
      assertThat(s1.snapshotId()).isEqualTo(golden.findSnapshot("s1").id());
      assertThat(s1.description()).endsWith("@s1");
      assertThatThrownBy(() -> golden.snapshotBase("nope"))
          .isInstanceOf(IllegalArgumentException.class);

      try (Image clone =
          Image.create(cloneStorage, options(SIZE + CHUNK).build(), s1, "golden@s1")) {
        assertThat(clone.baseLocator()).isEqualTo("golden@s1");
        assertThat(CloneTest.read(clone, 0, SIZE)).isEqualTo(first);
        clone.write(100, ByteBuffer.wrap(new byte[] {7, 7, 7}));
        golden.write(0, ByteBuffer.wrap(first)); // the image changes again; the clone does not
        byte[] expected = Arrays.copyOf(first, SIZE + CHUNK);
        expected[100] = expected[101] = expected[102] = 7;
        assertThat(CloneTest.read(clone, 0, SIZE + CHUNK)).isEqualTo(expected);
        assertThat(clone.check(false).status()).isEqualTo(CheckReport.Status.OK);
      }
      // At open the clone accepts only the very snapshot it was made from.
      Image.open(cloneStorage.reopen(), true, locator -> s1).close();
      golden.createSnapshot("s2");
      BaseImage s2 = golden.snapshotBase("s2");
      assertThatThrownBy(() -> Image.open(cloneStorage.reopen(), true, locator -> s2))
          .isInstanceOf(BaseImageException.class)
          .hasMessageContaining("snapshot " + s2.snapshotId())
          .hasMessageContaining("made from snapshot " + s1.snapshotId());
      assertThatThrownBy(() -> Image.open(cloneStorage.reopen(), true, locator -> golden))
          .isInstanceOf(BaseImageException.class)
          .hasMessageContaining("is the image itself");
      // A base view of a deleted snapshot reads nothing.
      golden.deleteSnapshot("s1");
      assertThatThrownBy(() -> s1.read(0, ByteBuffer.allocate(512)))
          .isInstanceOf(BaseImageException.class)
          .hasMessageContaining("was deleted");
    }
  }

  @Test
  void a_clone_of_the_image_itself_is_refused_a_snapshot_of_it_at_open() throws Exception {
    MemoryStorage goldenStorage = new MemoryStorage("golden");
    MemoryStorage cloneStorage = new MemoryStorage("clone");
    try (Image golden = Image.create(goldenStorage, options(SIZE).build())) {
      golden.write(0, ByteBuffer.wrap(CloneTest.pattern(SIZE, 3)));
      golden.createSnapshot("s1");
    }
    Image.setReadOnly(goldenStorage.reopen(), true);
    try (Image golden = Image.open(goldenStorage.reopen(), false)) {
      Image.create(cloneStorage, options(SIZE).build(), golden, "golden").close();
      BaseImage s1 = golden.snapshotBase("s1");
      assertThatThrownBy(() -> Image.open(cloneStorage.reopen(), true, locator -> s1))
          .isInstanceOf(BaseImageException.class)
          .hasMessageContaining("made from the image itself");
    }
  }

  @Test
  void prefetch_makes_a_clone_of_a_snapshot_stand_alone() throws Exception {
    MemoryStorage goldenStorage = new MemoryStorage("golden");
    byte[] first = CloneTest.pattern(SIZE, 4);
    try (Image golden = Image.create(goldenStorage, options(SIZE).build())) {
      golden.write(0, ByteBuffer.wrap(first));
      golden.zero(3L * CHUNK, 2L * CHUNK);
      Arrays.fill(first, 3 * CHUNK, 5 * CHUNK, (byte) 0);
      golden.createSnapshot("s1");
      golden.write(0, ByteBuffer.wrap(CloneTest.pattern(SIZE, 5)));
      MemoryStorage cloneStorage = new MemoryStorage("clone");
      try (Image clone =
          Image.create(
              cloneStorage,
              options(SIZE).detectZeroBlocks(true).build(),
              golden.snapshotBase("s1"),
              "golden@s1")) {
        clone.setPrefetch(true, 0);
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (clone.prefetchStatus().state() != PrefetchStatus.State.DONE
            && System.nanoTime() < deadline) {
          Thread.sleep(5);
        }
        assertThat(clone.prefetchStatus().state()).isEqualTo(PrefetchStatus.State.DONE);
        assertThat(clone.baseLocator()).isNull();
      }
      golden.deleteSnapshot("s1");
      // Standalone: it opens without any base and holds the snapshot's bytes.
      try (Image clone = Image.open(cloneStorage.reopen(), true)) {
        assertThat(CloneTest.read(clone, 0, SIZE)).isEqualTo(first);
      }
    }
  }

  static List<Long> seeds() {
    List<Long> seeds = new ArrayList<>();
    for (long s = 1; s <= SEEDS; s++) {
      seeds.add(s);
    }
    return seeds;
  }

  /** A clone under test, with the snapshot it reads and the bytes it should hold. */
  private static final class CloneUnderTest {
    final String snapshot;
    final MemoryStorage storage;
    final byte[] model;
    Image image;

    CloneUnderTest(String snapshot, MemoryStorage storage, byte[] model, Image image) {
      this.snapshot = snapshot;
      this.storage = storage;
      this.model = model;
      this.image = image;
    }
  }

  @ParameterizedTest(name = "seed {0}")
  @MethodSource("seeds")
  void clones_of_snapshots_match_the_model(long seed) throws Exception {
    SplittableRandom random = new SplittableRandom(seed);
    MemoryStorage goldenStorage = new MemoryStorage("golden");
    byte[] live = new byte[SIZE];
    Map<String, byte[]> taken = new LinkedHashMap<>();
    Map<String, CloneUnderTest> clones = new HashMap<>();
    Image golden = Image.create(goldenStorage, options(SIZE).build());
    int made = 0;
    try {
      for (int step = 0; step < OPS; step++) {
        String where = "seed " + seed + ": step " + step;
        int op = random.nextInt(100);
        if (op < 30) {
          int offset = random.nextInt(SIZE - 1);
          int length = 1 + random.nextInt(Math.min(SIZE - offset, 3 * CHUNK));
          byte[] data = new byte[length];
          random.nextBytes(data);
          golden.write(offset, ByteBuffer.wrap(data));
          System.arraycopy(data, 0, live, offset, length);
        } else if (op < 36) {
          int offset = random.nextInt(SIZE - 1);
          int length = 1 + random.nextInt(Math.min(SIZE - offset, 3 * CHUNK));
          golden.zero(offset, length);
          Arrays.fill(live, offset, offset + length, (byte) 0);
        } else if (op < 46 && taken.size() < 6) {
          String name = "s" + (++made);
          golden.createSnapshot(name);
          taken.put(name, live.clone());
        } else if (op < 52 && !taken.isEmpty()) {
          // Any snapshot no clone reads; the service refuses the others.
          List<String> free = new ArrayList<>(taken.keySet());
          clones.values().forEach(c -> free.remove(c.snapshot));
          if (!free.isEmpty()) {
            String name = free.get(random.nextInt(free.size()));
            golden.deleteSnapshot(name);
            taken.remove(name);
          }
        } else if (op < 58) {
          golden.flush();
          golden.compact(1 + random.nextInt(4));
        } else if (op < 66 && !taken.isEmpty() && clones.size() < 4) {
          List<String> names = new ArrayList<>(taken.keySet());
          String snapshot = names.get(random.nextInt(names.size()));
          String name = "c" + step;
          MemoryStorage storage = new MemoryStorage(name);
          Image clone =
              Image.create(
                  storage,
                  options(SIZE + CHUNK)
                      .copyOnRead(random.nextBoolean())
                      .detectZeroBlocks(random.nextBoolean())
                      .build(),
                  golden.snapshotBase(snapshot),
                  "golden@" + snapshot);
          clones.put(
              name,
              new CloneUnderTest(
                  snapshot, storage, Arrays.copyOf(taken.get(snapshot), SIZE + CHUNK), clone));
        } else if (op < 80 && !clones.isEmpty()) {
          CloneUnderTest c = pick(clones, random);
          int offset = random.nextInt(SIZE + CHUNK - 1);
          int length = 1 + random.nextInt(Math.min(SIZE + CHUNK - offset, 2 * CHUNK));
          if (random.nextInt(4) == 0) {
            c.image.zero(offset, length);
            Arrays.fill(c.model, offset, offset + length, (byte) 0);
          } else {
            byte[] data = new byte[length];
            random.nextBytes(data);
            c.image.write(offset, ByteBuffer.wrap(data));
            System.arraycopy(data, 0, c.model, offset, length);
          }
        } else if (op < 84 && !clones.isEmpty()) {
          // A clone goes away; its snapshot may be deleted from then on.
          String name = pick(clones.keySet(), random);
          clones.remove(name).image.close();
        } else if (op < 92) {
          // A clean reopen of the whole family (clones first, then the image they read), or a
          // crash after a flush of every image: they are abandoned unclosed, and recovery replays
          // their journals.
          boolean crash = random.nextBoolean();
          for (CloneUnderTest c : clones.values()) {
            if (crash) {
              c.image.flush();
            } else {
              c.image.close();
            }
          }
          if (crash) {
            golden.flush();
          } else {
            golden.close();
          }
          golden = Image.open(goldenStorage.reopen(), true);
          Image reopened = golden;
          for (CloneUnderTest c : clones.values()) {
            c.image =
                Image.open(
                    c.storage.reopen(),
                    true,
                    locator -> {
                      assertThat(locator).isEqualTo("golden@" + c.snapshot);
                      return reopened.snapshotBase(c.snapshot);
                    });
          }
        }
        // Every view reads as the model says.
        assertThat(CloneTest.read(golden, 0, SIZE)).as(where + ": live image").isEqualTo(live);
        for (Map.Entry<String, byte[]> s : taken.entrySet()) {
          byte[] bytes = new byte[SIZE];
          golden.readSnapshot(s.getKey(), 0, ByteBuffer.wrap(bytes));
          assertThat(bytes).as(where + ": snapshot " + s.getKey()).isEqualTo(s.getValue());
        }
        for (Map.Entry<String, CloneUnderTest> c : clones.entrySet()) {
          assertThat(CloneTest.read(c.getValue().image, 0, SIZE + CHUNK))
              .as(where + ": clone " + c.getKey() + " of " + c.getValue().snapshot)
              .isEqualTo(c.getValue().model);
        }
      }
      // Leaks are harmless here: slots freed while an image is open count as leaked after a close.
      for (CloneUnderTest c : clones.values()) {
        assertThat(c.image.check(false).problems()).isEmpty();
      }
      assertThat(golden.check(false).problems()).isEmpty();
    } finally {
      for (CloneUnderTest c : clones.values()) {
        c.image.close();
      }
      golden.close();
    }
  }

  private static <T> T pick(Map<String, T> map, SplittableRandom random) {
    return map.get(pick(map.keySet(), random));
  }

  private static String pick(java.util.Set<String> keys, SplittableRandom random) {
    List<String> sorted = new ArrayList<>(keys);
    sorted.sort(null);
    return sorted.get(random.nextInt(sorted.size()));
  }

  private static ImageOptions.Builder options(long sizeBytes) {
    return ImageOptions.builder(sizeBytes)
        .chunkSizeBytes(CHUNK)
        .blockSizeBytes(4096)
        .journalSizeBytes(4096);
  }
}
