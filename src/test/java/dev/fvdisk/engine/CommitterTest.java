package dev.fvdisk.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.fvdisk.engine.io.MemoryStorage;
import dev.fvdisk.engine.spi.Checkpoint;
import dev.fvdisk.engine.spi.ChunkData;
import dev.fvdisk.engine.spi.CommitBatch;
import dev.fvdisk.engine.spi.FencedException;
import dev.fvdisk.engine.spi.MetadataLog;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The commit round against fake persistence ports: what it hands a back end, in which order, and
 * how it reacts when the back end is full or has fenced this writer off.
 */
class CommitterTest {

  private static final int CHUNK = 64 * 1024;

  /** What the fakes were asked, in order. */
  private final List<String> calls = new ArrayList<>();

  private final List<CommitBatch> appended = new ArrayList<>();
  private final List<Checkpoint> checkpoints = new ArrayList<>();
  private boolean logFull;
  private boolean fenced;

  private ChunkTable table;
  private ChunkStore chunks;
  private Committer committer;

  private final ChunkData data =
      new ChunkData() {
        @Override
        public int chunkSizeBytes() {
          return CHUNK;
        }

        @Override
        public void read(long location, long offsetInChunk, ByteBuffer dst) {
          dst.position(dst.limit());
        }

        @Override
        public void write(long location, long offsetInChunk, ByteBuffer src) {
          calls.add("write " + location);
          src.position(src.limit());
        }

        @Override
        public void zero(long location, long offsetInChunk, long lengthBytes) {}

        @Override
        public void seal() {
          calls.add("seal");
        }
      };

  private final MetadataLog log =
      new MetadataLog() {
        @Override
        public boolean fits(CommitBatch batch) {
          return !logFull;
        }

        @Override
        public void append(CommitBatch batch) throws IOException {
          if (fenced) {
            throw new FencedException("image taken over by another writer");
          }
          calls.add("append");
          appended.add(batch);
        }

        @Override
        public void checkpoint(Checkpoint checkpoint) {
          calls.add("checkpoint");
          // The views are valid during the call only: keep what they said.
          long[] locations = new long[checkpoint.chunks().chunkCount()];
          for (int i = 0; i < locations.length; i++) {
            locations[i] = checkpoint.chunks().location(i);
          }
          checkpoints.add(
              new Checkpoint(
                  checkpoint.sizeBytes(),
                  checkpoint.flags(),
                  copyOf(locations),
                  checkpoint.blocks()));
        }
      };

  private static Checkpoint.ChunkMap copyOf(long[] locations) {
    return new Checkpoint.ChunkMap() {
      @Override
      public int chunkCount() {
        return locations.length;
      }

      @Override
      public long location(int chunkIndex) {
        return locations[chunkIndex];
      }
    };
  }

  @BeforeEach
  void setUp() throws IOException {
    MemoryStorage storage = new MemoryStorage("committer");
    Image.create(storage, ImageOptions.builder(8L * CHUNK).chunkSizeBytes(CHUNK).build()).close();
    Header header = Header.read(storage.reopen());
    table = new ChunkTable(8);
    ChunkAllocator allocator =
        new ChunkAllocator(
            storage,
            header.dataOffsetBytes(),
            CHUNK,
            header.growthUnitBytes(),
            0,
            List.of(),
            storage.sizeBytes());
    chunks = new ChunkStore(data, CHUNK, table, 0, allocator, new SnapshotSet(CHUNK));
    CloneLayer clone =
        new CloneLayer(chunks, null, Bitmap.none(), header, SpaceBudget.UNLIMITED, "committer");
    committer = new Committer("committer", data, log, () -> header, chunks, clone);
  }

  @Test
  void a_round_seals_the_data_before_it_appends_the_mappings_and_then_marks_them_clean()
      throws IOException {
    chunks.write(3L * CHUNK + 100, ByteBuffer.allocate(512));
    assertThat(table.isDirty(3)).isTrue();

    committer.commit();

    assertThat(calls).containsExactly("write 0", "seal", "append");
    assertThat(appended).hasSize(1);
    assertThat(appended.get(0).chunkIndexes()).containsExactly(3);
    assertThat(appended.get(0).locations()).containsExactly(0L);
    assertThat(table.isDirty(3)).isFalse();

    calls.clear();
    committer.commit();
    assertThat(calls)
        .as("nothing new: the data is sealed, the log left alone")
        .containsExactly("seal");
  }

  @Test
  void a_full_log_gets_a_checkpoint_that_includes_the_sealed_mappings() throws IOException {
    chunks.write(5L * CHUNK, ByteBuffer.allocate(512));
    logFull = true;

    committer.commit();

    assertThat(calls).containsExactly("write 0", "seal", "checkpoint");
    assertThat(checkpoints.get(0).chunks().location(5)).isEqualTo(0L);
    assertThat(checkpoints.get(0).chunks().location(4)).isEqualTo(-1L);
    assertThat(table.isDirty(5)).isFalse();
  }

  @Test
  void a_fenced_writer_latches_the_image_and_never_asks_the_log_again() throws IOException {
    chunks.write(0, ByteBuffer.allocate(512));
    fenced = true;

    assertThatThrownBy(committer::commit)
        .isInstanceOf(ImageFailedException.class)
        .hasCauseInstanceOf(FencedException.class);
    assertThat(table.isDirty(0)).as("not durable, so still dirty").isTrue();
    assertThat(committer.failure()).isInstanceOf(FencedException.class);

    fenced = false;
    calls.clear();
    assertThatThrownBy(committer::commit).isInstanceOf(ImageFailedException.class);
    assertThat(calls).as("latched: no seal, no append").isEmpty();
  }
}
