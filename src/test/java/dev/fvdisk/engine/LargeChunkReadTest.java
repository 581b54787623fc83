package dev.fvdisk.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.nio.ByteBuffer;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** Reads of chunks larger than the engine's 1 MiB zero buffer. */
class LargeChunkReadTest {

  @RegisterExtension static final CheckOnClose CHECKED = new CheckOnClose();

  private static final int CHUNK_BYTES = 4 << 20;

  @Test
  void reading_more_than_a_mebibyte_of_a_never_written_chunk_returns_zeros() throws Exception {
    ImageOptions options =
        ImageOptions.builder(4L * CHUNK_BYTES).chunkSizeBytes(CHUNK_BYTES).build();
    try (Image image = Image.create(CHECKED.memory("m"), options)) {
      byte[] data = new byte[4096];
      Arrays.fill(data, (byte) 7);
      image.write(CHUNK_BYTES - 4096, ByteBuffer.wrap(data));

      // Starts in an unwritten part of a mapped chunk, ends 3 MiB into an unmapped one.
      ByteBuffer buf = ByteBuffer.allocate(CHUNK_BYTES);
      image.read(CHUNK_BYTES - 1024 * 1024, buf);

      byte[] expected = new byte[CHUNK_BYTES];
      Arrays.fill(expected, 1024 * 1024 - 4096, 1024 * 1024, (byte) 7);
      assertArrayEquals(expected, buf.array());
    }
  }
}
