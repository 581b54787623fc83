package dev.fvdisk.engine;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * A commit marks an entry clean without the chunk's mapping lock, so it can change the entry
 * between a writer's read of it and the writer's compare and set. Mapping a chunk whose unmapping a
 * commit is marking durable, and unmapping a chunk whose mapping a commit is marking durable, must
 * still succeed: before the fix, the first failed with "chunk is mapped already" (a 500 over HTTP
 * for a write after a zero) and the second silently left the chunk mapped (a lost zero).
 */
class ChunkTableRaceTest {

  private static final int ROUNDS = Integer.getInteger("fvdisk.chunk-table-race.rounds", 2_000_000);

  @Test
  void mapping_and_unmapping_win_over_a_commit_marking_the_entry_clean() throws Exception {
    ChunkTable table = new ChunkTable(1);
    AtomicBoolean stop = new AtomicBoolean();
    AtomicReference<Throwable> committerFailure = new AtomicReference<>();
    // The committer: takes the entry as it is and marks that clean, as a commit round does.
    Thread committer =
        new Thread(
            () -> {
              try {
                while (!stop.get()) {
                  table.markClean(0, table.raw(0));
                }
              } catch (Throwable t) {
                committerFailure.set(t);
              }
            });
    committer.start();
    try {
      long slot = 7;
      for (int round = 0; round < ROUNDS; round++) {
        table.mapDirty(0, slot);
        assertThat(table.physicalChunk(0)).as("round %d: mapped", round).isEqualTo(slot);
        assertThat(table.unmapDirty(0, slot)).as("round %d: unmapped", round).isTrue();
        assertThat(table.physicalChunk(0)).as("round %d: reads as zeros", round).isEqualTo(-1);
      }
    } finally {
      stop.set(true);
      committer.join();
    }
    assertThat(committerFailure.get()).isNull();
  }
}
