package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

class ImageTest {

  @RegisterExtension static final CheckOnClose CHECKED = new CheckOnClose();

  private static final int CHUNK = 64 * 1024;

  private static ImageOptions small() {
    return ImageOptions.builder(1 << 20)
        .chunkSizeBytes(CHUNK)
        .journalSizeBytes(4096)
        .growthUnitBytes(4L * CHUNK)
        .build();
  }

  private static byte[] read(Image image, long offset, int length) throws Exception {
    ByteBuffer buf = ByteBuffer.allocate(length);
    image.read(offset, buf);
    assertEquals(length, buf.position());
    return buf.array();
  }

  private static byte[] pattern(int length, int seed) {
    byte[] b = new byte[length];
    for (int i = 0; i < length; i++) {
      b[i] = (byte) (seed * 31 + i * 7 + 1);
    }
    return b;
  }

  @Test
  void never_written_ranges_read_as_zeros() throws Exception {
    try (Image image = Image.create(CHECKED.memory("m"), small())) {
      assertArrayEquals(new byte[5000], read(image, 12345, 5000));
    }
  }

  @Test
  void unaligned_write_reads_back_and_rest_of_chunk_stays_zero() throws Exception {
    try (Image image = Image.create(CHECKED.memory("m"), small())) {
      byte[] data = pattern(1000, 3);
      image.write(CHUNK - 300, ByteBuffer.wrap(data));
      assertArrayEquals(data, read(image, CHUNK - 300, 1000));
      assertArrayEquals(new byte[CHUNK - 300], read(image, 0, CHUNK - 300));
      assertEquals(2L * CHUNK, image.stats().usedBytes());
    }
  }

  @Test
  void chunks_are_allocated_in_first_touch_order_and_file_grows_in_units() throws Exception {
    CheckOnClose.Checked storage = CHECKED.memory("m");
    try (Image image = Image.create(storage, small())) {
      long before = storage.sizeBytes();
      image.write(5L * CHUNK, ByteBuffer.wrap(pattern(10, 1)));
      image.write(2L * CHUNK, ByteBuffer.wrap(pattern(10, 2)));
      assertEquals(before + 4L * CHUNK, storage.sizeBytes());
      assertEquals(2L * CHUNK, image.stats().reservedBytes());
      image.flush();
    }
    try (Image image = Image.open(storage.reopen(), false)) {
      assertArrayEquals(pattern(10, 1), read(image, 5L * CHUNK, 10));
      assertArrayEquals(pattern(10, 2), read(image, 2L * CHUNK, 10));
    }
  }

  @Test
  void flushed_writes_survive_reopen_without_clean_close(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("a.fvd");
    Image image = Images.create(file, small());
    image.write(100, ByteBuffer.wrap(pattern(70000, 9)));
    image.flush();
    // No close: the clean-shutdown flag stays false, as after a crash.
    try (Image reopened = Images.open(file, true)) {
      assertTrue(reopened.stats().openedAfterCrash());
      assertTrue(reopened.stats().replayedJournalRecords() > 0);
      assertArrayEquals(pattern(70000, 9), read(reopened, 100, 70000));
    }
    assertEquals(CheckReport.Status.OK, Images.check(file).status());
  }

  @Test
  void journal_recycle_keeps_every_mapping() throws Exception {
    CheckOnClose.Checked storage = CHECKED.memory("m");
    // 4096-byte journal = 8 records; 16 flushed first-touch writes force recycles.
    try (Image image = Image.create(storage, small())) {
      for (int c = 0; c < 16; c++) {
        image.write((long) c * CHUNK + 7, ByteBuffer.wrap(pattern(100, c)));
        image.flush();
      }
    }
    try (Image image = Image.open(storage.reopen(), false)) {
      for (int c = 0; c < 16; c++) {
        assertArrayEquals(pattern(100, c), read(image, (long) c * CHUNK + 7, 100));
      }
    }
  }

  @Test
  void out_of_range_io_is_refused() throws Exception {
    try (Image image = Image.create(CHECKED.memory("m"), small())) {
      assertThrows(
          IllegalArgumentException.class,
          () -> image.read((1 << 20) - 10, ByteBuffer.allocate(11)));
      assertThrows(IllegalArgumentException.class, () -> image.write(-1, ByteBuffer.allocate(1)));
    }
  }

  @Test
  void grow_keeps_content_and_new_range_reads_zero() throws Exception {
    CheckOnClose.Checked storage = CHECKED.memory("m");
    try (Image image = Image.create(storage, small())) {
      image.write(CHUNK, ByteBuffer.wrap(pattern(10, 4)));
      image.grow(4L << 20);
      assertEquals(4L << 20, image.sizeBytes());
      image.write((3L << 20) + 1, ByteBuffer.wrap(pattern(10, 5)));
    }
    try (Image image = Image.open(storage.reopen(), true)) {
      assertEquals(4L << 20, image.sizeBytes());
      assertArrayEquals(pattern(10, 4), read(image, CHUNK, 10));
      assertArrayEquals(pattern(10, 5), read(image, (3L << 20) + 1, 10));
      byte[] zeros = read(image, 2L << 20, 100);
      assertTrue(Arrays.equals(new byte[100], zeros));
    }
  }
}
