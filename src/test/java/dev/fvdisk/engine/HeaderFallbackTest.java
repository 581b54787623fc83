package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fvdisk.engine.io.MemoryStorage;
import java.nio.ByteBuffer;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** What happens when the newest header copy is lost and the reader falls back to the older one. */
class HeaderFallbackTest {

  private static final int CHUNK = 64 * 1024;

  private static ImageOptions options() {
    return ImageOptions.builder(16L << 20)
        .chunkSizeBytes(CHUNK)
        .growthUnitBytes(4L * CHUNK)
        .journalSizeBytes(64 * 1024)
        .build();
  }

  /** Flips one byte of the newest header copy, so that its checksum fails. */
  private static void damageNewestHeader(MemoryStorage storage) throws Exception {
    long slot = Header.slotOffset(Header.read(storage).generation());
    ByteBuffer b = ByteBuffer.allocate(1);
    storage.read(b, slot + 40);
    b.put(0, (byte) (b.get(0) ^ 0x55)).clear();
    storage.write(b, slot + 40);
  }

  private static byte[] fill(int length, int value) {
    byte[] b = new byte[length];
    Arrays.fill(b, (byte) value);
    return b;
  }

  @Test
  void flushed_write_survives_losing_the_newest_header_copy() throws Exception {
    MemoryStorage storage = new MemoryStorage("m");
    Image image = Image.create(storage, options());
    image.write(0, ByteBuffer.wrap(fill(4096, 0x11)));
    image.flush();
    // Crash: no close. The newest header says "not clean"; the older copy still says "clean".
    damageNewestHeader(storage);
    try (Image reopened = Image.open(storage.reopen(), false)) {
      ByteBuffer buf = ByteBuffer.allocate(4096);
      reopened.read(0, buf);
      assertArrayEquals(fill(4096, 0x11), buf.array());
    }
  }

  @Test
  void a_fallback_open_counts_as_a_crash_so_unmapped_data_is_never_exposed_later()
      throws Exception {
    MemoryStorage storage = new MemoryStorage("m");
    Image first = Image.create(storage, options());
    first.write(0, ByteBuffer.wrap(fill(CHUNK, 0x11)));
    first.flush();
    damageNewestHeader(storage);
    Image second = Image.open(storage.reopen(), true);
    // Written, never flushed, then a crash: chunk 1's slot holds data no mapping points at.
    second.write(CHUNK, ByteBuffer.wrap(fill(CHUNK, 0xAA)));
    try (Image third = Image.open(storage.reopen(), true)) {
      assertTrue(third.stats().openedAfterCrash());
      third.write(2L * CHUNK, ByteBuffer.wrap(fill(512, 0x22)));
      ByteBuffer chunk = ByteBuffer.allocate(CHUNK);
      third.read(2L * CHUNK, chunk);
      byte[] expected = new byte[CHUNK];
      Arrays.fill(expected, 0, 512, (byte) 0x22);
      assertArrayEquals(expected, chunk.array());
      assertEquals(CheckReport.Status.OK, third.check(false).status());
    }
  }
}
