package dev.fvdisk.service;

import java.nio.file.Path;

/** Another service holds the data directory's lock; see {@link DataDirectoryLock}. */
public final class DataDirectoryInUseException extends RuntimeException {

  private static final long serialVersionUID = 1L;

  DataDirectoryInUseException(Path dataDir, String holder) {
    super(
        "the data directory "
            + dataDir
            + " is in use by another fvdisk service"
            + (holder.isEmpty() ? "" : " (process " + holder + ")")
            + "; two services writing the same image files would corrupt them");
  }
}
