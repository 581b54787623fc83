package dev.fvdisk.service;

/** The underlying storage failed. */
public class StorageIoException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public StorageIoException(String image, Throwable cause) {
    super("I/O error on image \"" + image + "\": " + cause.getMessage(), cause);
    with("image", image);
  }
}
