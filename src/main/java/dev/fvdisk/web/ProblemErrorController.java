package dev.fvdisk.web;

import jakarta.servlet.RequestDispatcher;
import jakarta.servlet.http.HttpServletRequest;
import java.net.URI;
import org.springframework.boot.webmvc.error.ErrorController;
import org.springframework.http.MediaType;
import org.springframework.http.ProblemDetail;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

/**
 * Replaces Boot's error page: errors that never reach a controller (thrown by a filter, or sent
 * with {@code sendError}) are forwarded here by the container and answered as problems too.
 */
@RestController
class ProblemErrorController implements ErrorController {

  @RequestMapping("${server.error.path:${error.path:/error}}")
  ResponseEntity<ProblemDetail> error(HttpServletRequest request) {
    Object code = request.getAttribute(RequestDispatcher.ERROR_STATUS_CODE);
    // Asked for directly (no error behind it), the error path is just a path that holds nothing.
    int status = code instanceof Integer i ? i : 404;
    if (status < 400) {
      status = 500;
    }
    ProblemDetail problem = ProblemDetail.forStatus(status);
    ProblemType type = ProblemType.ofStatus(status);
    if (type != null) {
      problem.setType(type.type());
      problem.setTitle(type.title());
    }
    problem.setDetail(
        status == 404 ? "no resource at this path" : "the request could not be processed");
    Object path = request.getAttribute(RequestDispatcher.ERROR_REQUEST_URI);
    problem.setInstance(URI.create(path instanceof String p ? p : request.getRequestURI()));
    return ResponseEntity.status(status)
        .contentType(MediaType.APPLICATION_PROBLEM_JSON)
        .body(problem);
  }
}
