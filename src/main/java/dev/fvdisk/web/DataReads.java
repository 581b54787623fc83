package dev.fvdisk.web;

import dev.fvdisk.service.VirtualDisk;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.HttpStatus;

/**
 * Answers reads of a {@link VirtualDisk}'s bytes: {@code HEAD}, a {@code GET} of the whole disk or
 * of one {@code Range}, and a span the caller worked out (a run of sectors), each with a {@code
 * Content-Digest} when the request wants one. {@link DataController} answers an image's data with
 * it and {@link SnapshotsController} a snapshot's, so the two answer alike; the headers and body
 * are {@link DataAnswer}'s, the streaming {@link DiskStreams}'.
 */
final class DataReads {

  private static final Logger log = LoggerFactory.getLogger(DataReads.class);

  private final DiskStreams streams;

  DataReads(DiskStreams streams) {
    this.streams = streams;
  }

  /** The size and validators of the disk, without a body. */
  void head(VirtualDisk disk, HttpServletResponse response) {
    DataState state = DataState.of(disk);
    DataAnswer.dataHeaders(response, state);
    response.setContentLengthLong(state.sizeBytes());
    response.setStatus(HttpStatus.OK.value());
  }

  /** The whole disk (200), or the one range {@code range} asks for (206). */
  void get(
      VirtualDisk disk,
      @Nullable String range,
      HttpServletRequest request,
      HttpServletResponse response)
      throws IOException {
    DataState state = DataState.of(disk);
    ByteRanges.Span span = ByteRanges.parseRange(range, state.sizeBytes());
    if (span == null) {
      ByteRanges.Span whole = new ByteRanges.Span(0, state.sizeBytes());
      send(disk, whole, DataAnswer.ok(response, state, whole), request);
    } else {
      send(disk, span, DataAnswer.range(response, state, span), request);
    }
  }

  /** Sends the span, with a {@code Content-Digest} when the request wants one. */
  void send(VirtualDisk disk, ByteRanges.Span span, DataAnswer answer, HttpServletRequest request)
      throws IOException {
    DigestAlgorithm digest = ContentDigests.wanted(request);
    if (digest == null) {
      streams.read(disk, span, answer);
    } else if (!streams.read(disk, span, answer, digest)) {
      // A write changed the span between the digest's read and the body's: the body sent so far
      // stops short of its length, and closing the connection tells the client so.
      log.debug(
          "{} {}: the data changed while it was read for its {} digest; the answer is cut short",
          request.getMethod(),
          request.getRequestURI(),
          digest.key());
      CutShortAnswerFilter.mark(
          request, new IOException("the data changed while it was read for its digest"));
      return;
    }
    answer.finish();
  }
}
