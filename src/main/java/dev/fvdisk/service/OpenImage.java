package dev.fvdisk.service;

import dev.fvdisk.engine.Image;
import dev.fvdisk.engine.ImageStats;
import dev.fvdisk.engine.PrefetchStatus;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * One entry of the {@link ImageRegistry}: an open image and the lock the service takes around it.
 *
 * <p>The engine image is replaced, under the write lock, when the read-only mark changes, because a
 * marked image is opened read-only. An entry that left the registry (deleted, or closed at
 * shutdown) is <em>retired</em> for good: a name that is created again gets a new entry.
 */
final class OpenImage {

  private final String name;
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private volatile Image image;
  private volatile boolean retired;

  OpenImage(String name, Image image) {
    this.name = name;
    this.image = image;
  }

  String name() {
    return name;
  }

  Image image() {
    return image;
  }

  /** Puts the reopened image in place; the caller holds the write lock. */
  void replaceImage(Image reopened) {
    image = reopened;
  }

  /** The image's storage figures, read from the engine's counters; takes no lock. */
  ImageUsage usage() {
    Image image = this.image;
    ImageStats stats = image.stats();
    PrefetchStatus prefetch = image.prefetchStatus();
    return new ImageUsage(
        name,
        stats.sizeBytes(),
        stats.usedBytes(),
        stats.fileBytes(),
        stats.leakedChunks(),
        stats.journalUsedRatio(),
        stats.copyOnReadBytesInFlight(),
        image.baseLocator() != null,
        prefetch.copiedBytes(),
        prefetch.totalBytes(),
        prefetch.waitingForSpace(),
        image.isFailed());
  }

  ReentrantReadWriteLock lock() {
    return lock;
  }

  boolean isRetired() {
    return retired;
  }

  /** Marks the entry as gone from the registry; its image is closed or about to be. */
  void retire() {
    retired = true;
  }
}
