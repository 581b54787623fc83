package dev.fvdisk.service;

/**
 * One open image's storage figures, read from the engine's counters (never by scanning its file).
 *
 * @param name the image name
 * @param provisionedBytes virtual size: what the image may come to occupy
 * @param usedBytes bytes taken by chunks that hold the image's data
 * @param snapshotBytes bytes taken by chunk versions only the image's snapshots hold
 * @param fileBytes length of the image file (chunks, metadata and space reserved for growth)
 * @param leakedChunks chunks found unreferenced after recovery and not yet reused or reclaimed
 * @param journalUsedRatio journal fill between 0 and 1
 * @param copyOnReadBytesInFlight bytes copy-on-read is storing right now
 * @param hasBase whether the image reads through a base (prefetch figures mean something only then)
 * @param prefetchCopiedBytes bytes of the base range already in the image
 * @param prefetchTotalBytes bytes of the base range: the most there is to copy
 * @param prefetchWaitingForSpace whether prefetching is paused until space returns
 * @param failed whether a failed flush latched the image: writes and flushes are refused until a
 *     restart reopens it
 */
public record ImageUsage(
    String name,
    long provisionedBytes,
    long usedBytes,
    long snapshotBytes,
    long fileBytes,
    long leakedChunks,
    double journalUsedRatio,
    long copyOnReadBytesInFlight,
    boolean hasBase,
    long prefetchCopiedBytes,
    long prefetchTotalBytes,
    boolean prefetchWaitingForSpace,
    boolean failed) {

  /** Prefetch progress between 0 and 1; a base range with nothing in it counts as done. */
  public double prefetchProgress() {
    return prefetchTotalBytes == 0 ? 1 : (double) prefetchCopiedBytes / prefetchTotalBytes;
  }
}
