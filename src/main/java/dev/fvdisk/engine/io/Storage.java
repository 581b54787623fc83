package dev.fvdisk.engine.io;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The engine's only way to reach bytes: positioned reads and writes, force, size and resize.
 *
 * <p>Every image file the engine touches goes through this seam, so tests can swap the real file
 * for memory or for a wrapper that injects faults. Positions and sizes are 64-bit byte counts.
 *
 * <p><b>Thread safety.</b> Implementations must allow concurrent {@link #read} and {@link #write}
 * calls from many threads, as {@link java.nio.channels.FileChannel} does. Writes to overlapping
 * ranges from different threads have no defined order; the engine never issues them at the same
 * time for metadata, and the data path leaves that ordering to its callers.
 *
 * <p><b>Durability.</b> A completed {@link #write} is visible to later reads but may sit in a
 * volatile cache; only a completed {@link #force} makes every earlier completed write durable.
 */
public interface Storage extends Closeable {

  /**
   * Reads exactly {@code dst.remaining()} bytes starting at {@code positionBytes}.
   *
   * @throws java.io.EOFException if the range extends past {@link #sizeBytes()}
   * @throws IOException if the underlying read fails
   */
  void read(ByteBuffer dst, long positionBytes) throws IOException;

  /**
   * Writes all of {@code src.remaining()} bytes at {@code positionBytes}, extending the storage
   * when the range ends past its current size.
   */
  void write(ByteBuffer src, long positionBytes) throws IOException;

  /** Makes every write that completed before this call durable. */
  void force() throws IOException;

  /** The current size in bytes. */
  long sizeBytes() throws IOException;

  /**
   * Grows or shrinks the storage to exactly {@code sizeBytes}. Bytes added by growing read as
   * zeros. The new size is durable only after {@link #force()}.
   */
  void resize(long sizeBytes) throws IOException;

  /** A short human-readable name (usually the file path) for error messages. */
  String description();
}
