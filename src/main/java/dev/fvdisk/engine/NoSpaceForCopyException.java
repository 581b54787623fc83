package dev.fvdisk.engine;

import java.io.IOException;

/**
 * A copy from the base (prefetching or copy-on-read) was not made because the {@link SpaceBudget}
 * refused the space it would take. Nothing was written; the block stays in the base.
 */
public final class NoSpaceForCopyException extends IOException {

  private final String reason;

  NoSpaceForCopyException(String image, String reason) {
    super(image + ": no space for copies from the base: " + reason);
    this.reason = reason;
  }

  /** The budget's own words. */
  public String reason() {
    return reason;
  }
}
