package dev.fvdisk.objectstore;

import java.io.IOException;

/**
 * The object store did not answer a request within its deadline and retries, or answered with an
 * error: the store is down or unreachable, not the data wrong. Nothing is known about whether a
 * write that failed so landed.
 */
public class StoreUnavailableException extends IOException {

  private static final long serialVersionUID = 1L;

  public StoreUnavailableException(String message, Throwable cause) {
    super(message, cause);
  }
}
