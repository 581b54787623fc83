package dev.fvdisk.engine;

import org.jspecify.annotations.Nullable;

/**
 * Whether a clone may take more space for copies nobody asked for: prefetching and copy-on-read.
 * The engine asks before such a copy maps a new chunk; the caller knows the limits (a storage
 * quota, the free space a file system must keep) that the engine does not. Client writes are not
 * asked: their caller checks space before it writes.
 */
@FunctionalInterface
public interface SpaceBudget {

  /** No limit but the file system's own. */
  SpaceBudget UNLIMITED = bytes -> null;

  /**
   * @param bytes how much more space the copy would take
   * @return null when the copy may take it, otherwise why not, in words for an operator
   */
  @Nullable String refusal(long bytes);
}
