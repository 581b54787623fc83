package dev.fvdisk.engine;

import static dev.fvdisk.engine.CloneTest.pattern;
import static dev.fvdisk.engine.CloneTest.read;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.fvdisk.engine.io.CrashingStorage;
import dev.fvdisk.engine.io.MemoryStorage;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Zeroing a clone where its blocks are still in the base, or were copied from it: whole chunks lose
 * their slots, whole blocks become zero blocks without data, and after any crash a block reads its
 * last durable content or zeros, never the base's bytes once it held its own.
 */
class CloneZeroTest {

  private static final int CHUNK = 64 * 1024;
  private static final int BLOCK = 4096;
  private static final int BASE_BYTES = 8 * CHUNK;

  private static ImageOptions options() {
    return ImageOptions.builder(BASE_BYTES)
        .chunkSizeBytes(CHUNK)
        .blockSizeBytes(BLOCK)
        .journalSizeBytes(16 * 1024)
        .growthUnitBytes(2L * CHUNK)
        .build();
  }

  private static Image base(byte[] content) throws Exception {
    MemoryStorage storage = new MemoryStorage("base");
    try (Image base = Image.create(storage, options())) {
      base.write(0, ByteBuffer.wrap(content));
    }
    Image.setReadOnly(storage.reopen(), true);
    return Image.open(storage.reopen(), false);
  }

  @Test
  void zeroing_a_clone_frees_whole_chunks_and_records_whole_blocks_without_data() throws Exception {
    byte[] content = pattern(BASE_BYTES, 1);
    byte[] model = content.clone();
    MemoryStorage cloneStorage = new MemoryStorage("clone");
    try (Image base = base(content)) {
      try (Image clone = Image.create(cloneStorage, options(), base, "base")) {
        // Chunks 1 and 2 get data of their own (partly), chunk 3 stays all in the base.
        byte[] own = pattern(3 * BLOCK + 100, 2);
        clone.write(CHUNK + BLOCK, ByteBuffer.wrap(own));
        System.arraycopy(own, 0, model, CHUNK + BLOCK, own.length);
        clone.write(2L * CHUNK, ByteBuffer.wrap(own));
        System.arraycopy(own, 0, model, 2 * CHUNK, own.length);
        clone.flush();
        assertEquals(2, clone.stats().usedBytes() / CHUNK);

        // Chunk 1 whole, and from the middle of a block in chunk 2 to two blocks into chunk 3.
        clone.zero(CHUNK, CHUNK);
        long from = 2L * CHUNK + 100;
        long to = 3L * CHUNK + 2 * BLOCK;
        clone.zero(from, to - from);
        Arrays.fill(model, CHUNK, 2 * CHUNK, (byte) 0);
        Arrays.fill(model, (int) from, (int) to, (byte) 0);
        assertEquals(
            1, clone.stats().usedBytes() / CHUNK, "chunk 1 lost its slot; 3 never had one");
        assertArrayEquals(model, read(clone, 0, BASE_BYTES));
        List<Extent> extents = clone.extents(CHUNK, CHUNK, 100);
        assertEquals(List.of(new Extent(CHUNK, CHUNK, Extent.State.ZERO)), extents);
        assertEquals(
            new Extent(3L * CHUNK, 2 * BLOCK, Extent.State.ZERO),
            clone.extents(3L * CHUNK, CHUNK, 100).get(0));
        clone.flush();
      }
      try (Image clone = Image.open(cloneStorage.reopen(), true, name -> base)) {
        assertArrayEquals(model, read(clone, 0, BASE_BYTES));
        assertEquals(1, clone.stats().usedBytes() / CHUNK);
        assertNotEquals(CheckReport.Status.CORRUPT, clone.check(false).status());
      }
    }
  }

  /**
   * A clone block copied and made durable, then its chunk zeroed whole, with every force of the
   * zero's commit failing in turn and a random part of the unforced writes surviving: the block
   * reads its data or zeros. Were the unmapping to survive without the zero blocks, replay would
   * drop the block's bit over the unmapped chunk and the block would read the base.
   */
  @Test
  void a_failed_commit_of_a_zeroed_chunk_never_brings_the_base_back() throws Exception {
    byte[] content = pattern(BASE_BYTES, 3);
    byte[] own = pattern(CHUNK, 4);
    int crashes = 0;
    try (Image base = base(content)) {
      for (int force = 1; force <= 3; force++) {
        for (long seed = 0; seed < 24; seed++) {
          MemoryStorage fresh = new MemoryStorage("clone");
          Image.create(fresh, options(), base, "base").close();
          CrashingStorage storage = CrashingStorage.wrap(fresh.reopen());
          String where = "force " + force + " after the zero, seed " + seed;
          try (Image clone = Image.open(storage, true, name -> base)) {
            // Half of chunk 1 becomes the clone's own, durably; the rest stays in the base.
            clone.write(CHUNK, ByteBuffer.wrap(own, 0, CHUNK / 2));
            clone.flush();
            storage.arm(CrashingStorage.Mode.FAIL_FORCE, storage.forceCount() + force, seed);
            clone.zero(CHUNK, CHUNK);
            clone.flush();
            if (storage.crashed()) {
              fail(where + ": the flush succeeded after a failed force");
            }
          } catch (CrashingStorage.CrashedException | ImageFailedException e) {
            crashes++;
          }
          MemoryStorage survivor = storage.survivingStorage("survivor");
          try (Image clone = Image.open(survivor.reopen(), false, name -> base)) {
            byte[] chunk = read(clone, CHUNK, CHUNK);
            for (int b = 0; b < CHUNK / BLOCK; b++) {
              byte[] got = Arrays.copyOfRange(chunk, b * BLOCK, (b + 1) * BLOCK);
              byte[] before =
                  b < CHUNK / 2 / BLOCK
                      ? Arrays.copyOfRange(own, b * BLOCK, (b + 1) * BLOCK)
                      : Arrays.copyOfRange(content, CHUNK + b * BLOCK, CHUNK + (b + 1) * BLOCK);
              assertTrue(
                  Arrays.equals(got, before) || Arrays.equals(got, new byte[BLOCK]),
                  where + ": block " + b + " reads neither its content nor zeros");
            }
          }
        }
      }
    }
    assertTrue(crashes > 0, "no force failed");
  }
}
