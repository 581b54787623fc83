package dev.fvdisk.web;

import jakarta.servlet.ServletInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;

/**
 * A servlet request's body as a channel, so that {@link DiskStreams} and {@link StagedWrite} take
 * the main port's bodies and the data port's ({@link DataPortConnection}) through one path. Closing
 * it does nothing: the container owns the stream.
 */
final class ServletBody implements ReadableByteChannel {

  private final ServletInputStream in;

  ServletBody(ServletInputStream in) {
    this.in = in;
  }

  /**
   * Reads with channel semantics: the bytes land at the buffer's position, which then advances past
   * them. Servlet 6.1's {@code read(ByteBuffer)} in Tomcat instead leaves the position where it was
   * and sets the limit after the new bytes; this restores channel semantics, and is harmless for a
   * container that already follows them.
   */
  @Override
  public int read(ByteBuffer into) throws IOException {
    int start = into.position();
    int limit = into.limit();
    int n = in.read(into);
    into.limit(limit).position(start + Math.max(n, 0));
    return n;
  }

  @Override
  public boolean isOpen() {
    return true;
  }

  @Override
  public void close() {
    // The container closes the request's stream.
  }
}
