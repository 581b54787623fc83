package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class CloneTest {

  @RegisterExtension static final CheckOnClose CHECKED = new CheckOnClose();

  private static final int CHUNK = 64 * 1024;
  private static final int BLOCK = 4096;
  private static final long BASE_SIZE = 1 << 20;

  private static ImageOptions.Builder options(long sizeBytes) {
    return ImageOptions.builder(sizeBytes)
        .chunkSizeBytes(CHUNK)
        .blockSizeBytes(BLOCK)
        .journalSizeBytes(4096)
        .growthUnitBytes(4L * CHUNK);
  }

  static byte[] pattern(int length, int seed) {
    byte[] b = new byte[length];
    new Random(seed).nextBytes(b);
    return b;
  }

  static byte[] read(Image image, long offset, int length) throws Exception {
    ByteBuffer buf = ByteBuffer.allocate(length);
    image.read(offset, buf);
    return buf.array();
  }

  /** A base filled with random bytes except an all-zero stretch, reopened read-only. */
  private static Image readOnlyBase(CheckOnClose.Checked storage, byte[] content) throws Exception {
    try (Image base = Image.create(storage, options(content.length).build())) {
      base.write(0, ByteBuffer.wrap(content));
    }
    Image.setReadOnly(storage.reopen(), true);
    return Image.open(storage.reopen(), false);
  }

  private static byte[] baseContent() {
    byte[] content = pattern((int) BASE_SIZE, 1);
    Arrays.fill(content, 3 * BLOCK, 7 * BLOCK, (byte) 0);
    return content;
  }

  @Test
  void clone_reads_base_and_keeps_writes_to_itself() throws Exception {
    byte[] content = baseContent();
    CheckOnClose.Checked baseStorage = CHECKED.memory("base");
    CheckOnClose.Checked cloneStorage = CHECKED.memory("clone");
    byte[] model = Arrays.copyOf(content, (int) BASE_SIZE * 2);
    try (Image base = readOnlyBase(baseStorage, content)) {
      try (Image clone = Image.create(cloneStorage, options(BASE_SIZE * 2).build(), base, "base")) {
        assertArrayEquals(model, read(clone, 0, model.length));
        // Partial blocks at both ends, a write past the base's end, and one across it.
        byte[] a = pattern(5000, 2);
        clone.write(100, ByteBuffer.wrap(a));
        System.arraycopy(a, 0, model, 100, a.length);
        byte[] b = pattern(9000, 3);
        clone.write(BASE_SIZE - 4000, ByteBuffer.wrap(b));
        System.arraycopy(b, 0, model, (int) BASE_SIZE - 4000, b.length);
        assertArrayEquals(model, read(clone, 0, model.length));
        clone.flush();
      }
      assertArrayEquals(content, read(base, 0, content.length));
      try (Image clone = Image.open(cloneStorage.reopen(), true, name -> base)) {
        assertEquals("base", clone.baseLocator());
        assertArrayEquals(model, read(clone, 0, model.length));
      }
    }
  }

  @Test
  void flushed_clone_writes_survive_a_crash_and_unflushed_ones_leave_old_or_new() throws Exception {
    byte[] content = baseContent();
    CheckOnClose.Checked baseStorage = CHECKED.memory("base");
    CheckOnClose.Checked cloneStorage = CHECKED.memory("clone");
    try (Image base = readOnlyBase(baseStorage, content)) {
      Image clone = Image.create(cloneStorage, options(BASE_SIZE).build(), base, "base");
      byte[] a = pattern(3000, 4);
      clone.write(BLOCK + 10, ByteBuffer.wrap(a));
      clone.flush();
      // Abandoned without close, as after a crash; memory storage keeps every completed write.
      try (Image reopened = Image.open(cloneStorage.reopen(), false, name -> base)) {
        byte[] expected = Arrays.copyOf(content, (int) BASE_SIZE);
        System.arraycopy(a, 0, expected, BLOCK + 10, a.length);
        assertArrayEquals(expected, read(reopened, 0, expected.length));
        assertTrue(reopened.stats().replayedJournalRecords() > 0);
      }
    }
  }

  @Test
  void zeroing_a_clone_range_hides_the_base_and_the_map_says_where_bytes_come_from()
      throws Exception {
    byte[] content = baseContent();
    try (Image base = readOnlyBase(CHECKED.memory("base"), content);
        Image clone =
            Image.create(
                CHECKED.memory("clone"), options(BASE_SIZE + CHUNK).build(), base, "base")) {
      clone.zero(BLOCK + 100, 2 * BLOCK);
      byte[] expected = Arrays.copyOf(content, (int) BASE_SIZE + CHUNK);
      Arrays.fill(expected, BLOCK + 100, 3 * BLOCK + 100, (byte) 0);
      assertArrayEquals(expected, read(clone, 0, expected.length));
      assertEquals(
          java.util.List.of(
              new Extent(0, BLOCK, Extent.State.BASE),
              new Extent(BLOCK, 3 * BLOCK, Extent.State.DATA),
              new Extent(4 * BLOCK, BASE_SIZE - 4 * BLOCK, Extent.State.BASE),
              new Extent(BASE_SIZE, CHUNK, Extent.State.ZERO)),
          clone.extents(0, BASE_SIZE + CHUNK, 1000));
      assertEquals(2, clone.extents(0, BASE_SIZE + CHUNK, 2).size());
      // Only chunk 0 of the 17 is allocated.
      assertEquals(16L * CHUNK, clone.bytesToAllocate(0, BASE_SIZE + CHUNK));
      assertEquals(0, clone.bytesToAllocate(10, CHUNK - 10));
    }
  }

  @Test
  void clone_of_a_clone_reads_through_the_chain() throws Exception {
    byte[] content = baseContent();
    CheckOnClose.Checked s0 = CHECKED.memory("base");
    CheckOnClose.Checked s1 = CHECKED.memory("mid");
    CheckOnClose.Checked s2 = CHECKED.memory("top");
    try (Image base = readOnlyBase(s0, content)) {
      byte[] mid = pattern(BLOCK * 3, 5);
      try (Image m = Image.create(s1, options(BASE_SIZE).build(), base, "base")) {
        m.write(BLOCK * 10 + 7, ByteBuffer.wrap(mid));
      }
      Image.setReadOnly(s1.reopen(), true);
      try (Image m = Image.open(s1.reopen(), false, name -> base)) {
        byte[] top = pattern(100, 6);
        try (Image t = Image.create(s2, options(BASE_SIZE).build(), m, "mid")) {
          t.write(BLOCK * 11, ByteBuffer.wrap(top));
          byte[] expected = content.clone();
          System.arraycopy(mid, 0, expected, BLOCK * 10 + 7, mid.length);
          System.arraycopy(top, 0, expected, BLOCK * 11, top.length);
          assertArrayEquals(expected, read(t, 0, expected.length));
        }
      }
    }
  }

  @Test
  void clone_refuses_a_changed_or_foreign_base() throws Exception {
    byte[] content = baseContent();
    CheckOnClose.Checked baseStorage = CHECKED.memory("base");
    CheckOnClose.Checked cloneStorage = CHECKED.memory("clone");
    try (Image base = readOnlyBase(baseStorage, content)) {
      Image.create(cloneStorage, options(BASE_SIZE).build(), base, "base").close();
    }
    // A read-only base cannot be opened for writing; clearing the mark changes its header.
    assertThrows(IllegalStateException.class, () -> Image.open(baseStorage.reopen(), true));
    Image.setReadOnly(baseStorage.reopen(), false);
    Image.setReadOnly(baseStorage.reopen(), true);
    try (Image changed = Image.open(baseStorage.reopen(), false)) {
      BaseImageException e =
          assertThrows(
              BaseImageException.class,
              () -> Image.open(cloneStorage.reopen(), false, name -> changed));
      assertTrue(e.getMessage().contains("has changed"), e.getMessage());
    }
    CheckOnClose.Checked otherStorage = CHECKED.memory("other");
    try (Image other = readOnlyBase(otherStorage, content)) {
      BaseImageException e =
          assertThrows(
              BaseImageException.class,
              () -> Image.open(cloneStorage.reopen(), false, name -> other));
      assertTrue(e.getMessage().contains("was made from image"), e.getMessage());
    }
    assertThrows(BaseImageException.class, () -> Image.open(cloneStorage.reopen(), false));
  }

  @Test
  void base_must_be_marked_read_only() throws Exception {
    CheckOnClose.Checked baseStorage = CHECKED.memory("base");
    try (Image writableBase = Image.create(baseStorage, options(BASE_SIZE).build())) {
      assertThrows(
          IllegalArgumentException.class,
          () ->
              Image.create(CHECKED.memory("c"), options(BASE_SIZE).build(), writableBase, "base"));
    }
  }

  @Test
  void zero_block_detection_marks_zero_blocks_present_and_they_read_zero() throws Exception {
    byte[] content = baseContent();
    CheckOnClose.Checked cloneStorage = CHECKED.memory("clone");
    try (Image base = readOnlyBase(CHECKED.memory("base"), content)) {
      try (Image clone =
          Image.create(
              cloneStorage, options(BASE_SIZE).detectZeroBlocks(true).build(), base, "base")) {
        assertEquals(4 * BLOCK, clone.prefetchStatus().copiedBytes());
        assertArrayEquals(content, read(clone, 0, content.length));
        // A partial write into a zero-marked block needs no base read and keeps the zeros.
        clone.write(4 * BLOCK + 1, ByteBuffer.wrap(new byte[] {9}));
        byte[] expected = new byte[BLOCK];
        expected[1] = 9;
        assertArrayEquals(expected, read(clone, 4 * BLOCK, BLOCK));
        assertEquals(0, clone.stats().usedBytes() % CHUNK);
      }
    }
  }

  @Test
  void copy_on_read_stores_whole_blocks_read_from_the_base() throws Exception {
    byte[] content = baseContent();
    CheckOnClose.Checked cloneStorage = CHECKED.memory("clone");
    try (Image base = readOnlyBase(CHECKED.memory("base"), content)) {
      try (Image clone =
          Image.create(cloneStorage, options(BASE_SIZE).copyOnRead(true).build(), base, "base")) {
        assertEquals(0, clone.stats().usedBytes());
        // 10 bytes into block 0 up to 3 bytes into block 3: only blocks 1 and 2 are whole.
        assertArrayEquals(
            Arrays.copyOfRange(content, 10, 3 * BLOCK + 3), read(clone, 10, 3 * BLOCK - 7));
        assertEquals(2L * BLOCK, clone.prefetchStatus().copiedBytes());
        assertEquals(CHUNK, clone.stats().usedBytes());
      }
      try (Image clone = Image.open(cloneStorage.reopen(), false, name -> base)) {
        assertEquals(2L * BLOCK, clone.prefetchStatus().copiedBytes());
        assertArrayEquals(content, read(clone, 0, content.length));
      }
    }
  }

  @Test
  void a_second_copy_on_read_of_the_same_range_does_not_touch_the_base() throws Exception {
    byte[] content = baseContent();
    CheckOnClose.Checked baseStorage = CHECKED.memory("base");
    readOnlyBase(baseStorage, content).close();
    SlowCountingStorage counted = new SlowCountingStorage(baseStorage.reopen());
    try (Image base = Image.open(counted, false);
        Image clone =
            Image.create(
                CHECKED.memory("clone"),
                options(BASE_SIZE).copyOnRead(true).build(),
                base,
                "base")) {
      counted.resetCount();
      assertArrayEquals(
          Arrays.copyOfRange(content, 8 * BLOCK, 24 * BLOCK), read(clone, 8 * BLOCK, 16 * BLOCK));
      assertEquals(16L * BLOCK, counted.readBytes());
      counted.resetCount();
      assertArrayEquals(
          Arrays.copyOfRange(content, 8 * BLOCK, 24 * BLOCK), read(clone, 8 * BLOCK, 16 * BLOCK));
      assertEquals(0, counted.readBytes());
    }
  }

  @Test
  void prefetch_resumes_after_a_restart_without_copying_finished_blocks_again() throws Exception {
    byte[] content = baseContent();
    CheckOnClose.Checked baseStorage = CHECKED.memory("base");
    readOnlyBase(baseStorage, content).close();
    SlowCountingStorage counted = new SlowCountingStorage(baseStorage.reopen());
    CheckOnClose.Checked cloneStorage = CHECKED.memory("clone");
    PrefetchTuning oneBlockAtATime = new PrefetchTuning(BLOCK, 100, 80, 0, 1, 0);
    try (Image base = Image.open(counted, false)) {
      long copiedBeforeRestart;
      // Slow base reads, so that the close below lands mid-way.
      counted.setReadDelayMillis(2);
      Image.create(cloneStorage, options(BASE_SIZE).build(), base, "base").close();
      try (Image clone = Image.open(cloneStorage.reopen(), true, name -> base, oneBlockAtATime)) {
        clone.setPrefetch(true, 0);
        while (clone.prefetchStatus().copiedBytes() < 40L * BLOCK) {
          Thread.sleep(1);
        }
      }
      counted.setReadDelayMillis(0);
      try (Image clone = Image.open(cloneStorage.reopen(), false, name -> base)) {
        copiedBeforeRestart = clone.prefetchStatus().copiedBytes();
        assertTrue(copiedBeforeRestart >= 40L * BLOCK && copiedBeforeRestart < BASE_SIZE);
      }
      counted.resetCount();
      try (Image clone = Image.open(cloneStorage.reopen(), true, name -> base, oneBlockAtATime)) {
        awaitPrefetchDone(clone);
      }
      // Only the blocks still missing were read from the base.
      assertEquals(BASE_SIZE - copiedBeforeRestart, counted.readBytes());
    }
    try (Image clone = Image.open(cloneStorage.reopen(), false)) {
      assertArrayEquals(content, read(clone, 0, content.length));
    }
  }

  @Test
  void prefetch_pauses_when_the_base_is_slow() throws Exception {
    byte[] content = baseContent();
    CheckOnClose.Checked baseStorage = CHECKED.memory("base");
    readOnlyBase(baseStorage, content).close();
    SlowCountingStorage slow = new SlowCountingStorage(baseStorage.reopen());
    slow.setReadDelayMillis(5);
    // 4 KiB per 5 ms is under 1 MB/s, far below the 100 MB/s minimum; pauses of up to 20 ms.
    PrefetchTuning tuning = new PrefetchTuning(BLOCK, 20, 80, 100_000_000, 20, 0);
    try (Image base = Image.open(slow, false);
        Image clone =
            Image.open(
                createClone(base, options(BASE_SIZE).prefetch(true, 0).build()),
                true,
                name -> base,
                tuning)) {
      long deadline = System.nanoTime() + 30_000_000_000L;
      while (clone.prefetchStatus().throttlePauses() < 3 && System.nanoTime() < deadline) {
        Thread.sleep(5);
      }
      assertTrue(clone.prefetchStatus().throttlePauses() >= 3, clone.prefetchStatus().toString());
    }
  }

  private static CheckOnClose.Checked createClone(Image base, ImageOptions options)
      throws Exception {
    CheckOnClose.Checked storage = CHECKED.memory("clone");
    Image.create(storage, options, base, "base").close();
    return storage.reopen();
  }

  private static void awaitPrefetchDone(Image clone) throws InterruptedException {
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (clone.prefetchStatus().state() != PrefetchStatus.State.DONE
        && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertEquals(PrefetchStatus.State.DONE, clone.prefetchStatus().state());
  }

  @Test
  void prefetch_copies_everything_and_then_the_clone_stands_alone() throws Exception {
    byte[] content = baseContent();
    CheckOnClose.Checked cloneStorage = CHECKED.memory("clone");
    byte[] written = pattern(BLOCK / 2, 8);
    try (Image base = readOnlyBase(CHECKED.memory("base"), content)) {
      try (Image clone = Image.create(cloneStorage, options(BASE_SIZE).build(), base, "base")) {
        clone.write(5 * BLOCK + 100, ByteBuffer.wrap(written));
        clone.setPrefetch(true, 0);
        awaitPrefetchDone(clone);
        assertNull(clone.baseLocator());
      }
    }
    // No base needed any more.
    try (Image clone = Image.open(cloneStorage.reopen(), false)) {
      byte[] expected = content.clone();
      System.arraycopy(written, 0, expected, 5 * BLOCK + 100, written.length);
      assertArrayEquals(expected, read(clone, 0, expected.length));
      assertEquals(PrefetchStatus.State.DONE, clone.prefetchStatus().state());
    }
  }
}
