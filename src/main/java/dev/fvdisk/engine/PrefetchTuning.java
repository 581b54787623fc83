package dev.fvdisk.engine;

/**
 * How a prefetcher paces itself. The defaults are FVD's, except that copying also waits for the
 * image's client I/O to go quiet.
 *
 * @param bytesPerPrefetch most bytes read from the base per step; default 1 MiB
 * @param windowMillis length of one throughput measurement window; default 100 ms
 * @param smoothingPercent weight of the old average in the smoothed throughput, 0 to 100; default
 *     80
 * @param minBytesPerSecond below this smoothed read or write throughput the prefetcher pauses with
 *     probability one half; default 5120 KiB/s
 * @param maxPauseMillis a pause lasts a uniformly random 1 to this many milliseconds; default 30 s
 * @param clientQuietMillis prefetching waits until the image has seen no client read or write for
 *     this long; default 20 ms
 */
public record PrefetchTuning(
    int bytesPerPrefetch,
    long windowMillis,
    int smoothingPercent,
    long minBytesPerSecond,
    long maxPauseMillis,
    long clientQuietMillis) {

  public static final PrefetchTuning DEFAULTS =
      new PrefetchTuning(1 << 20, 100, 80, 5120L * 1024, 30_000, 20);

  public PrefetchTuning {
    if (bytesPerPrefetch < ImageOptions.SECTOR_BYTES
        || windowMillis <= 0
        || smoothingPercent < 0
        || smoothingPercent > 100
        || minBytesPerSecond < 0
        || maxPauseMillis < 1
        || clientQuietMillis < 0) {
      throw new IllegalArgumentException(
          "prefetch tuning out of range: "
              + "bytesPerPrefetch >= 512, windowMillis > 0, smoothingPercent 0..100, "
              + "minBytesPerSecond >= 0, maxPauseMillis >= 1, clientQuietMillis >= 0");
    }
  }
}
