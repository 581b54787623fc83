package dev.fvdisk.web;

import dev.fvdisk.service.ImageElsewhereException;
import dev.fvdisk.service.RangeOutsideDiskException;
import dev.fvdisk.service.ServiceException;
import dev.fvdisk.service.VersionMismatchException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.tomcat.util.http.InvalidParameterException;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.TypeMismatchException;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatusCode;
import org.springframework.http.ProblemDetail;
import org.springframework.http.ResponseEntity;
import org.springframework.http.converter.HttpMessageNotReadableException;
import org.springframework.security.access.AccessDeniedException;
import org.springframework.security.core.AuthenticationException;
import org.springframework.web.HttpRequestMethodNotSupportedException;
import org.springframework.web.bind.MissingServletRequestParameterException;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.RestControllerAdvice;
import org.springframework.web.context.request.ServletWebRequest;
import org.springframework.web.context.request.WebRequest;
import org.springframework.web.servlet.mvc.method.annotation.ResponseEntityExceptionHandler;
import tools.jackson.core.JacksonException;
import tools.jackson.core.exc.InputCoercionException;
import tools.jackson.core.exc.StreamReadException;
import tools.jackson.databind.exc.InvalidNullException;
import tools.jackson.databind.exc.MismatchedInputException;
import tools.jackson.databind.exc.UnrecognizedPropertyException;

/**
 * The one place errors become answers: RFC 9457 problems with our stable {@code type} URIs, a fixed
 * {@code title} per type, a precise {@code detail} and the request path as {@code instance}.
 * Spring's own errors (unreadable JSON, wrong method, missing parameter, unknown path) pass through
 * the inherited handlers and are re-typed here, so they look the same. 5xx answers are logged once
 * with the stack trace; 4xx only at debug level.
 */
@RestControllerAdvice
class ProblemAdvice extends ResponseEntityExceptionHandler {

  private static final Logger log = LoggerFactory.getLogger(ProblemAdvice.class);

  @ExceptionHandler(ServiceException.class)
  @Nullable ResponseEntity<Object> handleServiceException(
      ServiceException e, HttpServletRequest request, HttpServletResponse response) {
    if (e instanceof ImageElsewhereException elsewhere) {
      return redirect(elsewhere, request, response);
    }
    Long sizeBytes = e instanceof RangeOutsideDiskException range ? range.sizeBytes() : null;
    return problem(e, ProblemType.of(e), e.properties(), sizeBytes, request, response);
  }

  /**
   * Sends the client to the instance that serves the image: the same path and query there. A 307
   * keeps the method and body, so a client that follows redirects repeats its write at the owner.
   */
  private @Nullable ResponseEntity<Object> redirect(
      ImageElsewhereException e, HttpServletRequest request, HttpServletResponse response) {
    ProblemType type = ProblemType.IMAGE_ELSEWHERE;
    ProblemDetail problem = ProblemDetail.forStatus(type.status());
    problem.setDetail(e.getMessage());
    e.properties().forEach(problem::setProperty);
    String query = request.getQueryString();
    HttpHeaders headers = new HttpHeaders();
    headers.set(
        HttpHeaders.LOCATION,
        e.ownerUrl() + request.getRequestURI() + (query == null ? "" : "?" + query));
    return answer(e, problem, type, headers, request, response);
  }

  /** The service's version is the entity tag: a mismatch is answered as HTTP's failed If-Match. */
  @ExceptionHandler(VersionMismatchException.class)
  @Nullable ResponseEntity<Object> handleVersionMismatch(
      VersionMismatchException e, HttpServletRequest request, HttpServletResponse response) {
    return handleHttpProblem(PreconditionFailedException.of(e), request, response);
  }

  /**
   * Refusals of the HTTP layer itself: 411, 412, 413 and 416 on a header, and 400 for a body unlike
   * its {@code Content-Digest}.
   */
  @ExceptionHandler(HttpProblemException.class)
  @Nullable ResponseEntity<Object> handleHttpProblem(
      HttpProblemException e, HttpServletRequest request, HttpServletResponse response) {
    Long sizeBytes = e instanceof RangeNotSatisfiableException range ? range.sizeBytes() : null;
    return problem(e, ProblemType.of(e), e.properties(), sizeBytes, request, response);
  }

  /**
   * A problem with our type, the exception's message as detail and its values as extension members;
   * a 416 also names the disk size in {@code Content-Range}, as RFC 9110 asks.
   */
  private @Nullable ResponseEntity<Object> problem(
      Exception e,
      ProblemType type,
      Map<String, Object> properties,
      @Nullable Long diskSizeBytes,
      HttpServletRequest request,
      HttpServletResponse response) {
    ProblemDetail problem = ProblemDetail.forStatus(type.status());
    problem.setDetail(e.getMessage());
    properties.forEach(problem::setProperty);
    HttpHeaders headers = new HttpHeaders();
    if (diskSizeBytes != null) {
      headers.set(HttpHeaders.CONTENT_RANGE, "bytes */" + diskSizeBytes);
    }
    return answer(e, problem, type, headers, request, response);
  }

