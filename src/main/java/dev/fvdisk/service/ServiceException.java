package dev.fvdisk.service;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * The base of every problem the service reports. Each concrete subclass is exactly one kind of
 * problem; its message is a sentence for a human and {@link #properties()} holds the values a
 * client may want to act on (image name, offsets, sizes).
 */
public abstract class ServiceException extends RuntimeException {

  private static final long serialVersionUID = 1L;

  private final transient Map<String, Object> properties = new LinkedHashMap<>();

  protected ServiceException(String detail) {
    super(detail);
  }

  protected ServiceException(String detail, @Nullable Throwable cause) {
    super(detail, cause);
  }

  /** Adds a value for clients; returns this for chaining in constructors. */
  protected final ServiceException with(String name, @Nullable Object value) {
    if (value != null) {
      properties.put(name, value);
    }
    return this;
  }

  /** Extension members of the problem: insertion-ordered, never null values. */
  public Map<String, Object> properties() {
    return Collections.unmodifiableMap(properties);
  }
}
