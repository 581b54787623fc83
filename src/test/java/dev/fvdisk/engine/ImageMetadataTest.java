package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The read-only flag, the change tag, extents, zeroing and the space estimate. */
class ImageMetadataTest {

  @RegisterExtension static final CheckOnClose CHECKED = new CheckOnClose();

  private static final int CHUNK = 64 * 1024;

  private static ImageOptions small() {
    return ImageOptions.builder(1 << 20)
        .chunkSizeBytes(CHUNK)
        .journalSizeBytes(4096)
        .growthUnitBytes(4L * CHUNK)
        .build();
  }

  private static ByteBuffer filled(int length, int value) {
    byte[] b = new byte[length];
    java.util.Arrays.fill(b, (byte) value);
    return ByteBuffer.wrap(b);
  }

  @Test
  void read_only_mark_allows_only_read_only_opens_and_survives_reopen() throws Exception {
    CheckOnClose.Checked storage = CHECKED.memory("m");
    try (Image image = Image.create(storage, small())) {
      assertFalse(image.isReadOnly());
      image.write(0, filled(512, 1));
    }
    Image.setReadOnly(storage.reopen(), true);
    assertThrows(IllegalStateException.class, () -> Image.open(storage.reopen(), true));
    try (Image image = Image.open(storage.reopen(), false)) {
      assertTrue(image.isReadOnly());
      assertThrows(IllegalStateException.class, () -> image.write(0, filled(512, 2)));
      assertThrows(IllegalStateException.class, () -> image.zero(0, 512));
      assertThrows(IllegalStateException.class, () -> image.grow(2 << 20));
    }
    Image.setReadOnly(storage.reopen(), false);
    try (Image again = Image.open(storage.reopen(), true)) {
      assertFalse(again.isReadOnly());
      again.write(0, filled(512, 3));
    }
  }

  @Test
  void change_tag_changes_with_every_change_and_never_repeats_across_reopen() throws Exception {
    CheckOnClose.Checked storage = CHECKED.memory("m");
    Set<String> seen = new HashSet<>();
    try (Image image = Image.create(storage, small())) {
      assertTrue(seen.add(image.changeTag()));
      image.read(0, ByteBuffer.allocate(10));
      image.flush();
      assertFalse(seen.add(image.changeTag()), "reads and flushes change nothing");
      image.write(10, filled(10, 1));
      assertTrue(seen.add(image.changeTag()));
      image.zero(0, 100);
      assertTrue(seen.add(image.changeTag()));
      image.grow(2 << 20);
      assertTrue(seen.add(image.changeTag()));
    }
    for (int i = 0; i < 3; i++) {
      try (Image image = Image.open(storage.reopen(), i != 1)) {
        assertTrue(seen.add(image.changeTag()));
        if (image.isWritable()) {
          image.write(0, filled(1, i));
          assertTrue(seen.add(image.changeTag()));
        }
      }
    }
  }

  @Test
  void extents_merge_neighbours_clip_to_the_range_and_stop_at_the_limit() throws Exception {
    try (Image image = Image.create(CHECKED.memory("m"), small())) {
      image.write(CHUNK, filled(10, 1));
      image.write(2L * CHUNK + 5, filled(10, 1));
      image.write(5L * CHUNK, filled(10, 1));
      assertEquals(
          List.of(
              new Extent(0, CHUNK, Extent.State.ZERO),
              new Extent(CHUNK, 2L * CHUNK, Extent.State.DATA),
              new Extent(3L * CHUNK, 2L * CHUNK, Extent.State.ZERO),
              new Extent(5L * CHUNK, CHUNK, Extent.State.DATA),
              new Extent(6L * CHUNK, 10L * CHUNK, Extent.State.ZERO)),
          image.extents(0, 1 << 20, 1000));
      assertEquals(
          List.of(
              new Extent(100, CHUNK - 100, Extent.State.ZERO),
              new Extent(CHUNK, 50, Extent.State.DATA)),
          image.extents(100, CHUNK - 50, 1000));
      assertEquals(
          List.of(
              new Extent(0, CHUNK, Extent.State.ZERO),
              new Extent(CHUNK, 2L * CHUNK, Extent.State.DATA)),
          image.extents(0, 1 << 20, 2));
      assertEquals(List.of(), image.extents(7, 0, 1));
    }
  }

  @Test
  void zero_allocates_nothing_and_frees_the_chunks_it_covers_whole() throws Exception {
    try (Image image = Image.create(CHECKED.memory("m"), small())) {
      image.write(CHUNK - 100, filled(300, 7));
      long used = image.stats().usedBytes();
      image.zero(CHUNK - 50, 3L * CHUNK);
      assertEquals(
          used - CHUNK, image.stats().usedBytes(), "chunk 1 freed; chunk 0 zeroed in part");
      ByteBuffer back = ByteBuffer.allocate(300);
      image.read(CHUNK - 100, back);
      byte[] expected = new byte[300];
      java.util.Arrays.fill(expected, 0, 50, (byte) 7);
      assertArrayEquals(expected, back.array());
    }
  }

  @Test
  void bytes_to_allocate_counts_untouched_chunks_of_the_range() throws Exception {
    try (Image image = Image.create(CHECKED.memory("m"), small())) {
      assertEquals(2L * CHUNK, image.bytesToAllocate(CHUNK - 1, 2));
      image.write(CHUNK, filled(1, 1));
      assertEquals(CHUNK, image.bytesToAllocate(CHUNK - 1, 2));
      assertEquals(0, image.bytesToAllocate(CHUNK, CHUNK));
      assertEquals(0, image.bytesToAllocate(0, 0));
      assertNotEquals(0, image.bytesToAllocate(0, 1 << 20));
    }
  }
}
