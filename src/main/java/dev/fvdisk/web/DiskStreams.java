package dev.fvdisk.web;

import dev.fvdisk.service.Durability;
import dev.fvdisk.service.ExpectedVersion;
import dev.fvdisk.service.InvalidRequestException;
import dev.fvdisk.service.IoBuffers;
import dev.fvdisk.service.StagingArea;
import dev.fvdisk.service.VirtualDisk;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.security.MessageDigest;
import org.jspecify.annotations.Nullable;

/**
 * Streams between HTTP bodies and a {@link VirtualDisk}, one pooled direct buffer per request, so
 * no body is held in memory or copied through a heap array. Shared by {@link DataController} and
 * {@link RangeReadFilter}, so both draw on one buffer budget; the data port has an instance of its
 * own. Reads with a {@code Content-Digest} and writes checked against one ({@link StagedWrite}) use
 * the same buffer. Safe to share between threads.
 */
final class DiskStreams {

  /** Buffers kept between requests; more requests at once get buffers that are dropped after. */
  private static final int RETAINED_BUFFERS = 64;

  /** Requests streaming at once; as many as Tomcat's default pool has threads. */
  private static final int MAX_BUFFERS_IN_USE = 200;

  private final IoBuffers buffers;

  /**
   * @param bufferBytes what one request moves at a time ({@code fvdisk.io-buffer-size})
   */
  DiskStreams(int bufferBytes) {
    this(bufferBytes, MAX_BUFFERS_IN_USE);
  }

  /**
   * @param bufferBytes what one request moves at a time ({@code fvdisk.io-buffer-size})
   * @param maxInUse requests streaming at once; a further one waits for a buffer
   */
  DiskStreams(int bufferBytes, int maxInUse) {
    this.buffers = new IoBuffers(bufferBytes, Math.min(RETAINED_BUFFERS, maxInUse), maxInUse);
  }

  /**
   * Sends {@code span} of the disk as {@code answer}'s body, a buffer at a time. Each buffer is a
   * call of its own on the disk: a slow client holds up no change of the image while it receives.
   *
   * @throws IOException only when the client went away
   */
  void read(VirtualDisk disk, ByteRanges.Span span, DataSink answer) throws IOException {
    ByteBuffer buffer = buffers.acquire(span.lengthBytes());
    int bufferBytes = buffer.limit();
    long position = span.offsetBytes();
    long end = position + span.lengthBytes();
    try {
      while (position < end) {
        int n = (int) Math.min(bufferBytes, end - position);
        buffer.clear().limit(n);
        disk.read(position, buffer);
        answer.write(buffer.flip());
        position += n;
      }
    } finally {
      buffers.release(buffer);
    }
  }

  /**
   * Sends {@code span} of the disk as {@code answer}'s body with a {@code Content-Digest} of
   * exactly those bytes (RFC 9530). The header goes out before the body, and the body streams and
   * is never held whole, so a span longer than one buffer is read twice: once for the digest, then
   * again as it is sent, hashed again on the way. A write between the two reads would leave the
   * body unlike its header. The last buffer is therefore held back until the second digest is
   * known: when the two differ it is never sent, so the client cannot take the body for whole. A
   * span that fits in one buffer is read once, and its digest taken from the bytes that are sent.
   *
   * @return false when the span changed between the two reads: the answer is started and flushed
   *     short of its length, and the caller must have the connection closed
   * @throws IOException only when the client went away
   */
  boolean read(VirtualDisk disk, ByteRanges.Span span, DataSink answer, DigestAlgorithm algorithm)
      throws IOException {
    ByteBuffer buffer = buffers.acquire(span.lengthBytes());
    int bufferBytes = buffer.limit();
    MessageDigest digest = algorithm.newDigest();
    long end = span.offsetBytes() + span.lengthBytes();
    try {
      if (span.lengthBytes() <= bufferBytes) {
        readPiece(disk, span.offsetBytes(), buffer, (int) span.lengthBytes());
        hash(digest, buffer);
        answer.contentDigest(ContentDigests.format(algorithm, digest.digest()));
        answer.write(buffer);
        return true;
      }
      for (long position = span.offsetBytes(); position < end; ) {
        int n = (int) Math.min(bufferBytes, end - position);
        readPiece(disk, position, buffer, n);
        hash(digest, buffer);
        position += n;
      }
      byte[] announced = digest.digest();
      answer.contentDigest(ContentDigests.format(algorithm, announced));
      for (long position = span.offsetBytes(); position < end; ) {
        int n = (int) Math.min(bufferBytes, end - position);
        readPiece(disk, position, buffer, n);
        hash(digest, buffer);
        position += n;
        if (position == end && !MessageDigest.isEqual(digest.digest(), announced)) {
          answer.flush();
          return false;
        }
        answer.write(buffer);
      }
      return true;
    } finally {
      buffers.release(buffer);
    }
  }

  /** Reads {@code lengthBytes} at {@code offsetBytes} into {@code buffer}, ready to be drained. */
  private static void readPiece(
      VirtualDisk disk, long offsetBytes, ByteBuffer buffer, int lengthBytes) {
    buffer.clear().limit(lengthBytes);
    disk.read(offsetBytes, buffer);
    buffer.flip();
  }

