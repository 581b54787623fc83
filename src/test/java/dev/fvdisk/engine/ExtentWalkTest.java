package dev.fvdisk.engine;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The range walker behind extents, reads and writes, against a model that classifies every sector
 * on its own: random writes and zeros into a clone whose base ends inside a block, then extents of
 * random ranges with random limits must equal the model's runs, cut by the same rule.
 */
class ExtentWalkTest {

  @RegisterExtension static final CheckOnClose CHECKED = new CheckOnClose();

  private static final int CHUNK = 64 * 1024;
  private static final int BLOCK = 4096;
  private static final int SECTOR = 512;

  /** Ends three sectors into a block, so the last block of the base is partial. */
  private static final int BASE_SIZE = 40 * BLOCK + 3 * SECTOR;

  private static final int CLONE_SIZE = 6 * CHUNK;

  private static ImageOptions.Builder options(long sizeBytes) {
    return ImageOptions.builder(sizeBytes)
        .chunkSizeBytes(CHUNK)
        .blockSizeBytes(BLOCK)
        .journalSizeBytes(4096)
        .copyOnRead(false)
        .prefetch(false, 0);
  }

  @Test
  void extents_of_random_ranges_match_a_sector_by_sector_model() throws Exception {
    long seed = System.nanoTime();
    Random random = new Random(seed);
    CheckOnClose.Checked baseStorage = CHECKED.memory("base");
    byte[] content = new byte[BASE_SIZE];
    random.nextBytes(content);
    try (Image base = Image.create(baseStorage, options(BASE_SIZE).build())) {
      base.write(0, ByteBuffer.wrap(content));
    }
    Image.setReadOnly(baseStorage.reopen(), true);
    try (Image base = Image.open(baseStorage.reopen(), false);
        Image clone =
            Image.create(CHECKED.memory("clone"), options(CLONE_SIZE).build(), base, "base")) {
      BitSet presentBlocks = new BitSet();
      BitSet mappedChunks = new BitSet();
      for (int op = 0; op < 40; op++) {
        int offset = random.nextInt(CLONE_SIZE / SECTOR) * SECTOR;
        int length = (1 + random.nextInt(24)) * SECTOR;
        length = Math.min(length, CLONE_SIZE - offset);
        boolean zeroed = random.nextInt(4) == 0;
        if (zeroed) {
          clone.zero(offset, length);
        } else {
          byte[] data = new byte[length];
          random.nextBytes(data);
          clone.write(offset, ByteBuffer.wrap(data));
        }
        // Inside the base's range a touched block moves whole, zeros included, and maps its
        // chunk; past it a write maps its chunks and zeros map nothing (unmapped reads as zeros).
        for (int at = offset; at < offset + length; at += SECTOR) {
          if (at < BASE_SIZE) {
            presentBlocks.set(at / BLOCK);
            mappedChunks.set(at / CHUNK);
          } else if (!zeroed) {
            mappedChunks.set(at / CHUNK);
          }
        }
      }
      List<Extent.State> model = new ArrayList<>();
      for (int at = 0; at < CLONE_SIZE; at += SECTOR) {
        if (at < BASE_SIZE && !presentBlocks.get(at / BLOCK)) {
          model.add(Extent.State.BASE);
        } else {
          model.add(mappedChunks.get(at / CHUNK) ? Extent.State.DATA : Extent.State.ZERO);
        }
      }
      for (int i = 0; i < 500; i++) {
        int from = random.nextInt(CLONE_SIZE / SECTOR);
        int to = from + 1 + random.nextInt(CLONE_SIZE / SECTOR - from);
        int max = 1 + random.nextInt(6);
        assertThat(clone.extents((long) from * SECTOR, (long) (to - from) * SECTOR, max))
            .as("seed %d, sectors [%d, %d), max %d", seed, from, to, max)
            .isEqualTo(expected(model, from, to, max));
      }
    }
  }

  /**
   * The model's runs over sectors {@code [from, to)}, cut after the {@code max}-th complete one.
   */
  private static List<Extent> expected(List<Extent.State> model, int from, int to, int max) {
    List<Extent> runs = new ArrayList<>();
    int start = from;
    for (int s = from + 1; s <= to; s++) {
      if (s == to || model.get(s) != model.get(start)) {
        runs.add(new Extent((long) start * SECTOR, (long) (s - start) * SECTOR, model.get(start)));
        if (runs.size() == max && s < to) {
          return runs;
        }
        start = s;
      }
    }
    return runs;
  }

  @Test
  void walk_cuts_at_unit_boundaries_and_widens_on_request() {
    List<String> pieces = new ArrayList<>();
    for (RangeWalk w = new RangeWalk(100, 1000, 256); !w.done(); w.next()) {
      pieces.add(w.unit() + ":" + w.offsetInUnit() + "+" + w.length());
    }
    assertThat(pieces).containsExactly("0:100+156", "1:0+256", "2:0+256", "3:0+256", "4:0+76");

    RangeWalk w = new RangeWalk(100, 1000, 256);
    w.extendWhile(unit -> unit < 3, Long.MAX_VALUE);
    assertThat(w.pieceEnd()).isEqualTo(768);
    w.next();
    assertThat(w.position()).isEqualTo(768);
    w.extendTo(Long.MAX_VALUE);
    assertThat(w.pieceEnd()).isEqualTo(1100);
    w.next();
    assertThat(w.done()).isTrue();
  }
}
