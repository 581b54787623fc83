package dev.fvdisk.engine;

import java.io.IOException;

/**
 * The image refuses further writes and flushes because an earlier force or metadata write failed.
 *
 * <p>After a failed {@code fsync} the kernel may already have dropped the dirty pages it could not
 * write, so retrying the force could report success for data that is gone. The only safe way back
 * is to close the image and open it again, which replays the journal from what is really on disk.
 */
public class ImageFailedException extends IOException {

  private static final long serialVersionUID = 1L;

  public ImageFailedException(String imageDescription, Throwable cause) {
    super(imageDescription + ": image is in a failed state after an I/O error; reopen it", cause);
  }
}
