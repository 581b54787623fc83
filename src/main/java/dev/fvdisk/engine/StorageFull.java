package dev.fvdisk.engine;

import org.jspecify.annotations.Nullable;

/** Recognises a file system that is full or over its quota from the exception a write threw. */
public final class StorageFull {

  private static final String[] REASONS = {"No space left on device", "Disk quota exceeded"};

  private StorageFull() {}

  /**
   * The JDK reports ENOSPC and EDQUOT only through the message of an {@code IOException}, so that
   * is what is matched, along the cause chain; the errno texts are fixed by the C library.
   *
   * @return the errno text, or null when {@code e} is not about space
   */
  public static @Nullable String reasonOf(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      String message = String.valueOf(t.getMessage());
      for (String reason : REASONS) {
        if (message.contains(reason)) {
          return reason;
        }
      }
    }
    return null;
  }
}
