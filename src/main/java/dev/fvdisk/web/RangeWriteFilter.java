package dev.fvdisk.web;

import dev.fvdisk.service.Access;
import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.VirtualDisk;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpFilter;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import org.jspecify.annotations.Nullable;
import org.springframework.http.HttpHeaders;
import org.springframework.http.MediaType;
import org.springframework.web.filter.ServerHttpObservationFilter;
import org.springframework.web.servlet.HandlerExceptionResolver;

/**
 * Answers {@code PUT /api/v1/images/{name}/data} with a {@code Content-Range}, the write
 * hypervisors and importers send most, before it reaches Spring MVC; {@link DataController#write}
 * answers every other write and every one this filter is not sure about.
 *
 * <p>Why: in a profile of 4 KiB writes, Spring MVC's handler lookup, argument resolution and
 * return-value handling were a third of the request thread's time, and fvdisk's own code 7%
 * (docs/performance.md, "Issue 22's targets"). It runs after Spring Security's filter chain, as
 * {@link RangeReadFilter} does, so authentication, authorization and security headers apply as to
 * any request.
 *
 * <p>The answer is the controller's: the same parsing ({@link ByteRanges}), limits, streaming
 * ({@link DiskStreams}) and {@code 204} with the image's entity tag. What this filter takes has
 * none of the controller's options: no {@code If-Match}, no {@code Content-Digest}, a body of
 * {@code application/octet-stream} (parameters allowed) with a {@code Content-Length}, and a query
 * of nothing, {@code flush=true} or {@code flush=false}. Until the body is touched, anything
 * refused (a missing or failed image, a bad range, a write over the limit) goes on down the chain
 * untouched, and the controller gives the problem answer. Once reading has begun there is no going
 * back, so a failure then is answered here through the same {@link HandlerExceptionResolver} the
 * controller's exceptions go to.
 */
class RangeWriteFilter extends HttpFilter {

  private final transient ImageService images;
  private final transient DiskStreams streams;
  private final transient HandlerExceptionResolver problems;

  RangeWriteFilter(ImageService images, DiskStreams streams, HandlerExceptionResolver problems) {
    this.images = images;
    this.streams = streams;
    this.problems = problems;
  }

  @Override
  protected void doFilter(
      HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws IOException, ServletException {
    String name = nameIfTaken(request);
    Boolean flush = name == null ? null : flushOf(request.getQueryString());
    if (name == null
        || flush == null
        || !answer(name, request.getHeader(HttpHeaders.CONTENT_RANGE), flush, request, response)) {
      chain.doFilter(request, response);
    }
  }

  /** The image of a write this filter tries to answer, or null. */
  private static @Nullable String nameIfTaken(HttpServletRequest request) {
    return request.getHeader(HttpHeaders.CONTENT_RANGE) != null
            && request.getContentLengthLong() >= 0
            && request.getHeader(HttpHeaders.TRANSFER_ENCODING) == null
            && request.getHeader(HttpHeaders.IF_MATCH) == null
            && request.getHeader(ContentDigests.CONTENT_DIGEST) == null
            && isOctetStream(request.getContentType())
        ? RangeReadFilter.plainImageName(request, "PUT")
        : null;
  }

  /**
   * Whether the body is {@code application/octet-stream}, with or without parameters (clients such
   * as REST Assured add a charset), as the controller's {@code consumes} takes it.
   */
  private static boolean isOctetStream(@Nullable String contentType) {
    return contentType != null
        && isMediaType(contentType, MediaType.APPLICATION_OCTET_STREAM_VALUE);
  }

  /** Whether {@code contentType} is {@code type}, in any case, with or without parameters. */
  static boolean isMediaType(String contentType, String type) {
    if (!contentType.regionMatches(true, 0, type, 0, type.length())) {
      return false;
    }
    if (contentType.length() == type.length()) {
      return true;
    }
    char next = contentType.charAt(type.length());
    return next == ';' || next == ' ' || next == '\t';
  }

  /** The {@code flush} of a query this filter takes; null for any other query. */
  static @Nullable Boolean flushOf(@Nullable String query) {
    if (query == null || query.equals("flush=true")) {
      return Boolean.TRUE;
    }
    return query.equals("flush=false") ? Boolean.FALSE : null;
  }

  /**
   * Writes the body as the controller would; false, with nothing read and the attachment closed,
   * when the request must go on to the controller.
   */
  private boolean answer(
      String name,
      String contentRange,
      boolean flush,
      HttpServletRequest request,
      HttpServletResponse response)
      throws IOException, ServletException {
    VirtualDisk disk;
    try {
      disk = images.attach(name, Access.READ_WRITE);
    } catch (RuntimeException refused) {
      return false;
    }
    try (disk) {
      ByteRanges.Span span;
      try {
        span =
            ByteRanges.parseWrite(contentRange, request.getContentLengthLong(), disk.sizeBytes());
      } catch (RuntimeException refused) {
        return false;
      }
      Long maxWriteBytes = images.limits().maxWriteBytes();
      if (maxWriteBytes != null && span.lengthBytes() > maxWriteBytes) {
        return false;
      }
      ServerHttpObservationFilter.findObservationContext(request)
          .ifPresent(context -> context.setPathPattern(RangeReadFilter.PATTERN));
      try {
        streams.write(disk, span, new ServletBody(request.getInputStream()), null, flush);
      } catch (RuntimeException | IOException failure) {
        if (problems.resolveException(request, response, null, failure) == null) {
          throw new ServletException("unanswered failure of a write to " + name, failure);
        }
        return true;
      }
      response.setStatus(HttpServletResponse.SC_NO_CONTENT);
      response.setHeader(HttpHeaders.ETAG, EntityTags.quote(disk.version()));
      return true;
    }
  }
}