  /**
   * No or bad credentials. The security filter chain hands these over (see {@code
   * dev.fvdisk.security}) so that they come out like every other problem; it has set {@code
   * WWW-Authenticate} already.
   */
  @ExceptionHandler(AuthenticationException.class)
  @Nullable ResponseEntity<Object> handleUnauthenticated(
      AuthenticationException e, HttpServletRequest request, HttpServletResponse response) {
    return securityProblem(e, ProblemType.UNAUTHORIZED, request, response);
  }

  /** A valid token without the role (or, when creating, the image scope) the request needs. */
  @ExceptionHandler(AccessDeniedException.class)
  @Nullable ResponseEntity<Object> handleAccessDenied(
      AccessDeniedException e, HttpServletRequest request, HttpServletResponse response) {
    return securityProblem(e, ProblemType.FORBIDDEN, request, response);
  }

  private @Nullable ResponseEntity<Object> securityProblem(
      Exception e, ProblemType type, HttpServletRequest request, HttpServletResponse response) {
    ProblemDetail problem = ProblemDetail.forStatus(type.status());
    problem.setDetail(e.getMessage());
    return answer(e, problem, type, new HttpHeaders(), request, response);
  }

  /**
   * A query string the container cannot decode ({@code ?%zz=1}, {@code ?a=%}, {@code ?=x}): the
   * container's parameter parsing throws when a controller first asks for a parameter. Most such
   * requests are answered earlier by {@link QueryStringFilter}; this covers the ones it leaves.
   */
  @ExceptionHandler(InvalidParameterException.class)
  @Nullable ResponseEntity<Object> handleMalformedQuery(
      InvalidParameterException e, HttpServletRequest request, HttpServletResponse response) {
    return handleServiceException(QueryStringFilter.malformed(), request, response);
  }

  /** Anything no other handler claims: a bug or an environment failure, never shown in detail. */
  @ExceptionHandler(Exception.class)
  @Nullable ResponseEntity<Object> handleUnexpected(
      Exception e, HttpServletRequest request, HttpServletResponse response) {
    if (e instanceof IOException && response.isCommitted()) {
      log.debug(
          "Client went away during {} {}: {}", request.getMethod(), uri(request), e.toString());
      CutShortAnswerFilter.mark(request, e);
      return null;
    }
    ProblemType type = ProblemType.INTERNAL_ERROR;
    ProblemDetail problem = ProblemDetail.forStatus(type.status());
    problem.setDetail("the request failed unexpectedly; the server log has the details");
    return answer(e, problem, type, new HttpHeaders(), request, response);
  }

  /** A required query parameter is missing: say which. */
  @Override
  protected @Nullable ResponseEntity<Object> handleMissingServletRequestParameter(
      MissingServletRequestParameterException ex,
      HttpHeaders headers,
      HttpStatusCode status,
      WebRequest request) {
    ProblemDetail problem = ProblemDetail.forStatus(status);
    problem.setDetail(
        "query parameter \""
            + ex.getParameterName()
            + "\" is required"
            + ("count".equals(ex.getParameterName()) ? " (the number of sectors, 1 or more)" : ""));
    return handleExceptionInternal(ex, problem, headers, status, request);
  }

  /** A query parameter or path segment of the wrong type: say which, and what it should be. */
  @Override
  protected @Nullable ResponseEntity<Object> handleTypeMismatch(
      TypeMismatchException ex, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
    ProblemDetail problem = ProblemDetail.forStatus(status);
    String expected =
        ex.getRequiredType() == null ? "another type" : ex.getRequiredType().getSimpleName();
    problem.setDetail(
        (ex.getPropertyName() == null ? "a value" : "\"" + ex.getPropertyName() + "\"")
            + " must be "
            + switch (expected) {
              case "long", "Long", "int", "Integer" -> "an integer";
              case "boolean", "Boolean" -> "true or false";
              default -> "of type " + expected;
            });
    return handleExceptionInternal(ex, problem, headers, status, request);
  }

  /**
   * A method the path does not take. Spring logs each one at WARN; a client's mistake is not the
   * operator's business, so it is answered without that line (debug only, as every 4xx).
   */
  @Override
  protected @Nullable ResponseEntity<Object> handleHttpRequestMethodNotSupported(
      HttpRequestMethodNotSupportedException ex,
      HttpHeaders headers,
      HttpStatusCode status,
      WebRequest request) {
    return handleExceptionInternal(ex, ex.getBody(), headers, status, request);
  }

  @Override
  protected @Nullable ResponseEntity<Object> handleHttpMessageNotReadable(
      HttpMessageNotReadableException ex,
      HttpHeaders headers,
      HttpStatusCode status,
      WebRequest request) {
    ProblemDetail problem = ProblemDetail.forStatus(status);
    problem.setDetail(describeUnreadable(ex));
    return handleExceptionInternal(ex, problem, headers, status, request);
  }

