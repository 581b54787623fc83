package dev.fvdisk.service;

import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.SpaceBudget;
import java.io.IOException;
import java.util.function.LongSupplier;
import org.jspecify.annotations.Nullable;

/**
 * How much new storage writes may take: the free space of the data directory's file system above
 * the threshold writes leave alone ({@code fvdisk.min-free-space}), capped by what remains of the
 * storage quota when one is set, and the limit on the number of images.
 *
 * <p>The one place these figures are combined, so client writes, background copies from a base and
 * monitoring agree. Write admission asks the file system only when a write would allocate, and then
 * through {@link FreeSpaceEstimate}. Safe to share between threads.
 */
final class SpacePolicy {

  private final ImageDirectory directory;
  private final ServiceLimits limits;
  private final LongSupplier usedBytesOfAllImages;
  private final EngineErrors errors;

  /**
   * What copies from a base (prefetching, copy-on-read) may take: the same space client writes may
   * allocate, so background work never takes a clone past the storage quota or the free space the
   * file system must keep.
   */
  private final SpaceBudget backgroundCopies = this::refusalOfCopy;

  /** The file system's free space as admission sees it: see {@link FreeSpaceEstimate}. */
  private final FreeSpaceEstimate freeSpace;

  /**
   * @param usedBytesOfAllImages what the chunks of all open images take together, for the quota
   */
  SpacePolicy(
      ImageDirectory directory,
      ServiceLimits limits,
      LongSupplier usedBytesOfAllImages,
      EngineErrors errors) {
    this.directory = directory;
    this.limits = limits;
    this.usedBytesOfAllImages = usedBytesOfAllImages;
    this.errors = errors;
    this.freeSpace = new FreeSpaceEstimate(directory::usableBytes);
  }

  private @Nullable String refusalOfCopy(long bytes) {
    Allocatable allocatable = allocatable();
    if (bytes > allocatable.bytes()) {
      return allocatable.limit() + ", and a copy needs " + bytes;
    }
    freeSpace.admitted(bytes);
    return null;
  }

  /** The budget the engine asks before it copies blocks from a base. */
  SpaceBudget backgroundCopies() {
    return backgroundCopies;
  }

  /**
   * What writes may still allocate, and the figures behind it.
   *
   * @param bytes the smaller of the free space above the threshold that writes never use and what
   *     remains of the storage quota
   * @param quotaBytes the quota when it is the smaller, else null
   * @param usableBytes the file system's free space that this process may use
   * @param minFreeBytes the free space writes leave alone
   */
  record Allocatable(long bytes, @Nullable Long quotaBytes, long usableBytes, long minFreeBytes) {

    /** Which limit {@link #bytes} comes from, in words for an operator; only built when asked. */
    String limit() {
      return quotaBytes != null
          ? "the storage quota of " + quotaBytes + " bytes has " + bytes + " bytes left"
          : "the data directory's file system has "
              + usableBytes
              + " bytes free and keeps "
              + minFreeBytes
              + " of them free";
    }
  }

  /**
   * What writes may allocate now, with the file system's free space from {@link #freeSpace}, so
   * that an allocating write costs no {@code statvfs} while the file system is far from its
   * threshold; sums what every image uses only when there is a quota to hold it to.
   */
  private Allocatable allocatable() {
    long usable;
    try {
      usable = freeSpace.usableBytes(limits.minFreeBytes());
    } catch (IOException e) {
      throw errors.directoryFailed(errors.withoutDirectory(e), e);
    }
    long used = limits.storageQuotaBytes() == null ? 0 : usedBytesOfAllImages.getAsLong();
    return allocatable(usable, used);
  }

  /** What writes may allocate given these figures, for a snapshot that read them already. */
  Allocatable allocatable(long usableBytes, long usedBytes) {
    long aboveThreshold = Math.max(0, usableBytes - limits.minFreeBytes());
    Long quota = limits.storageQuotaBytes();
    if (quota != null && quota - usedBytes < aboveThreshold) {
      return new Allocatable(
          Math.max(0, quota - usedBytes), quota, usableBytes, limits.minFreeBytes());
    }
    return new Allocatable(aboveThreshold, null, usableBytes, limits.minFreeBytes());
  }

  /**
   * Refuses a write of {@code [offsetBytes, offsetBytes + lengthBytes)} that would allocate more
   * than is available. A write that allocates nothing costs no file system query, and one that
   * allocates far from the threshold usually none either ({@link FreeSpaceEstimate}). Concurrent
   * writes are not counted against the quota until they have allocated, so together they can
   * overshoot it by their own size: the quota bounds growth, it is not an exact reservation.
   *
   * @throws InsufficientStorageException when the space is not there
   */
  void checkSpace(Image image, long offsetBytes, long lengthBytes) {
    long needed = image.bytesToAllocate(offsetBytes, lengthBytes);
    if (needed == 0) {
      return;
    }
    long available = allocatable().bytes();
    if (needed > available) {
      throw new InsufficientStorageException(needed, available);
    }
    freeSpace.admitted(needed);
  }

  /**
   * Refuses a staging file of {@code lengthBytes} (see {@link StagingArea}) that would take the
   * file system below the free space writes leave alone. The storage quota counts the chunks of
   * images only, so it does not apply to a file that is gone when its request ends. Staged bodies
   * are not reserved: concurrent ones are counted once they are written, like concurrent writes.
   *
   * @throws InsufficientStorageException when the space is not there
   */
  void checkStaging(long lengthBytes) {
    long usable;
    try {
      usable = directory.usableBytes();
    } catch (IOException e) {
      throw errors.directoryFailed(errors.withoutDirectory(e), e);
    }
    long available = Math.max(0, usable - limits.minFreeBytes());
    if (lengthBytes > available) {
      throw InsufficientStorageException.staging(lengthBytes, available);
    }
  }

  /**
   * Refuses one more image when the data directory holds the maximum. Counts image files, not open
   * images, so files that failed to open count too.
   */
  void checkImageCount() {
    int imageCount;
    try {
      imageCount = directory.names().size();
    } catch (IOException e) {
      throw errors.directoryFailed("the data directory cannot be listed", e);
    }
    if (imageCount >= limits.maxImages()) {
      throw InsufficientStorageException.imageCount(imageCount, limits.maxImages());
    }
  }
}
