package dev.fvdisk.web;

import dev.fvdisk.service.DataState;
import dev.fvdisk.service.ImageService;
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
 * about 60 µs (docs/performance.md, "The HTTP level"). It runs after Spring Security's filter chain
 * and the metrics filter, so authentication, authorization, security headers and {@code
 * http.server.requests} apply as to any request.
 *
 * <p>The answer is the controller's, byte for byte: both parse the range with {@link ByteRanges}
 * and answer through {@link DataAnswer}. When the image is missing or failed, the range is bad, the
 * path is anything but plain, or the read fails before its first byte, the request goes on down the
 * chain untouched, and the controller gives the problem answer.
 */
class RangeReadFilter extends HttpFilter {

  private static final String PATTERN = "/api/v1/images/{name}/data";
  private static final String PREFIX = "/api/v1/images/";
  private static final String SUFFIX = "/data";

  private final transient ImageService images;

  RangeReadFilter(ImageService images) {
    this.images = images;
  }

  @Override
  protected void doFilter(
      HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws IOException, ServletException {
    String range = request.getHeader(HttpHeaders.RANGE);
    String name = range == null ? null : plainImageName(request);
    if (name == null) {
      chain.doFilter(request, response);
      return;
    }
    DataState image;
    ByteRanges.@Nullable Span span;
    try {
      image = images.dataState(name);
      span = ByteRanges.parseRange(range, image.sizeBytes());
    } catch (RuntimeException refused) {
      chain.doFilter(request, response);
      return;
    }
    ServerHttpObservationFilter.findObservationContext(request)
        .ifPresent(context -> context.setPathPattern(PATTERN));
    DataAnswer answer =
        DataAnswer.range(
            response, image, Objects.requireNonNull(span, "a Range header gives a span"));
    try {
      images.read(name, span.offsetBytes(), span.lengthBytes(), answer);
    } catch (RuntimeException | IOException failure) {
      if (answer.started()) {
        CutShortAnswerFilter.mark(request, failure);
        return;
      }
      chain.doFilter(request, response);
      return;
    }
    answer.finish();
  }

  /**
   * The image named by a plain {@code GET} of {@code /api/v1/images/{name}/data}: no query, no
   * body, no encoded or dot segments, no path parameters, nothing Spring MVC could read
   * differently.
   */
  private static @Nullable String plainImageName(HttpServletRequest request) {
    if (request.getDispatcherType() != DispatcherType.REQUEST
        || !"GET".equals(request.getMethod())
        || request.getQueryString() != null
        || request.getContentLengthLong() > 0
        || request.getHeader(HttpHeaders.TRANSFER_ENCODING) != null) {
      return null;
    }
    String uri = request.getRequestURI();
    int start = request.getContextPath().length() + PREFIX.length();
    int end = uri.length() - SUFFIX.length();
    if (start > end || !uri.startsWith(PREFIX, start - PREFIX.length()) || !uri.endsWith(SUFFIX)) {
      return null;
    }
    String name = uri.substring(start, end);
    for (int i = 0; i < name.length(); i++) {
      char c = name.charAt(i);
      if (c == '/' || c == '%' || c == ';') {
        return null;
      }
    }
    return name.isEmpty() || name.equals(".") || name.equals("..") ? null : name;
  }
}
