package dev.fvdisk.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The snapshot model against the plainest one possible: a full copy of every chunk's content taken
 * at each snapshot. Random writes, whole-chunk zeroes, snapshots and deletes of any snapshot, and
 * after each step every snapshot must read what its copy says, every slot must have exactly one
 * holder (the live table or one delta), and a freed slot none; the directory must read back as the
 * same set.
 */
class SnapshotSetTest {

  private static final int CHUNK = 4096;
  private static final int CHUNKS = 48;

  @Test
  void snapshots_read_what_the_image_held_when_they_were_taken() throws Exception {
    for (int seed = 0; seed < 40; seed++) {
      new Run(seed).go(600);
    }
  }

  @Test
  void the_directory_refuses_damage() throws Exception {
    SnapshotSet set = new SnapshotSet(CHUNK);
    set.create("a", 1, CHUNKS * CHUNK);
    set.preserve(1, 3, 7);
    set.preserve(1, 5, -1);
    ByteBuffer good = set.encode();
    assertThat(SnapshotSet.decode(good, CHUNK, "test").resolve(1, 3, 99)).isEqualTo(7);
    for (int i = 0; i < good.limit(); i += 5) {
      ByteBuffer bad = ByteBuffer.allocate(good.limit()).put(good.duplicate()).flip();
      bad.put(i, (byte) (bad.get(i) ^ 0x40));
      assertThatThrownBy(() -> SnapshotSet.decode(bad, CHUNK, "test"))
          .as("byte %d flipped", i)
          .isInstanceOf(CorruptImageException.class);
    }
    assertThatThrownBy(
            () -> SnapshotSet.decode(good.duplicate().limit(good.limit() - 1), CHUNK, "test"))
        .isInstanceOf(CorruptImageException.class);
  }

  @Test
  void names_are_refused_when_empty_too_long_or_taken() {
    SnapshotSet set = new SnapshotSet(CHUNK);
    assertThat(set.refusal("")).contains("1 to 64 bytes");
    assertThat(set.refusal("x".repeat(65))).contains("1 to 64 bytes");
    set.create("s1", 0, CHUNK);
    assertThat(set.refusal("s1")).contains("already");
    assertThat(set.refusal("s2")).isNull();
  }

  /** One random history, checked against full copies. */
  private static final class Run {
    private final Random random;
    private final SnapshotSet set = new SnapshotSet(CHUNK);
    private final long[] live = new long[CHUNKS];
    private final Map<Long, Integer> contentOfSlot = new HashMap<>();
    private final Map<Integer, int[]> copies = new HashMap<>();
    private final Set<Long> freed = new HashSet<>();
    private long nextSlot;
    private int nextContent = 1;
    private int snapshotsTaken;
    private int size = CHUNKS / 2;

    Run(int seed) {
      random = new Random(seed);
      Arrays.fill(live, -1);
    }

    void go(int steps) throws Exception {
      for (int step = 0; step < steps; step++) {
        int op = random.nextInt(100);
        int chunk = random.nextInt(size);
        if (op < 3) {
          // The image grows: later snapshots are larger than earlier ones.
          size = Math.min(CHUNKS, size + 1 + random.nextInt(4));
        } else if (op < 55) {
          write(chunk);
        } else if (op < 70) {
          zero(chunk);
        } else if (op < 82) {
          if (set.list().size() < 12) {
            snapshot();
          }
        } else if (op < 92) {
          if (!set.isEmpty()) {
            delete(set.list().get(random.nextInt(set.list().size())).id());
          }
        } else {
          SnapshotSet copy = SnapshotSet.decode(set.encode(), CHUNK, "test");
          assertThat(copy.list()).isEqualTo(set.list());
          for (SnapshotSet.Snapshot s : set.list()) {
            for (int c = 0; c < s.sizeBytes() / CHUNK; c++) {
              assertThat(copy.resolve(s.id(), c, live[c]))
                  .isEqualTo(set.resolve(s.id(), c, live[c]));
            }
          }
        }
        check(step);
      }
    }

    private void write(int chunk) {
      if (live[chunk] < 0 || set.needsPreserve(chunk)) {
        if (set.needsPreserve(chunk)) {
          set.preserve(set.newest().id(), chunk, live[chunk]);
        }
        live[chunk] = nextSlot++;
      }
      contentOfSlot.put(live[chunk], nextContent++);
    }

    private void zero(int chunk) {
      if (live[chunk] < 0) {
        return;
      }
      if (set.needsPreserve(chunk)) {
        set.preserve(set.newest().id(), chunk, live[chunk]);
      } else {
        freed.add(live[chunk]);
      }
      live[chunk] = -1;
    }

    private void snapshot() {
      String name = "s" + snapshotsTaken++;
      assertThat(set.refusal(name)).isNull();
      SnapshotSet.Snapshot s = set.create(name, snapshotsTaken, (long) size * CHUNK);
      int[] copy = new int[size];
      for (int c = 0; c < size; c++) {
        copy[c] = content(live[c]);
      }
      copies.put(s.id(), copy);
    }

    private void delete(int id) {
      long exclusive = set.exclusiveBytes(id);
      long[] released = set.delete(id);
      assertThat((long) released.length * CHUNK).isEqualTo(exclusive);
      for (long slot : released) {
        assertThat(freed.add(slot)).as("slot %d freed twice", slot).isTrue();
      }
      copies.remove(id);
    }

    private int content(long slot) {
      return slot < 0 ? 0 : contentOfSlot.getOrDefault(slot, 0);
    }

    private void check(int step) {
      for (SnapshotSet.Snapshot s : set.list()) {
        int[] copy = copies.get(s.id());
        for (int c = 0; c < copy.length; c++) {
          long slot = set.resolve(s.id(), c, live[c]);
          assertThat(freed)
              .as("step %d: snapshot %s chunk %d reads a freed slot", step, s, c)
              .doesNotContain(slot);
          assertThat(content(slot))
              .as("step %d: snapshot %s chunk %d", step, s.name(), c)
              .isEqualTo(copy[c]);
        }
      }
      List<Long> holders = new ArrayList<>();
      for (long slot : live) {
        if (slot >= 0) {
          holders.add(slot);
        }
      }
      set.forEachHeldSlot(holders::add);
      Set<Long> held = new HashSet<>(holders);
      assertThat(held).as("step %d: a slot with two holders", step).hasSize(holders.size());
      for (long slot = 0; slot < nextSlot; slot++) {
        assertThat(held.contains(slot) ^ freed.contains(slot))
            .as(
                "step %d: slot %d is held %s, freed %s",
                step, slot, held.contains(slot), freed.contains(slot))
            .isTrue();
      }
    }
  }
}
