package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fvdisk.engine.io.MemoryStorage;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** A table larger than the piece it is loaded in: every piece is read, checked and applied. */
class ChunkTableLoadTest {

  private static final int CHUNK = 4096;
  private static final int CHUNKS = 300_000; // 1.2 MB of entries, more than one 1 MiB piece
  private static final int[] WRITTEN = {0, 1, 262_143, 262_144, 262_145, CHUNKS - 1};

  private static ImageOptions options() {
    return ImageOptions.builder((long) CHUNKS * CHUNK)
        .chunkSizeBytes(CHUNK)
        .journalSizeBytes(4096)
        .growthUnitBytes(64L * CHUNK)
        .build();
  }

  private static ByteBuffer sector(int value) {
    ByteBuffer b = ByteBuffer.allocate(512);
    b.putInt(0, value);
    return b;
  }

  private static void assertContent(Image image) throws Exception {
    for (int c : WRITTEN) {
      ByteBuffer got = ByteBuffer.allocate(512);
      image.read((long) c * CHUNK, got);
      assertArrayEquals(sector(c + 1).array(), got.array(), "chunk " + c);
    }
    assertEquals((long) WRITTEN.length * CHUNK, image.stats().usedBytes());
  }

  @Test
  void mappings_on_both_sides_of_a_piece_boundary_survive_close_and_crash() throws Exception {
    MemoryStorage storage = new MemoryStorage("m");
    try (Image image = Image.create(storage, options())) {
      for (int c : WRITTEN) {
        image.write((long) c * CHUNK, sector(c + 1));
      }
    }
    try (Image image = Image.open(storage.reopen(), false)) {
      assertContent(image);
    }
    // A crash after the table was written once and one more mapping was journalled.
    Image second = Image.open(storage.reopen(), true);
    second.write(2L * CHUNK, sector(3));
    second.flush();
    try (Image image = Image.open(storage.reopen(), true)) {
      assertTrue(image.stats().openedAfterCrash());
      ByteBuffer got = ByteBuffer.allocate(512);
      image.read(2L * CHUNK, got);
      assertArrayEquals(sector(3).array(), got.array());
    }
  }

  @Test
  void damage_in_a_later_piece_fails_the_checksum() throws Exception {
    MemoryStorage storage = new MemoryStorage("m");
    try (Image image = Image.create(storage, options())) {
      image.write((long) (CHUNKS - 1) * CHUNK, sector(1));
    }
    Header header = Header.read(storage.reopen());
    long entry = header.activeTableOffset() + (CHUNKS - 1) * 4L;
    storage.write(ByteBuffer.wrap(new byte[] {7}), entry);
    CorruptImageException e =
        assertThrows(CorruptImageException.class, () -> Image.open(storage.reopen(), false));
    assertTrue(e.getMessage().contains("checksum"), e.getMessage());
  }
}
