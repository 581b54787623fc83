package dev.fvdisk.service;

/** The image file failed its checks when it was opened. */
public class ImageCorruptException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public ImageCorruptException(String image, String reason, Throwable cause) {
    super("image \"" + image + "\" is damaged and cannot be opened: " + reason, cause);
    with("image", image);
  }
}
