package dev.fvdisk.engine;

import static dev.fvdisk.engine.CloneTest.pattern;
import static dev.fvdisk.engine.CloneTest.read;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fvdisk.engine.io.MemoryStorage;
import java.nio.ByteBuffer;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Compaction moves chunks from the end of the file into freed slots and cuts the file after them.
 */
class CompactionTest {

  private static final int CHUNK = 64 * 1024;
  private static final int CHUNKS = 16;

  private static ImageOptions options() {
    return ImageOptions.builder((long) CHUNKS * CHUNK)
        .chunkSizeBytes(CHUNK)
        .growthUnitBytes(CHUNK)
        .build();
  }

  @Test
  void compaction_moves_the_last_chunks_into_freed_slots_and_the_file_shrinks() throws Exception {
    MemoryStorage storage = new MemoryStorage("compact");
    byte[] model = pattern(CHUNKS * CHUNK, 5);
    try (Image image = Image.create(storage, options())) {
      image.write(0, ByteBuffer.wrap(model));
      image.flush();
      long fullFile = image.stats().fileBytes();
      // The first twelve chunks are zeroed: their slots, at the start of the file, are freed.
      image.zero(0, 12L * CHUNK);
      Arrays.fill(model, 0, 12 * CHUNK, (byte) 0);
      image.flush();
      assertEquals(fullFile, image.stats().fileBytes(), "the freed slots are not at the end");
      assertEquals(12, image.stats().freeChunks());

      CompactionStep first = image.compact(3);
      assertEquals(3, first.movedChunks());
      assertEquals(3L * CHUNK, first.releasedBytes());
      assertArrayEquals(model, read(image, 0, model.length));
      CompactionStep second = image.compact(64);
      assertEquals(1, second.movedChunks());
      assertEquals(9L * CHUNK, second.releasedBytes(), "the freed slots after the last chunk too");
      assertEquals(fullFile - 12L * CHUNK, image.stats().fileBytes());
      assertEquals(storage.sizeBytes(), image.stats().fileBytes());
      assertEquals(0, image.stats().freeChunks());
      assertEquals(false, image.compact(64).didWork());
      assertArrayEquals(model, read(image, 0, model.length));
      assertEquals(CheckReport.Status.OK, image.check(false).status());

      // The file grows again from its new end.
      byte[] more = pattern(CHUNK, 6);
      image.write(0, ByteBuffer.wrap(more));
      System.arraycopy(more, 0, model, 0, CHUNK);
    }
    try (Image image = Image.open(storage.reopen(), false)) {
      assertArrayEquals(model, read(image, 0, model.length));
      assertEquals(CheckReport.Status.OK, image.check(false).status());
    }
  }

  @Test
  void compaction_reuses_slots_a_crash_leaked() throws Exception {
    MemoryStorage storage = new MemoryStorage("leaked");
    byte[] model = pattern(4 * CHUNK, 7);
    try (Image image = Image.create(storage, options())) {
      image.write(0, ByteBuffer.wrap(model));
      image.flush();
      image.zero(0, CHUNK);
      Arrays.fill(model, 0, CHUNK, (byte) 0);
      image.flush();
      // Closed without giving the slot back: the next open finds it leaked.
    }
    try (Image image = Image.open(storage.reopen(), true)) {
      assertEquals(1, image.stats().leakedChunks());
      long before = image.stats().fileBytes();
      CompactionStep step = image.compact(8);
      assertEquals(1, step.movedChunks());
      assertEquals(before - CHUNK, image.stats().fileBytes());
      assertEquals(0, image.stats().leakedChunks());
      assertArrayEquals(model, read(image, 0, model.length));
    }
  }

  /**
   * A move not yet taken by a commit leaves the table's durable view at the old slot, which still
   * holds the chunk's bytes: a checkpoint written meanwhile (a full journal, a grow) must not
   * record the chunk as unmapped.
   */
  @Test
  void a_checkpoint_before_a_move_is_committed_records_the_old_slot() {
    ChunkTable table = new ChunkTable(4);
    table.applyNewer(2, 9);
    assertTrue(table.relocateDirty(2, 9, 1));
    assertEquals(1, table.physicalChunk(2));
    assertEquals(9, table.durableWith(ChunkTable.Taken.NONE).location(2));
    int moved = table.raw(2);
    table.markClean(2, moved);
    assertEquals(1, table.durableWith(ChunkTable.Taken.NONE).location(2));
    // Zeroed after a move that was never committed: no durable slot is claimed for it.
    assertTrue(table.relocateDirty(2, 1, 3));
    assertTrue(table.unmapDirty(2, 3));
    assertEquals(-1, table.durableWith(ChunkTable.Taken.NONE).location(2));
  }
}
