package dev.fvdisk.web;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * A refusal only HTTP has: a header that is missing, malformed for the data path, names something
 * the disk cannot give, or does not match the body it came with. The service's own problems are
 * {@code ServiceException}s; both kinds come out of {@link ProblemAdvice} the same way. Each
 * concrete subclass is one problem type; its message is the problem's detail and {@link
 * #properties()} its extension members.
 */
abstract class HttpProblemException extends RuntimeException {

  private static final long serialVersionUID = 1L;

  private final transient Map<String, Object> properties = new LinkedHashMap<>();

  protected HttpProblemException(String detail, @Nullable Throwable cause) {
    super(detail, cause);
  }

  /** Adds a value for clients; returns this for chaining in constructors. */
  protected final HttpProblemException with(String name, Object value) {
    properties.put(name, value);
    return this;
  }

  /** Extension members of the problem, in insertion order. */
  final Map<String, Object> properties() {
    return Collections.unmodifiableMap(properties);
  }
}
