package dev.fvdisk.service;

import dev.fvdisk.engine.CorruptImageException;
import dev.fvdisk.engine.ImageFailedException;
import dev.fvdisk.engine.StorageFull;
import dev.fvdisk.objectstore.CorruptObjectException;
import dev.fvdisk.objectstore.StoreUnavailableException;
import java.io.File;
import java.io.IOException;

/**
 * Turns the engine's {@code IOException}s into service exceptions, the one place that decides which
 * engine failure is which problem. Messages lose the data directory's path: clients see file names
 * only.
 */
final class EngineErrors {

  private final String directoryPrefix;
  private final boolean latchedImagesReopen;

  EngineErrors(ImageDirectory directory) {
    this.directoryPrefix = directory.root() + File.separator;
    this.latchedImagesReopen = directory.reopensLatchedImages();
  }

  /** The service exception for a failure of image {@code name}. */
  ServiceException translate(String name, IOException e) {
    if (e instanceof ImageFailedException) {
      return latchedImagesReopen
          ? ImageUnavailableException.untilReopened(name, e)
          : new ImageUnavailableException(name, e);
    }
    if (e instanceof CorruptImageException || e instanceof CorruptObjectException) {
      return new ImageCorruptException(name, withoutDirectory(e), e);
    }
    if (e instanceof StoreUnavailableException) {
      return ImageUnavailableException.storeUnreachable(name, e);
    }
    String diskFull = StorageFull.reasonOf(e);
    if (diskFull != null) {
      return InsufficientStorageException.diskFull(name, diskFull);
    }
    return new StorageIoException(name, withoutDirectory(e), e);
  }

  /** The engine's message names files by path; clients see only the file name. */
  String withoutDirectory(Throwable e) {
    return String.valueOf(e.getMessage()).replace(directoryPrefix, "");
  }

  /** The data directory itself failed, for instance while it was listed. */
  StorageIoException directoryFailed(String what, IOException e) {
    return new StorageIoException("(data directory)", what, e);
  }
}
