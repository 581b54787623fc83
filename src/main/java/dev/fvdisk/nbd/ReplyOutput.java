package dev.fvdisk.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.WritableByteChannel;

/**
 * The reply stream of one connection, written by one thread. Headers and small data collect in an
 * outbox that goes out when full or on {@link #flush}, so the replies of a burst share a system
 * call; large data is sent from its own buffer, together with the outbox in one gathering write
 * where the channel has one.
 */
final class ReplyOutput {

  private static final int OUTBOX_BYTES = 64 * 1024;

  /** Data up to this size is copied into the outbox; larger data is sent from where it lies. */
  private static final int COPIED_BYTES = 16 * 1024;

  private final WritableByteChannel channel;
  private final ByteBuffer outbox = ByteBuffer.allocateDirect(OUTBOX_BYTES);
  private final ByteBuffer[] pair = new ByteBuffer[2];

  ReplyOutput(WritableByteChannel channel) {
    this.channel = channel;
  }

  ReplyOutput putShort(int value) throws IOException {
    room(Short.BYTES).putShort((short) value);
    return this;
  }

  ReplyOutput putInt(int value) throws IOException {
    room(Integer.BYTES).putInt(value);
    return this;
  }

  ReplyOutput putLong(long value) throws IOException {
    room(Long.BYTES).putLong(value);
    return this;
  }

  /** Small bytes, such as an error message; at most the outbox's size. */
  ReplyOutput put(byte[] bytes) throws IOException {
    room(bytes.length).put(bytes);
    return this;
  }

  /** Sends the remaining bytes of {@code data}, consuming them. */
  void put(ByteBuffer data) throws IOException {
    if (data.remaining() <= COPIED_BYTES) {
      room(data.remaining()).put(data);
      return;
    }
    outbox.flip();
    try {
      if (channel instanceof GatheringByteChannel gathering) {
        pair[0] = outbox;
        pair[1] = data;
        while (data.hasRemaining()) {
          gathering.write(pair);
        }
      } else {
        writeAll(outbox);
        writeAll(data);
      }
    } finally {
      pair[1] = null;
      outbox.clear();
    }
  }

  /** Sends what the outbox holds. */
  void flush() throws IOException {
    outbox.flip();
    try {
      writeAll(outbox);
    } finally {
      outbox.clear();
    }
  }

  private ByteBuffer room(int bytes) throws IOException {
    if (outbox.remaining() < bytes) {
      flush();
    }
    return outbox;
  }

  private void writeAll(ByteBuffer src) throws IOException {
    while (src.hasRemaining()) {
      channel.write(src);
    }
  }
}
