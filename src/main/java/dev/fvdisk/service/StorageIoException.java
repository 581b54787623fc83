package dev.fvdisk.service;

/** The underlying storage failed. */
public class StorageIoException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public StorageIoException(String image, String reason, Throwable cause) {
    super("I/O error on image \"" + image + "\": " + reason, cause);
    with("image", image);
  }
}
