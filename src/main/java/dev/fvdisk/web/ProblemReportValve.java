package dev.fvdisk.web;

import java.io.IOException;
import java.io.Writer;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.catalina.connector.Request;
import org.apache.catalina.connector.Response;
import org.apache.catalina.valves.ErrorReportValve;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.http.ProblemDetail;
import tools.jackson.databind.json.JsonMapper;

/**
 * Answers the errors Tomcat finds before the application sees a request (a path that cannot be
 * decoded, an encoded slash, request headers over the size limit) as RFC 9457 problems, like every
 * other error, in place of Tomcat's HTML page. Errors that reach the application never get here:
 * {@link ProblemAdvice} and {@link ProblemErrorController} answer them.
 *
 * <p>Tomcat's host creates it by class name ({@code WebConfiguration} names it), hence public.
 */
public class ProblemReportValve extends ErrorReportValve {

  private static final JsonMapper JSON = JsonMapper.builder().build();
  private static final String OFFERED = ProblemReportValve.class.getName() + ".problem";

  /**
   * Leaves the application's problem for a request whose answer the container took over (a body
   * that broke off while it was read), so that the container's error answer says what happened.
   */
  static void offer(jakarta.servlet.http.HttpServletRequest request, ProblemDetail problem) {
    request.setAttribute(OFFERED, problem);
  }

  @Override
  protected void report(Request request, Response response, Throwable throwable) {
    int status = response.getStatus();
    if (status < 400 || response.getContentWritten() > 0 || !response.setErrorReported()) {
      return;
    }
    Map<String, Object> problem = new LinkedHashMap<>();
    if (request.getAttribute(OFFERED) instanceof ProblemDetail offered
        && offered.getStatus() == status) {
      problem.put("type", String.valueOf(offered.getType()));
      problem.put("title", offered.getTitle());
      problem.put("status", status);
      problem.put("detail", offered.getDetail());
      problem.put("instance", String.valueOf(offered.getInstance()));
      write(response, problem);
      return;
    }
    ProblemType type = ProblemType.ofStatus(status);
    if (type != null) {
      problem.put("type", type.type().toString());
      problem.put("title", type.title());
    } else {
      HttpStatus known = HttpStatus.resolve(status);
      problem.put("type", "about:blank");
      problem.put("title", known == null ? "Error " + status : known.getReasonPhrase());
    }
    problem.put("status", status);
    problem.put("detail", detail(status, response.getMessage()));
    write(response, problem);
  }

  private static void write(Response response, Map<String, Object> problem) {
    try {
      response.setContentType(MediaType.APPLICATION_PROBLEM_JSON_VALUE);
      response.setCharacterEncoding("UTF-8");
      Writer writer = response.getReporter();
      if (writer != null) {
        writer.write(JSON.writeValueAsString(problem));
        response.finishResponse();
      }
    } catch (IOException | IllegalStateException e) {
      // The client is gone or the answer cannot be written any more: nothing to tell anyone.
    }
  }

  private static String detail(int status, String message) {
    String reason =
        switch (status) {
          case 400 ->
              "the request line cannot be processed (an undecodable or encoded-slash path, or a"
                  + " malformed header)";
          case 431 -> "the request headers are larger than the server accepts";
          default -> "the request cannot be processed";
        };
    return message == null || message.isBlank() ? reason : reason + ": " + message;
  }
}
