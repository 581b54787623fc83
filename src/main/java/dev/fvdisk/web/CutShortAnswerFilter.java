package dev.fvdisk.web;

import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpFilter;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import org.apache.catalina.connector.ClientAbortException;

/**
 * Closes the connection of an exchange whose answer stopped part-way: the image was deleted during
 * a long read, or reading it failed after the first bytes went out. The answer promised a {@code
 * Content-Length}; without the close the client would wait for the rest until the keep-alive
 * timeout, and then take a short body for a whole one if it does not count.
 *
 * <p>Whoever finds the answer cut short {@linkplain #mark marks} the request; this filter, the
 * outermost, then leaves the request with Tomcat's {@link ClientAbortException}, which makes Tomcat
 * close the connection at once without logging a failure. (Spring MVC treats that exception as
 * handled when an exception handler throws it, so it cannot be thrown from there.)
 */
class CutShortAnswerFilter extends HttpFilter {

  private static final String CAUSE = CutShortAnswerFilter.class.getName() + ".cause";

  /** Asks for the connection to be closed once the request leaves the application. */
  static void mark(HttpServletRequest request, Throwable cause) {
    request.setAttribute(CAUSE, cause);
  }

  @Override
  protected void doFilter(
      HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws IOException, ServletException {
    chain.doFilter(request, response);
    if (request.getAttribute(CAUSE) instanceof Throwable cause && response.isCommitted()) {
      throw new ClientAbortException(cause);
    }
  }
}
