package dev.fvdisk.engine;

import java.io.IOException;

/**
 * A clone cannot read through its base: the base is missing, open for writing, or not the image,
 * unchanged, that the clone was made from. Reading through a changed base would silently change the
 * clone's content, so the clone refuses to open instead.
 */
public class BaseImageException extends IOException {

  private static final long serialVersionUID = 1L;

  public BaseImageException(String message) {
    super(message);
  }
}
