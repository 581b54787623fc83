package dev.fvdisk.engine;

import dev.fvdisk.engine.io.Storage;
import dev.fvdisk.engine.spi.ChunkData;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Chunk data in the data area of a local image file: location {@code n} is the slot at {@code
 * dataOffset + n × chunkSize}, so consecutive locations are consecutive bytes and a run of them is
 * one read. Sealing is a force of the file.
 */
final class FileChunkData implements ChunkData {

  private final Storage storage;
  private final long dataOffsetBytes;
  private final int chunkSizeBytes;

  FileChunkData(Storage storage, Header header) {
    this.storage = storage;
    this.dataOffsetBytes = header.dataOffsetBytes();
    this.chunkSizeBytes = header.chunkSizeBytes();
  }

  @Override
  public int chunkSizeBytes() {
    return chunkSizeBytes;
  }

  @Override
  public void read(long location, long offsetInChunk, ByteBuffer dst) throws IOException {
    storage.read(dst, fileOffset(location, offsetInChunk));
  }

  @Override
  public void write(long location, long offsetInChunk, ByteBuffer src) throws IOException {
    storage.write(src, fileOffset(location, offsetInChunk));
  }

  @Override
  public void zero(long location, long offsetInChunk, long lengthBytes) throws IOException {
    long at = fileOffset(location, offsetInChunk);
    ByteBuffer zeros = ChunkStore.ZEROS;
    for (long done = 0; done < lengthBytes; ) {
      int n = (int) Math.min(lengthBytes - done, zeros.capacity());
      storage.write(zeros.duplicate().limit(n), at + done);
      done += n;
    }
  }

  @Override
  public void seal() throws IOException {
    storage.force();
  }

  private long fileOffset(long location, long offsetInChunk) {
    return dataOffsetBytes + location * chunkSizeBytes + offsetInChunk;
  }
}
