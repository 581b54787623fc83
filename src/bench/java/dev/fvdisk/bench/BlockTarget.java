package dev.fvdisk.bench;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Byte-addressed access to one virtual disk, as the in-process workload drives it. The engine and
 * plain {@link java.nio.channels.FileChannel} I/O implement it today; an HTTP client doing ranged
 * {@code GET}/{@code PUT} requests is meant to implement it too, so that the HTTP level reuses the
 * same patterns, offsets and statistics.
 */
interface BlockTarget extends Closeable {

  /** Writes all of {@code src.remaining()} bytes at {@code offsetBytes}; not durable yet. */
  void write(long offsetBytes, ByteBuffer src) throws IOException;

  /** Fills {@code dst.remaining()} bytes from {@code offsetBytes}. */
  void read(long offsetBytes, ByteBuffer dst) throws IOException;

  /** Makes every write that returned before this call durable. */
  void flush() throws IOException;
}
