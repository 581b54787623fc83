package dev.fvdisk.web;

import dev.fvdisk.service.Access;
import dev.fvdisk.service.ImageService;
import dev.fvdisk.service.VirtualDisk;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpFilter;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Objects;
import org.jspecify.annotations.Nullable;
import org.springframework.http.HttpHeaders;
import org.springframework.web.filter.ServerHttpObservationFilter;

/**
 * Answers {@code GET /api/v1/images/{name}/data} with a {@code Range} header, the request
 * hypervisors send most, before it reaches Spring MVC; {@link DataController#read} answers
 * everything else and every request this filter is not sure about.
 *
 * <p>Why: a 4 KiB read spent some 90 µs of CPU in the servlet stack, a third of it in Spring MVC's
 * handler lookup, argument resolution and wrappers, and 6% in fvdisk. Answering here brings it to
 * about 60 µs (docs/performance.md, "The HTTP level"). It runs after Spring Security's filter
 * chain, so authentication, authorization and security headers apply as to any request, and {@code
 * http.server.requests} records it through {@link DataReadTimingFilter}.
 *
 * <p>The answer is the controller's, byte for byte: both parse the range with {@link ByteRanges}
 * and answer through {@link DataAnswer}. When the image is missing or failed, the range is bad, the
 * path is anything but plain, or the read fails before its first byte, the request goes on down the
 * chain untouched, and the controller gives the problem answer. A read with {@code
 * Want-Content-Digest} goes on to the controller too, which computes the digest.
 */
class RangeReadFilter extends HttpFilter {

  static final String PATTERN = "/api/v1/images/{name}/data";
  private static final String PREFIX = "/api/v1/images/";
  private static final String SUFFIX = "/data";

  /** The request attribute that holds {@link #nameIfTaken}'s answer once it is known. */
  private static final String TAKEN = RangeReadFilter.class.getName() + ".taken";

  private final transient ImageService images;
  private final transient DiskStreams streams;

  RangeReadFilter(ImageService images, DiskStreams streams) {
    this.images = images;
    this.streams = streams;
  }

  @Override
  protected void doFilter(
      HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws IOException, ServletException {
    String name = nameIfTaken(request);
    if (name == null
        || !answer(
            name,
            Objects.requireNonNull(request.getHeader(HttpHeaders.RANGE), "taken for its range"),
            request,
            response)) {
      chain.doFilter(request, response);
    }
  }

  /** Whether this filter tries to answer the request: a plain ranged {@code GET} of image data. */
  static boolean takes(HttpServletRequest request) {
    return nameIfTaken(request) != null;
  }

  /**
   * The image of a request this filter tries to answer, or null. A read that wants a digest is left
   * to the controller, so this path stays as lean as it is.
   */
  private static @Nullable String nameIfTaken(HttpServletRequest request) {
    // Asked three times per read (observation predicate, timing filter, this filter): the answer
    // is kept on the request, the empty string meaning "not taken" (no image has an empty name).
    if (request.getAttribute(TAKEN) instanceof String known) {
      return known.isEmpty() ? null : known;
    }
    String name =
        request.getHeader(HttpHeaders.RANGE) != null
                && request.getHeader(ContentDigests.WANT_CONTENT_DIGEST) == null
                && request.getQueryString() == null
                && request.getContentLengthLong() <= 0
                && request.getHeader(HttpHeaders.TRANSFER_ENCODING) == null
            ? plainImageName(request, "GET")
            : null;
    request.setAttribute(TAKEN, name == null ? "" : name);
    return name;
  }

  /**
   * Answers the read as the controller would; false, with the response untouched and the attachment
   * closed, when the request must go on to the controller.
   */
  private boolean answer(
      String name, String range, HttpServletRequest request, HttpServletResponse response)
      throws IOException {
    VirtualDisk disk;
    try {
      disk = images.attach(name, Access.READ_ONLY);
    } catch (RuntimeException refused) {
      return false;
    }
    try (disk) {
      DataState image;
      ByteRanges.@Nullable Span span;
      try {
        image = DataState.of(disk);
        span = ByteRanges.parseRange(range, image.sizeBytes());
      } catch (RuntimeException refused) {
        return false;
      }
      ServerHttpObservationFilter.findObservationContext(request)
          .ifPresent(context -> context.setPathPattern(PATTERN));
      DataAnswer answer =
          DataAnswer.range(
              response, image, Objects.requireNonNull(span, "a Range header gives a span"));
      try {
        streams.read(disk, span, answer);
      } catch (RuntimeException | IOException failure) {
        if (answer.started()) {
          CutShortAnswerFilter.mark(request, failure);
          return true;
        }
        return false;
      }
      answer.finish();
      return true;
    }
  }

  /**
   * The image named by a plain {@code method} request of {@code /api/v1/images/{name}/data}: no
   * encoded or dot segments, no path parameters, nothing Spring MVC could read differently. Each
   * filter checks the headers and body of what it takes itself.
   */
  static @Nullable String plainImageName(HttpServletRequest request, String method) {
    if (request.getDispatcherType() != DispatcherType.REQUEST
        || !method.equals(request.getMethod())) {
      return null;
    }
    String uri = request.getRequestURI();
    int start = request.getContextPath().length() + PREFIX.length();
    int end = uri.length() - SUFFIX.length();
    if (start > end || !uri.startsWith(PREFIX, start - PREFIX.length()) || !uri.endsWith(SUFFIX)) {
      return null;
    }
    return plainName(uri.substring(start, end));
  }

  /**
   * {@code segment} when it is a plain image name segment: not empty, no slash, no encoding, no
   * path parameter, not a dot segment; else null. The data port applies the same rule.
   */
  static @Nullable String plainName(String segment) {
    for (int i = 0; i < segment.length(); i++) {
      char c = segment.charAt(i);
      if (c == '/' || c == '%' || c == ';') {
        return null;
      }
    }
    return segment.isEmpty() || segment.equals(".") || segment.equals("..") ? null : segment;
  }
}
