package dev.fvdisk.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;

/**
 * The request stream of one connection. Headers and small payloads are read in bulk through one
 * direct buffer; a large payload goes from the socket straight into its own buffer.
 */
final class RequestInput {

  private static final int BUFFER_BYTES = 64 * 1024;

  private final ReadableByteChannel channel;
  // Unread bytes lie between position and limit.
  private final ByteBuffer buffer = ByteBuffer.allocateDirect(BUFFER_BYTES).flip();

  RequestInput(ReadableByteChannel channel) {
    this.channel = channel;
  }

  /**
   * Makes {@code bytes} (at most the buffer's size) available to {@link #buffered}.
   *
   * @return false when the stream ended before the first of them
   * @throws EOFException when it ended after the first and before the last
   */
  boolean require(int bytes) throws IOException {
    while (buffer.remaining() < bytes) {
      buffer.compact();
      int read;
      try {
        read = channel.read(buffer);
      } finally {
        buffer.flip();
      }
      if (read < 0) {
        if (!buffer.hasRemaining()) {
          return false;
        }
        throw new EOFException("the connection ended inside a request");
      }
    }
    return true;
  }

  /** The bytes read ahead, for relative gets after {@link #require}. */
  ByteBuffer buffered() {
    return buffer;
  }

  /**
   * Fills {@code dst} from the stream.
   *
   * @throws EOFException when the stream ends first
   */
  void readFully(ByteBuffer dst) throws IOException {
    while (dst.hasRemaining()) {
      if (buffer.hasRemaining()) {
        int n = Math.min(buffer.remaining(), dst.remaining());
        dst.put(dst.position(), buffer, buffer.position(), n);
        dst.position(dst.position() + n);
        buffer.position(buffer.position() + n);
      } else if (dst.remaining() >= BUFFER_BYTES / 2) {
        // Large: straight from the socket, saving a copy.
        if (channel.read(dst) < 0) {
          throw new EOFException("the connection ended inside a write's payload");
        }
      } else if (!require(1)) {
        throw new EOFException("the connection ended inside a write's payload");
      }
    }
  }
}
