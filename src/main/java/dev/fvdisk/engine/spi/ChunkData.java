package dev.fvdisk.engine.spi;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The chunk data of one image: fixed-size chunks at numbered locations, read and written in place
 * until they are sealed. Where a location lives (a slot of a file, an object and its cached copy)
 * is the implementation's business; the engine only keeps the number in its chunk map.
 *
 * <p><b>Thread safety.</b> Reads and writes of different locations, and reads of one location, may
 * run at once; the engine orders writes against overlapping reads itself.
 */
public interface ChunkData {

  /** Bytes in every chunk. */
  int chunkSizeBytes();

  /**
   * Reads {@code dst.remaining()} bytes from {@code offsetInChunk} of {@code location}. The read
   * may run on into the following locations ({@code location + 1}, ...), for callers that have
   * found a run of consecutive locations.
   */
  void read(long location, long offsetInChunk, ByteBuffer dst) throws IOException;

  /** Writes {@code src.remaining()} bytes at {@code offsetInChunk}, inside one chunk. */
  void write(long location, long offsetInChunk, ByteBuffer src) throws IOException;

  /** Writes {@code lengthBytes} zeros at {@code offsetInChunk}, inside one chunk. */
  void zero(long location, long offsetInChunk, long lengthBytes) throws IOException;

  /**
   * Makes every write that returned before this call durable, so that metadata pointing at it may
   * follow. In the local file nothing moves: a chunk stays at its location. A back end that writes
   * new versions elsewhere will report here where they landed.
   *
   * @throws FencedException if this writer has lost the image to another one
   */
  void seal() throws IOException;
}
