package dev.fvdisk.service;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The storage figures of the whole service at one moment, for monitoring. Taking one reads counters
 * and asks the file system for its free space once; it never walks image files.
 *
 * @param dataDirectory where image files live
 * @param writable whether the service can create files in the data directory
 * @param usableBytes free space of the data directory's file system that this process may use; 0
 *     when it cannot be read
 * @param minFreeBytes free space that writes never use (the health threshold)
 * @param availableBytes what can still be allocated: usable space above the threshold, floored at 0
 * @param images open images, by name
 * @param failedImages images that failed to open, with the reason (no directory names in it)
 * @param latchedImages open images that a failed flush latched, by name
 */
public record StorageSnapshot(
    Path dataDirectory,
    boolean writable,
    long usableBytes,
    long minFreeBytes,
    long availableBytes,
    List<ImageUsage> images,
    Map<String, String> failedImages,
    List<String> latchedImages) {

  public StorageSnapshot {
    images = List.copyOf(images);
    failedImages = Map.copyOf(failedImages);
    latchedImages = List.copyOf(latchedImages);
  }

  public long usedBytes() {
    return images.stream().mapToLong(ImageUsage::usedBytes).sum();
  }

  public long provisionedBytes() {
    return images.stream().mapToLong(ImageUsage::provisionedBytes).sum();
  }

  public long fileBytes() {
    return images.stream().mapToLong(ImageUsage::fileBytes).sum();
  }

  public long leakedChunks() {
    return images.stream().mapToLong(ImageUsage::leakedChunks).sum();
  }

  /** Whether free space has fallen below the threshold that writes never use. */
  public boolean belowThreshold() {
    return usableBytes < minFreeBytes;
  }
}
