package dev.fvdisk.web;

import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.ServletResponseWrapper;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.ByteBuffer;
import org.jspecify.annotations.Nullable;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;

/**
 * The answer to a read of image data: a whole disk (200), a byte range (206 with {@code
 * Content-Range}) or a run of sectors (200), with a {@code Content-Digest} when one was asked for.
 * The status and headers are set with the first bytes, so a read that fails before it has any
 * leaves the response untouched for a problem answer.
 */
final class DataAnswer implements DataSink {

  /** Whether a stream class inherits the servlet API's copying {@code write(ByteBuffer)}. */
  private static final ClassValue<Boolean> COPIES_BYTE_BUFFERS =
      new ClassValue<>() {
        @Override
        protected Boolean computeValue(Class<?> type) {
          try {
            return type.getMethod("write", ByteBuffer.class).getDeclaringClass()
                == ServletOutputStream.class;
          } catch (NoSuchMethodException impossible) {
            throw new IllegalStateException(impossible);
          }
        }
      };

  private final HttpServletResponse response;
  private final DataState image;
  private final long lengthBytes;
  private final @Nullable String contentRange;
  private @Nullable String contentDigest;
  private @Nullable ServletOutputStream body;

  private DataAnswer(
      HttpServletResponse response,
      DataState image,
      long lengthBytes,
      @Nullable String contentRange) {
    this.response = response;
    this.image = image;
    this.lengthBytes = lengthBytes;
    this.contentRange = contentRange;
  }

  /** A 200 answer: the whole disk, or a run of sectors. */
  static DataAnswer ok(HttpServletResponse response, DataState image, ByteRanges.Span span) {
    return new DataAnswer(response, image, span.lengthBytes(), null);
  }

  /** A 206 answer with its {@code Content-Range}. */
  static DataAnswer range(HttpServletResponse response, DataState image, ByteRanges.Span span) {
    return new DataAnswer(
        response,
        image,
        span.lengthBytes(),
        "bytes " + span.offsetBytes() + "-" + span.lastByte() + "/" + image.sizeBytes());
  }

  /** The headers every answer about an image's data carries, {@code HEAD}'s included. */
  static void dataHeaders(HttpServletResponse response, DataState image) {
    response.setContentType(MediaType.APPLICATION_OCTET_STREAM_VALUE);
    response.setHeader(HttpHeaders.ACCEPT_RANGES, "bytes");
    response.setHeader(HttpHeaders.ETAG, EntityTags.quote(image.etag()));
  }

  @Override
  public void contentDigest(String field) {
    if (body != null) {
      throw new IllegalStateException("the answer has started; its headers are out");
    }
    contentDigest = field;
  }

  /** Whether the status and headers are set and bytes may have gone out. */
  boolean started() {
    return body != null;
  }

  @Override
  public void write(ByteBuffer data) throws IOException {
    ServletOutputStream out = body;
    if (out == null) {
      out = start();
    }
    out.write(data);
  }

  /**
   * Sends the status, the headers and every byte written so far, starting the answer if need be. An
   * answer that is to stop short of its length must be sent this far before the connection is
   * closed: the container closes only connections whose answer is committed ({@link
   * CutShortAnswerFilter}), and would otherwise complete a short answer as if it were whole.
   */
  @Override
  public void flush() throws IOException {
    ServletOutputStream out = body;
    if (out == null) {
      out = start();
    }
    out.flush();
  }

  /** Completes an answer whose read delivered no bytes, which has no body then. */
  void finish() throws IOException {
    if (body == null) {
      start();
    }
  }

  private ServletOutputStream start() throws IOException {
    response.setStatus(
        contentRange == null ? HttpStatus.OK.value() : HttpStatus.PARTIAL_CONTENT.value());
    dataHeaders(response, image);
    if (contentRange != null) {
      response.setHeader(HttpHeaders.CONTENT_RANGE, contentRange);
    }
    if (contentDigest != null) {
      response.setHeader(ContentDigests.CONTENT_DIGEST, contentDigest);
    }
    response.setContentLengthLong(lengthBytes);
    ServletOutputStream out = bodyStream(response);
    body = out;
    return out;
  }

  /**
   * The stream the bytes go to. Spring MVC hands a controller a response wrapped for its async
   * lifecycle, and that wrapper's stream inherits the servlet API's {@code write(ByteBuffer)},
   * which copies every buffer into a new array: a 1 MiB allocation, zeroing and copy per 1 MiB
   * read. The container's own stream sends direct buffers straight to the socket. Wrappers are
   * skipped only while their stream would copy; their checks guard asynchronous requests, and a
   * read is answered on the calling thread. (Spring Security's header writer wraps responses too
   * unless it writes its headers up front, which SecurityConfiguration makes it do.)
   */
  private static ServletOutputStream bodyStream(ServletResponse response) throws IOException {
    ServletResponse current = response;
    while (current instanceof ServletResponseWrapper wrapper
        && COPIES_BYTE_BUFFERS.get(current.getOutputStream().getClass())) {
      current = wrapper.getResponse();
    }
    return current.getOutputStream();
  }
}
