package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fvdisk.engine.io.ForwardingStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Random;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Copies from a base (prefetching and copy-on-read) keep a clone as thin as its base, and take no
 * space that the {@link SpaceBudget} or the file system refuses.
 */
class CloneSpaceTest {

  @RegisterExtension static final CheckOnClose CHECKED = new CheckOnClose();

  private static final int CHUNK = 64 * 1024;
  private static final int BLOCK = 4096;
  private static final long BASE_SIZE = 4L << 20;

  /** Data in chunks 3 and 40 (one of them only partly); everything else never written. */
  private static final List<long[]> DATA =
      List.of(new long[] {3L * CHUNK, CHUNK}, new long[] {40L * CHUNK + 5 * BLOCK, 3 * BLOCK});

  private static ImageOptions.Builder options(long sizeBytes) {
    return ImageOptions.builder(sizeBytes)
        .chunkSizeBytes(CHUNK)
        .blockSizeBytes(BLOCK)
        .journalSizeBytes(4096)
        .growthUnitBytes(4L * CHUNK);
  }

  /** A sparse base as the model says, reopened read-only. */
  private static Image sparseBase(CheckOnClose.Checked storage, byte[] model) throws IOException {
    Random random = new Random(7);
    try (Image base = Image.create(storage, options(BASE_SIZE).build())) {
      for (long[] extent : DATA) {
        byte[] data = new byte[(int) extent[1]];
        random.nextBytes(data);
        base.write(extent[0], ByteBuffer.wrap(data));
        System.arraycopy(data, 0, model, (int) extent[0], data.length);
      }
    }
    Image.setReadOnly(storage.reopen(), true);
    return Image.open(storage.reopen(), false);
  }

