package dev.fvdisk.service;

import java.time.Duration;

/**
 * How the service gives the space of freed chunks back to the file system (see {@link Compactor}).
 *
 * @param quietPeriod how long an image must have served no client I/O before chunks are moved in
 *     it; zero compacts busy images too
 * @param maxBytesPerSecond the most chunk bytes moved per second, over all images together
 */
public record CompactionPolicy(Duration quietPeriod, long maxBytesPerSecond) {

  public CompactionPolicy {
    if (quietPeriod.isNegative()) {
      throw new IllegalArgumentException("quietPeriod must not be negative, was " + quietPeriod);
    }
    if (maxBytesPerSecond < 1) {
      throw new IllegalArgumentException(
          "maxBytesPerSecond must be positive, was " + maxBytesPerSecond);
    }
  }
}
