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
 */
public record ServiceLimits(
    long maxImageSizeBytes,
    @Nullable Long maxWriteBytes,
    long maxJsonBodyBytes,
    long minFreeBytes,
    int ioBufferBytes,
    int mapPageExtents,
    int maxChainDepth) {

  public ServiceLimits {
    if (ioBufferBytes < 512) {
      throw new IllegalArgumentException(
          "ioBufferBytes must be at least 512, was " + ioBufferBytes);
    }
    if (maxChainDepth < 1) {
      throw new IllegalArgumentException("maxChainDepth must be at least 1, was " + maxChainDepth);
    }
  }
}