  /** Adds the remaining bytes of {@code data} to {@code digest}; its position stays. */
  private static void hash(MessageDigest digest, ByteBuffer data) {
    int position = data.position();
    digest.update(data);
    data.position(position);
  }

  /**
   * Writes the body read from {@code in} into {@code span}, then flushes unless told not to. Every
   * check (the expected version, read-only, range, space) runs before the first byte is taken, so a
   * refused write leaves the image as it was. A body that ends early or holds more than the span is
   * answered as invalid. A body of up to a buffer ({@code fvdisk.io-buffer-size}) is then not
   * written at all; of a longer one, the pieces of a buffer each that arrived before the fault was
   * seen are written (a write cut short).
   *
   * @param expected the version an {@code If-Match} asks for; the image is then held exclusively
   *     until the caller closes {@code disk}
   * @throws IOException only when reading the body fails (the client went away)
   */
  void write(
      VirtualDisk disk,
      ByteRanges.Span span,
      ReadableByteChannel in,
      @Nullable ExpectedVersion expected,
      boolean flush)
      throws IOException {
    // The buffer before the hold: see IoBuffers.
    ByteBuffer buffer = buffers.acquire(span.lengthBytes());
    try {
      if (expected != null) {
        disk.holdExclusively(expected);
      }
      disk.checkWrite(span.offsetBytes(), span.lengthBytes());
      copy(in, buffer, disk, span);
      if (flush) {
        disk.flush();
      }
    } finally {
      buffers.release(buffer);
    }
  }

  /**
   * Writes the body read from {@code in} into {@code span} as {@link #write(VirtualDisk,
   * ByteRanges.Span, ReadableByteChannel, ExpectedVersion, boolean)} does, but only once the whole
   * body is known to match {@code digests}: it is staged first (see {@link StagedWrite}), and a
   * body that does not match, or ends early, leaves the image as it was.
   *
   * @throws DigestMismatchException when the body does not match its digests
   */
  void write(
      VirtualDisk disk,
      ByteRanges.Span span,
      ReadableByteChannel in,
      @Nullable ExpectedVersion expected,
      boolean flush,
      ExpectedDigests digests,
      StagingArea staging) {
    ByteBuffer buffer = buffers.acquire(span.lengthBytes());
    try {
      new StagedWrite(disk, span, buffer, digests).write(in, staging, expected, flush);
    } finally {
      buffers.release(buffer);
    }
  }

  private static void copy(
      ReadableByteChannel in, ByteBuffer buffer, VirtualDisk disk, ByteRanges.Span span)
      throws IOException {
    int bufferBytes = buffer.limit();
    long offset = span.offsetBytes();
    long length = span.lengthBytes();
    long position = offset;
    long end = offset + length;
    // One byte past the announced length tells a body that is too long; it is looked for before
    // the last piece is written, so a body of up to a buffer that is refused writes nothing.
    ByteBuffer past = ByteBuffer.allocate(1);
    do {
      buffer.clear().limit((int) Math.min(bufferBytes, end - position));
      boolean ended;
      boolean tooLong;
      try {
        ended = fill(in, buffer);
        tooLong = !ended && position + buffer.position() == end && in.read(past) > 0;
      } catch (IOException e) {
        throw bodyCutShort(
            disk, length, position - offset + buffer.position(), position - offset, e);
      }
      if (ended) {
        // What arrived of this piece is not written: only whole pieces are.
        throw bodyCutShort(
            disk, length, position - offset + buffer.position(), position - offset, null);
      }
      if (tooLong) {
        throw new InvalidRequestException(
            "the body is longer than the "
                + length
                + " bytes announced"
                + (position == offset
                    ? "; nothing was written"
                    : "; the first " + (position - offset) + " bytes were written"));
      }
      int n = buffer.flip().remaining();
      if (n > 0) {
        disk.write(position, buffer, Durability.BUFFERED);
        position += n;
      }
    } while (position < end);
  }

  /**
   * A write whose body ended before its announced length: the client closed the connection, or the
   * body was shorter than its {@code Content-Range}. Only the pieces that arrived whole, a buffer
   * each, were written (each sector holds its old or its new content); a body of up to a buffer
   * that ends early writes nothing.
   */
  private static InvalidRequestException bodyCutShort(
      VirtualDisk disk, long announced, long received, long written, @Nullable IOException cause) {
    return new InvalidRequestException(
        "the body ended after "
            + received
            + " of the "
            + announced
            + " bytes announced"
            + (cause == null ? "" : " (the connection broke off)")
            + "; the first "
            + written
            + " bytes were written to image \""
            + disk.name()
            + "\"");
  }

  /** Reads from {@code in} until {@code buffer} is full; true when the body ended first. */
  static boolean fill(ReadableByteChannel in, ByteBuffer buffer) throws IOException {
    while (buffer.hasRemaining()) {
      if (in.read(buffer) < 0) {
        return true;
      }
    }
    return false;
  }
}
