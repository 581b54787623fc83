package dev.fvdisk.web;

import dev.fvdisk.service.Durability;
import dev.fvdisk.service.ExpectedVersion;
import dev.fvdisk.service.InvalidRequestException;
import dev.fvdisk.service.StagingArea;
import dev.fvdisk.service.StagingFile;
import dev.fvdisk.service.VirtualDisk;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import org.jspecify.annotations.Nullable;

/**
 * A data write whose body carries a {@code Content-Digest}: the whole body is received and checked
 * against its digests before any byte of it reaches the disk, so a body that does not match, or
 * ends early, leaves the image as it was. A body that fits in the request's buffer waits there; a
 * larger one waits in a {@link StagingFile}, which is deleted when the write ends, however it ends.
 *
 * <p>The steps: the write is checked (read-only, range, space) before the first byte is taken, so a
 * refused write never reads its upload; the body is staged and verified; then an {@code If-Match}
 * takes its hold, the write is checked again, and the staged body is written with buffered writes
 * and a flush, as an unchecked body is. One per request.
 */
final class StagedWrite {

  private final VirtualDisk disk;
  private final ByteRanges.Span span;
  private final ByteBuffer buffer;
  private final int bufferBytes;
  private final ExpectedDigests digests;

  /**
   * @param buffer the request's buffer, as acquired: its limit is the smaller of the buffer size
   *     and the body's length
   */
  StagedWrite(VirtualDisk disk, ByteRanges.Span span, ByteBuffer buffer, ExpectedDigests digests) {
    this.disk = disk;
    this.span = span;
    this.buffer = buffer;
    this.bufferBytes = buffer.limit();
    this.digests = digests;
  }

  void write(
      ReadableByteChannel in,
      StagingArea staging,
      @Nullable ExpectedVersion expected,
      boolean flush) {
    long lengthBytes = span.lengthBytes();
    disk.checkWrite(span.offsetBytes(), lengthBytes);
    if (lengthBytes <= bufferBytes) {
      receive(in, 0, (int) lengthBytes);
      expectEnd(in);
      digests.verify(disk.name());
      prepare(expected);
      disk.write(span.offsetBytes(), buffer, Durability.BUFFERED);
    } else {
      try (StagingFile file = staging.create(lengthBytes)) {
        for (long received = 0; received < lengthBytes; ) {
          int n = (int) Math.min(bufferBytes, lengthBytes - received);
          receive(in, received, n);
          file.append(buffer);
          received += n;
        }
        expectEnd(in);
        digests.verify(disk.name());
        prepare(expected);
        for (long position = 0; position < lengthBytes; ) {
          int n = (int) Math.min(bufferBytes, lengthBytes - position);
          buffer.clear().limit(n);
          file.read(position, buffer);
          disk.write(span.offsetBytes() + position, buffer.flip(), Durability.BUFFERED);
          position += n;
        }
      }
    }
    if (flush) {
      disk.flush();
    }
  }

  /**
   * Fills the buffer with the next {@code lengthBytes} of the body, hashes them and leaves them
   * ready to be drained.
   */
  private void receive(ReadableByteChannel in, long receivedBytes, int lengthBytes) {
    buffer.clear().limit(lengthBytes);
    boolean ended;
    try {
      ended = DiskStreams.fill(in, buffer);
    } catch (IOException e) {
      throw cutShort(receivedBytes + buffer.position(), e);
    }
    if (ended) {
      throw cutShort(receivedBytes + buffer.position(), null);
    }
    digests.update(buffer.flip());
  }

  private void expectEnd(ReadableByteChannel in) {
    int next;
    try {
      next = in.read(ByteBuffer.allocate(1));
    } catch (IOException e) {
      throw cutShort(span.lengthBytes(), e);
    }
    if (next > 0) {
      throw new InvalidRequestException(
          "the body is longer than the "
              + span.lengthBytes()
              + " bytes announced; nothing was written to image \""
              + disk.name()
              + "\"");
    }
  }

  /**
   * Takes the {@code If-Match} hold only now, so the image is not held while the body comes in, and
   * checks the write again: the staged body took space of its own since the first check.
   */
  private void prepare(@Nullable ExpectedVersion expected) {
    if (expected != null) {
      disk.holdExclusively(expected);
    }
    disk.checkWrite(span.offsetBytes(), span.lengthBytes());
  }

  /**
   * A body that ended before its announced length; unlike an unchecked write, none of it is
   * written.
   */
  private InvalidRequestException cutShort(long receivedBytes, @Nullable IOException cause) {
    return new InvalidRequestException(
        "the body ended after "
            + receivedBytes
            + " of the "
            + span.lengthBytes()
            + " bytes announced"
            + (cause == null ? "" : " (the connection broke off)")
            + "; nothing was written to image \""
            + disk.name()
            + "\"");
  }
}
