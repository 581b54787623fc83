package dev.fvdisk.web;

import dev.fvdisk.service.InvalidRequestException;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpFilter;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import org.apache.tomcat.util.http.InvalidParameterException;
import org.springframework.http.MediaType;
import org.springframework.web.servlet.HandlerExceptionResolver;

/**
 * Refuses a request whose query string cannot be decoded ({@code ?%zz=1}, {@code ?a=%}, {@code
 * ?=x}) with a 400 problem, before anything else looks at it.
 *
 * <p>Why: since Servlet 6.1 the container's parameter methods throw on such a query string, and
 * they are first called deep inside whatever handles the request (a controller's {@code
 * RequestParam}, an actuator endpoint, a filter), where the exception became a 500 and a stack
 * trace in the log. Parsing once here, first, answers every path alike. A {@code POST} with a form
 * body is left alone: parsing its parameters would read the body before authentication; {@link
 * ProblemAdvice} answers those when a controller asks for a parameter.
 */
class QueryStringFilter extends HttpFilter {

  private final transient HandlerExceptionResolver problems;

  QueryStringFilter(HandlerExceptionResolver problems) {
    this.problems = problems;
  }

  @Override
  protected void doFilter(
      HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws IOException, ServletException {
    if (request.getQueryString() != null && !isFormPost(request)) {
      try {
        request.getParameterMap();
      } catch (InvalidParameterException e) {
        problems.resolveException(request, response, null, malformed());
        return;
      }
    }
    chain.doFilter(request, response);
  }

  /**
   * The client's mistake, in words. The container's own message is left out: it quotes the
   * parameter half-decoded and talks of ignoring it, while the request is refused.
   */
  static InvalidRequestException malformed() {
    return new InvalidRequestException(
        "the query string cannot be decoded: it must be name=value pairs joined by &, each name"
            + " non-empty and every %-escape a valid escape of UTF-8");
  }

  private static boolean isFormPost(HttpServletRequest request) {
    String type = request.getContentType();
    return "POST".equals(request.getMethod())
        && type != null
        && type.regionMatches(
            true,
            0,
            MediaType.APPLICATION_FORM_URLENCODED_VALUE,
            0,
            MediaType.APPLICATION_FORM_URLENCODED_VALUE.length());
  }
}
