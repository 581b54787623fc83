package dev.fvdisk.web;

import jakarta.servlet.FilterChain;
import jakarta.servlet.ReadListener;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletInputStream;
import jakarta.servlet.http.HttpFilter;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletRequestWrapper;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import org.springframework.http.MediaType;
import org.springframework.web.servlet.HandlerExceptionResolver;

/**
 * Holds JSON request bodies to {@code fvdisk.max-json-body}, whether or not they announce their
 * length. A body whose {@code Content-Length} is over the limit is refused with 413 before a byte
 * is read; a body without one ({@code Transfer-Encoding: chunked}) is counted as it is read, and
 * reading past the limit fails with the same 413, so a JSON body never takes more memory than the
 * limit. Other bodies (image data) stream and have limits of their own.
 */
class JsonBodyLimitFilter extends HttpFilter {

  private final long maxBytes;
  private final transient HandlerExceptionResolver problems;

  JsonBodyLimitFilter(long maxBytes, HandlerExceptionResolver problems) {
    this.maxBytes = maxBytes;
    this.problems = problems;
  }

  @Override
  protected void doFilter(
      HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws IOException, ServletException {
    if (!isJson(request.getContentType())) {
      chain.doFilter(request, response);
      return;
    }
    long length = request.getContentLengthLong();
    if (length > maxBytes) {
      problems.resolveException(
          request, response, null, new PayloadTooLargeException(length, maxBytes));
      return;
    }
    chain.doFilter(new LimitedBody(request, maxBytes), response);
  }

  static boolean isJson(String contentType) {
    // Every data PUT passes here: only a type that names JSON at all is worth parsing.
    if (contentType == null || !containsJson(contentType)) {
      return false;
    }
    try {
      MediaType type = MediaType.parseMediaType(contentType);
      return type.getSubtype().equals("json") || type.getSubtype().endsWith("+json");
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  private static boolean containsJson(String contentType) {
    for (int i = 0; i + 4 <= contentType.length(); i++) {
      if (contentType.regionMatches(true, i, "json", 0, 4)) {
        return true;
      }
    }
    return false;
  }

  /** The request with a body stream that refuses to read past the limit. */
  private static final class LimitedBody extends HttpServletRequestWrapper {
    private final long maxBytes;
    private ServletInputStream limited;

    LimitedBody(HttpServletRequest request, long maxBytes) {
      super(request);
      this.maxBytes = maxBytes;
    }

    @Override
    public ServletInputStream getInputStream() throws IOException {
      if (limited == null) {
        limited = new LimitedStream(super.getInputStream(), maxBytes);
      }
      return limited;
    }
  }

  private static final class LimitedStream extends ServletInputStream {
    private final ServletInputStream in;
    private final long maxBytes;
    private long read;

    LimitedStream(ServletInputStream in, long maxBytes) {
      this.in = in;
      this.maxBytes = maxBytes;
    }

    @Override
    public int read() throws IOException {
      int b = in.read();
      if (b >= 0) {
        count(1);
      }
      return b;
    }

    @Override
    public int read(byte[] buffer, int offset, int length) throws IOException {
      // At most one byte past the limit is read: enough to know the body is too long.
      int n = in.read(buffer, offset, (int) Math.min(length, maxBytes - read + 1));
      if (n > 0) {
        count(n);
      }
      return n;
    }

    private void count(int n) {
      read += n;
      if (read > maxBytes) {
        throw PayloadTooLargeException.withoutLength(maxBytes);
      }
    }

    @Override
    public boolean isFinished() {
      return in.isFinished();
    }

    @Override
    public boolean isReady() {
      return in.isReady();
    }

    @Override
    public void setReadListener(ReadListener listener) {
      in.setReadListener(listener);
    }
  }
}
