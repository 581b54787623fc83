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
 */
public record ServiceLimits(
    long maxImageSizeBytes,
    @Nullable Long maxWriteBytes,
    long maxJsonBodyBytes,
    long minFreeBytes,
    int ioBufferBytes,
    int mapPageExtents) {

  public ServiceLimits {
    if (ioBufferBytes < 512) {
      throw new IllegalArgumentException(
          "ioBufferBytes must be at least 512, was " + ioBufferBytes);
    }
  }
}
