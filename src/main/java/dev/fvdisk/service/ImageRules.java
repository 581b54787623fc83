package dev.fvdisk.service;

import dev.fvdisk.engine.ImageOptions;
import org.jspecify.annotations.Nullable;

/**
 * The rules an image's settings follow (sizes, chunk and block sizes, prefetch delay), checked
 * before any file is touched, and the engine options a create command turns into. Stateless.
 */
final class ImageRules {

  private static final long SECTOR_BYTES = ImageOptions.SECTOR_BYTES;

  private final ServiceLimits limits;

  ImageRules(ServiceLimits limits) {
    this.limits = limits;
  }

  /**
   * Checks a create command and builds the engine options for it.
   *
   * @param base the base the command names, or null
   * @throws InvalidRequestException for a bad name or a missing size
   * @throws InvalidValueException for any value that breaks a rule
   */
  ImageOptions optionsFor(CreateImageCommand command, @Nullable CloneBase base) {
    Long requestedSize = command.sizeBytes();
    if (requestedSize == null && base == null) {
      throw new InvalidRequestException("sizeBytes is required when no base is given");
    }
    long baseSize = base == null ? 0 : base.sizeBytes();
    long sizeBytes = requestedSize == null ? baseSize : requestedSize;
    checkSize(sizeBytes);
    if (base != null && sizeBytes < baseSize) {
      throw new InvalidValueException(
          "sizeBytes "
              + sizeBytes
              + " is smaller than the base \""
              + base.name()
              + "\" ("
              + baseSize
              + " bytes); a clone may only be as large or larger");
    }
    long chunkSizeBytes =
        command.chunkSizeBytes() == null
            ? ImageOptions.DEFAULT_CHUNK_SIZE_BYTES
            : command.chunkSizeBytes();
    if (Long.bitCount(chunkSizeBytes) != 1
        || chunkSizeBytes < ImageOptions.MIN_CHUNK_SIZE_BYTES
        || chunkSizeBytes > ImageOptions.MAX_CHUNK_SIZE_BYTES) {
      throw new InvalidValueException(
          "chunkSizeBytes must be a power of two from "
              + ImageOptions.MIN_CHUNK_SIZE_BYTES
              + " to "
              + ImageOptions.MAX_CHUNK_SIZE_BYTES
              + ", was "
              + chunkSizeBytes);
    }
    long blockSizeBytes =
        command.blockSizeBytes() == null
            ? Math.min(ImageOptions.DEFAULT_BLOCK_SIZE_BYTES, chunkSizeBytes)
            : command.blockSizeBytes();
    if (Long.bitCount(blockSizeBytes) != 1
        || blockSizeBytes < SECTOR_BYTES
        || blockSizeBytes > chunkSizeBytes) {
      throw new InvalidValueException(
          "blockSizeBytes must be a power of two from 512 to chunkSizeBytes ("
              + chunkSizeBytes
              + "), was "
              + blockSizeBytes);
    }
    // Table space is reserved (as a hole) for growing up to the configured maximum, within what
    // the format allows for this chunk size.
    long reserveBytes = Math.min(limits.maxImageSizeBytes(), chunkSizeBytes << 24);
    reserveBytes = Math.max(sizeBytes, reserveBytes / SECTOR_BYTES * SECTOR_BYTES);
    long delaySeconds =
        command.prefetchStartDelaySeconds() == null ? 0 : command.prefetchStartDelaySeconds();
    try {
      return ImageOptions.builder(sizeBytes)
          .chunkSizeBytes((int) chunkSizeBytes)
          .maxSizeBytes(reserveBytes)
          .blockSizeBytes((int) blockSizeBytes)
          .copyOnRead(Boolean.TRUE.equals(command.copyOnRead()))
          .prefetch(
              Boolean.TRUE.equals(command.prefetchEnabled()),
              (int) Math.min(Integer.MAX_VALUE, delaySeconds))
          .build();
    } catch (IllegalArgumentException e) {
      throw new InvalidValueException(e.getMessage());
    }
  }

  /** A virtual size: a positive multiple of 512, at most the configured maximum. */
  void checkSize(long sizeBytes) {
    if (sizeBytes <= 0 || sizeBytes % SECTOR_BYTES != 0) {
      throw new InvalidValueException(
          "sizeBytes must be a positive multiple of 512, was " + sizeBytes);
    }
    if (sizeBytes > limits.maxImageSizeBytes()) {
      throw new InvalidValueException(
          "sizeBytes "
              + sizeBytes
              + " is over the configured maximum image size of "
              + limits.maxImageSizeBytes()
              + " bytes");
    }
  }

  /** A prefetch start delay, when one is given: 0 or more seconds. */
  static void checkPrefetchDelay(@Nullable Long startDelaySeconds) {
    if (startDelaySeconds != null && startDelaySeconds < 0) {
      throw new InvalidValueException(
          "prefetch.startDelaySeconds must be 0 or more, was " + startDelaySeconds);
    }
  }
}
