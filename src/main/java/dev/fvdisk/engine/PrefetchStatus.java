package dev.fvdisk.engine;

import org.jspecify.annotations.Nullable;

/**
 * Where a clone's prefetching stands.
 *
 * @param state what the prefetcher is doing
 * @param copiedBytes bytes of the base range that are in the image now, whoever put them there:
 *     prefetching, copy-on-read or a client's write; {@code totalBytes - copiedBytes} is what is
 *     left to copy
 * @param totalBytes bytes of the base range: the most there is to copy
 * @param throttlePauses how often adaptive throttling has paused prefetching since the image was
 *     opened
 * @param reason why prefetching is paused or stopped, in words for an operator; null while it runs,
 *     waits for its start delay or is done
 * @param waitingForSpace whether it is paused because a copy would take space the caller's {@link
 *     SpaceBudget} or the file system refused; it goes on by itself once space returns
 */
public record PrefetchStatus(
    State state,
    long copiedBytes,
    long totalBytes,
    long throttlePauses,
    @Nullable String reason,
    boolean waitingForSpace) {

  /** A status with nothing going on: no pauses, no reason. */
  static PrefetchStatus idle(State state, long copiedBytes, long totalBytes) {
    return new PrefetchStatus(state, copiedBytes, totalBytes, 0, null, false);
  }

  public enum State {
    /** No prefetching: the image has no base, or prefetching stopped after an error. */
    DISABLED,
    /** Switched on and waiting for its start delay. */
    WAITING,
    /** Copying. */
    RUNNING,
    /** Switched off, backing off under adaptive throttling, or waiting for space. */
    PAUSED,
    /** Every block is in the image; it no longer depends on its base. */
    DONE
  }
}
