package dev.fvdisk.service;

import org.jspecify.annotations.Nullable;

/**
 * Limits and tunables of the service, from configuration.
 *
 * @param maxImageSizeBytes largest virtual size of an image
 * @param maxWriteBytes largest data write body; null when unlimited
 * @param maxJsonBodyBytes largest JSON request body
 * @param minFreeBytes free space of the data directory that writes leave untouched
 * @param ioBufferBytes size of the buffer that streams one request's data
 * @param mapPageExtents most extents in one map page
 * @param maxChainDepth most images in a chain of clones, counting the clone and every base below it
 * @param maxImages most images the data directory may hold
 * @param storageQuotaBytes most bytes the chunks of all images may take together; null when only
 *     the file system limits them
 */
public record ServiceLimits(
    long maxImageSizeBytes,
    @Nullable Long maxWriteBytes,
    long maxJsonBodyBytes,
    long minFreeBytes,
    int ioBufferBytes,
    int mapPageExtents,
    int maxChainDepth,
    int maxImages,
    @Nullable Long storageQuotaBytes) {

  /** No limit on the image count or the storage quota beyond the defaults (10000 images, none). */
  public ServiceLimits(
      long maxImageSizeBytes,
      @Nullable Long maxWriteBytes,
      long maxJsonBodyBytes,
      long minFreeBytes,
      int ioBufferBytes,
      int mapPageExtents,
      int maxChainDepth) {
    this(
        maxImageSizeBytes,
        maxWriteBytes,
        maxJsonBodyBytes,
        minFreeBytes,
        ioBufferBytes,
        mapPageExtents,
        maxChainDepth,
        10_000,
        null);
  }

  public ServiceLimits {
    if (ioBufferBytes < 512) {
      throw new IllegalArgumentException(
          "ioBufferBytes must be at least 512, was " + ioBufferBytes);
    }
    if (maxChainDepth < 1) {
      throw new IllegalArgumentException("maxChainDepth must be at least 1, was " + maxChainDepth);
    }
    if (maxImages < 1) {
      throw new IllegalArgumentException("maxImages must be at least 1, was " + maxImages);
    }
    if (storageQuotaBytes != null && storageQuotaBytes < 0) {
      throw new IllegalArgumentException(
          "storageQuotaBytes must not be negative, was " + storageQuotaBytes);
    }
  }
}
