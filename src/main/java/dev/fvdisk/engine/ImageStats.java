package dev.fvdisk.engine;

/**
 * A snapshot of an image's counters, all kept up to date as the image changes, so taking one never
 * scans anything.
 *
 * @param sizeBytes virtual size
 * @param usedBytes bytes taken by chunks that hold this image's data (mapped chunks × chunk size)
 * @param snapshotBytes bytes taken by chunk versions only snapshots hold
 * @param snapshotCount how many snapshots the image has
 * @param reservedBytes bytes the file has grown by that no chunk has been given yet
 * @param fileBytes length of the image file
 * @param leakedChunks chunks found unreferenced after recovery and not yet reused or reclaimed
 * @param freeChunks chunks reclaimed by a repair and not yet reused
 * @param journalUsedSectors journal records written since the journal was last restarted
 * @param journalSectors journal capacity in records
 * @param openedAfterCrash whether the image was open for writing when it was last stopped
 * @param replayedJournalRecords records replayed at open
 * @param skippedJournalSectors torn, garbage or foreign journal sectors skipped at open
 * @param copyOnReadBytesInFlight bytes copy-on-read is storing right now
 * @param copiedFromBaseBytes bytes copied from the base by copy-on-read and prefetching since open
 */
public record ImageStats(
    long sizeBytes,
    int chunkSizeBytes,
    long usedBytes,
    long snapshotBytes,
    int snapshotCount,
    long reservedBytes,
    long fileBytes,
    long leakedChunks,
    long freeChunks,
    long journalUsedSectors,
    long journalSectors,
    boolean openedAfterCrash,
    long replayedJournalRecords,
    long skippedJournalSectors,
    long copyOnReadBytesInFlight,
    long copiedFromBaseBytes) {

  /** Journal fill between 0 and 1. */
  public double journalUsedRatio() {
    return journalSectors == 0 ? 0 : (double) journalUsedSectors / journalSectors;
  }
}