  private static byte[] read(Image image, long offset, int length) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(length);
    image.read(offset, buf);
    return buf.array();
  }

  private static CheckOnClose.Checked cloneOf(Image base, ImageOptions options) throws IOException {
    CheckOnClose.Checked storage = CHECKED.memory("clone");
    Image.create(storage, options, base, "base").close();
    return storage;
  }

  /** A new clone of {@code base}, opened for writing with {@code budget}. */
  private static Image openClone(Image base, ImageOptions options, SpaceBudget budget)
      throws IOException {
    return Image.open(
        cloneOf(base, options).reopen(), true, name -> base, PrefetchTuning.DEFAULTS, budget);
  }

  private static void await(String what, BooleanSupplier condition, Image clone)
      throws InterruptedException {
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (!condition.getAsBoolean() && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertTrue(condition.getAsBoolean(), what + ": " + clone.prefetchStatus());
  }

  @Test
  void prefetching_a_sparse_base_stores_only_the_chunks_that_hold_data() throws Exception {
    byte[] model = new byte[(int) BASE_SIZE];
    try (Image base = sparseBase(CHECKED.memory("base"), model)) {
      CheckOnClose.Checked cloneStorage =
          cloneOf(base, options(BASE_SIZE).prefetch(true, 0).build());
      try (Image clone = Image.open(cloneStorage.reopen(), true, name -> base)) {
        await(
            "prefetch done",
            () -> clone.prefetchStatus().state() == PrefetchStatus.State.DONE,
            clone);
        assertEquals(base.stats().usedBytes(), clone.stats().usedBytes());
        assertArrayEquals(model, read(clone, 0, model.length));
        assertEquals(
            List.of(
                new Extent(0, 3L * CHUNK, Extent.State.ZERO),
                new Extent(3L * CHUNK, CHUNK, Extent.State.DATA),
                new Extent(4L * CHUNK, 36L * CHUNK, Extent.State.ZERO),
                new Extent(40L * CHUNK, CHUNK, Extent.State.DATA),
                new Extent(41L * CHUNK, BASE_SIZE - 41L * CHUNK, Extent.State.ZERO)),
            clone.extents(0, BASE_SIZE, 100));
      }
      // Standalone now: the zeros read as zeros without the base.
      try (Image clone = Image.open(cloneStorage.reopen(), false)) {
        assertNull(clone.baseLocator());
        assertArrayEquals(model, read(clone, 0, model.length));
      }
    }
  }

  @Test
  void copy_on_read_of_a_zero_region_allocates_nothing() throws Exception {
    byte[] model = new byte[(int) BASE_SIZE];
    try (Image base = sparseBase(CHECKED.memory("base"), model);
        Image clone =
            openClone(base, options(BASE_SIZE).copyOnRead(true).build(), SpaceBudget.UNLIMITED)) {
      assertArrayEquals(new byte[20 * CHUNK], read(clone, 10L * CHUNK, 20 * CHUNK));
      assertEquals(0, clone.stats().usedBytes());
      // The blocks were taken over all the same: no longer read from the base.
      assertEquals(
          List.of(new Extent(10L * CHUNK, 20L * CHUNK, Extent.State.ZERO)),
          clone.extents(10L * CHUNK, 20L * CHUNK, 100));
      assertArrayEquals(
          java.util.Arrays.copyOfRange(model, 3 * CHUNK, 4 * CHUNK),
          read(clone, 3L * CHUNK, CHUNK));
      assertEquals(CHUNK, clone.stats().usedBytes());
      // A later write into a chunk whose zero blocks were taken over leaves them zero.
      clone.write(12L * CHUNK + 100, ByteBuffer.wrap(new byte[] {9}));
      byte[] expected = new byte[CHUNK];
      expected[100] = 9;
      assertArrayEquals(expected, read(clone, 12L * CHUNK, CHUNK));
    }
  }

  @Test
  void a_refused_budget_pauses_prefetching_until_space_returns() throws Exception {
    byte[] model = new byte[(int) BASE_SIZE];
    MutableBudget budget = new MutableBudget();
    budget.refusal = "the quota is used up";
    try (Image base = sparseBase(CHECKED.memory("base"), model);
        Image clone = openClone(base, options(BASE_SIZE).prefetch(true, 0).build(), budget)) {
      await("waiting for space", () -> clone.prefetchStatus().waitingForSpace(), clone);
      PrefetchStatus paused = clone.prefetchStatus();
      assertEquals(PrefetchStatus.State.PAUSED, paused.state());
      assertEquals("waiting for space: the quota is used up", paused.reason());
      // The zero chunks before the first data chunk were taken over; no data chunk was stored.
      assertEquals(0, clone.stats().usedBytes());
      assertEquals(3L * CHUNK, paused.copiedBytes());
      Thread.sleep(100);
      assertEquals(0, clone.stats().usedBytes());

      budget.refusal = null;
      await(
          "prefetch done",
          () -> clone.prefetchStatus().state() == PrefetchStatus.State.DONE,
          clone);
      assertNull(clone.prefetchStatus().reason());
      assertFalse(clone.prefetchStatus().waitingForSpace());
      assertArrayEquals(model, read(clone, 0, model.length));
      assertEquals(2L * CHUNK, clone.stats().usedBytes());
    }
  }

  @Test
  void a_refused_budget_leaves_copy_on_read_blocks_in_the_base() throws Exception {
    byte[] model = new byte[(int) BASE_SIZE];
    MutableBudget budget = new MutableBudget();
    budget.refusal = "no room";
    try (Image base = sparseBase(CHECKED.memory("base"), model);
        Image clone = openClone(base, options(BASE_SIZE).copyOnRead(true).build(), budget)) {
      assertArrayEquals(model, read(clone, 0, model.length));
      assertEquals(0, clone.stats().usedBytes());
      assertEquals(Extent.State.BASE, clone.extents(3L * CHUNK, CHUNK, 10).get(0).state());
      budget.refusal = null;
      assertArrayEquals(model, read(clone, 0, model.length));
      assertEquals(2L * CHUNK, clone.stats().usedBytes());
      assertEquals(Extent.State.DATA, clone.extents(3L * CHUNK, CHUNK, 10).get(0).state());
    }
  }

  @Test
  void a_full_file_system_pauses_prefetching_until_writes_succeed_again() throws Exception {
    byte[] model = new byte[(int) BASE_SIZE];
    try (Image base = sparseBase(CHECKED.memory("base"), model)) {
      CheckOnClose.Checked cloneStorage =
          cloneOf(base, options(BASE_SIZE).prefetch(true, 0).build());
      FullableStorage storage = new FullableStorage(cloneStorage.reopen());
      storage.full = true;
      try (Image clone = Image.open(storage, true, name -> base)) {
        await("waiting for space", () -> clone.prefetchStatus().waitingForSpace(), clone);
        assertEquals("waiting for space: No space left on device", clone.prefetchStatus().reason());
        storage.full = false;
        await(
            "prefetch done",
            () -> clone.prefetchStatus().state() == PrefetchStatus.State.DONE,
            clone);
        assertArrayEquals(model, read(clone, 0, model.length));
      }
    }
  }

  private static final class MutableBudget implements SpaceBudget {
    volatile String refusal;

    @Override
    public String refusal(long bytes) {
      return refusal;
    }
  }

  /** Storage whose writes into the data area fail as on a full file system while it is full. */
  private static final class FullableStorage extends ForwardingStorage {
    volatile boolean full;

    FullableStorage(CheckOnClose.Checked delegate) {
      super(delegate);
    }

    @Override
    public void write(ByteBuffer src, long positionBytes) throws IOException {
      if (full && positionBytes >= 1 << 20) {
        throw new IOException("No space left on device");
      }
      super.write(src, positionBytes);
    }
  }
}