  /** Re-types the problems Spring's inherited handlers build. */
  @Override
  protected @Nullable ResponseEntity<Object> handleExceptionInternal(
      Exception ex,
      @Nullable Object body,
      HttpHeaders headers,
      HttpStatusCode statusCode,
      WebRequest request) {
    ProblemDetail problem =
        body instanceof ProblemDetail detail ? detail : ProblemDetail.forStatus(statusCode);
    ProblemType type = ProblemType.ofStatus(statusCode.value());
    if (request instanceof ServletWebRequest servlet) {
      fill(problem, type, servlet.getRequest());
      if (problem.getDetail() == null) {
        problem.setDetail(defaultDetail(statusCode.value(), servlet.getRequest()));
      }
    }
    logOnce(ex, statusCode.value(), request.getDescription(false));
    return super.handleExceptionInternal(ex, problem, headers, statusCode, request);
  }

  private @Nullable ResponseEntity<Object> answer(
      Exception e,
      ProblemDetail problem,
      ProblemType type,
      HttpHeaders headers,
      HttpServletRequest request,
      HttpServletResponse response) {
    if (response.isCommitted()) {
      // Either part of a body is out already, or the container has taken the exchange over (a
      // body that broke off). The status line cannot change: the connection closes, so that a
      // client waiting for the rest of a Content-Length learns the answer is incomplete, and the
      // container's own error answer, if it still writes one, carries this problem.
      log.info(
          "{} {}: {} ({}); the connection is closed",
          request.getMethod(),
          uri(request),
          type.status(),
          e.getMessage());
      fill(problem, type, request);
      ProblemReportValve.offer(request, problem);
      CutShortAnswerFilter.mark(request, e);
      return null;
    }
    logOnce(e, type.status(), request.getMethod() + " " + uri(request));
    fill(problem, type, request);
    return ResponseEntity.status(type.status()).headers(headers).body(problem);
  }

  static void fill(ProblemDetail problem, @Nullable ProblemType type, HttpServletRequest request) {
    if (type != null) {
      problem.setType(type.type());
      problem.setTitle(type.title());
    }
    problem.setInstance(java.net.URI.create(uri(request)));
  }

  private static String defaultDetail(int status, HttpServletRequest request) {
    return switch (status) {
      case 404 -> "no resource at " + uri(request);
      case 405 -> "method " + request.getMethod() + " is not allowed on " + uri(request);
      case 406 -> "none of the accepted media types can be produced here";
      case 415 -> "content type " + request.getContentType() + " is not accepted here";
      default -> "the request cannot be processed";
    };
  }

  private static String uri(HttpServletRequest request) {
    return request.getRequestURI();
  }

  private static void logOnce(Exception e, int status, String where) {
    // 501 is an answer about a missing feature, not a failure of the server. 503 says an image or
    // its store is away: one line each, as an outage answers many requests the same way and the
    // failure itself was logged where it happened.
    if (status == 503) {
      Throwable root = e;
      while (root.getCause() != null && root.getCause() != root) {
        root = root.getCause();
      }
      log.warn(
          "{} answered 503: {}{}",
          where,
          e.getMessage(),
          root == e ? "" : " (cause: " + root.getMessage() + ")");
    } else if (status >= 500 && status != 501) {
      log.error("{} answered {}", where, status, e);
    } else if (log.isDebugEnabled()) {
      log.debug("{} answered {}: {}", where, status, e.toString());
    }
  }

  /** A sentence that says what is wrong with the body, without Java class names. */
  private static String describeUnreadable(HttpMessageNotReadableException ex) {
    Throwable cause = ex.getMostSpecificCause();
    if (cause instanceof UnrecognizedPropertyException unknown) {
      return "unknown field \"" + path(unknown) + "\"";
    }
    if (cause instanceof InvalidNullException invalidNull) {
      return "field \"" + path(invalidNull) + "\" cannot be null";
    }
    if (cause instanceof MismatchedInputException mismatch) {
      String path = path(mismatch);
      return path.isEmpty()
          ? "the body does not have the expected shape (a JSON object)"
          : "field \"" + path + "\" has the wrong type or value";
    }
    if (cause instanceof InputCoercionException coercion) {
      String path = path(coercion);
      return (path.isEmpty() ? "a number" : "field \"" + path + "\"")
          + " is out of range: sizes and offsets are 64-bit signed integers, at most "
          + Long.MAX_VALUE;
    }
    if (cause instanceof StreamReadException) {
      return "the body is not well-formed JSON";
    }
    return "the request body is missing or cannot be read";
  }

  private static String path(JacksonException e) {
    return e.getPath().stream()
        .map(r -> r.getPropertyName() != null ? r.getPropertyName() : "[" + r.getIndex() + "]")
        .collect(Collectors.joining("."));
  }
}
