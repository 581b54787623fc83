package dev.fvdisk.engine;

import java.io.IOException;
import org.jspecify.annotations.Nullable;

/**
 * Finds the base image a clone names. The engine stores only the locator string the creator gave
 * (the service uses image names), never a path it would follow on its own.
 */
@FunctionalInterface
public interface BaseResolver {

  /** A resolver for callers that open only images without a base. */
  BaseResolver NONE = locator -> null;

  /**
   * Returns the base named {@code locator} (an image open read-only, or a snapshot), or null when
   * there is none. The clone uses it for as long as it is open and never closes it.
   */
  @Nullable BaseImage resolve(String locator) throws IOException;
}
