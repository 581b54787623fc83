package dev.fvdisk.engine;

import org.jspecify.annotations.Nullable;

/**
 * Where a clone's prefetching stands.
 *
 * @param state what the prefetcher is doing
 * @param copiedBytes bytes of the base range that are in the image now, copied or written by a
 *     client
 * @param totalBytes bytes of the base range: the most there is to copy
 * @param throttlePauses how often adaptive throttling has paused prefetching since the image was
 *     opened
 * @param error why prefetching stopped, when it stopped after an I/O error; null otherwise
 */
public record PrefetchStatus(
    State state, long copiedBytes, long totalBytes, long throttlePauses, @Nullable String error) {

  public enum State {
    /** No prefetching: the image has no base, or prefetching stopped after an error. */
    DISABLED,
    /** Switched on and waiting for its start delay. */
    WAITING,
    /** Copying. */
    RUNNING,
    /** Switched off, or backing off under adaptive throttling. */
    PAUSED,
    /** Every block is in the image; it no longer depends on its base. */
    DONE
  }
}
