package dev.fvdisk.service;

/** The image latched into an error state after a failed flush; a restart recovers it. */
public class ImageUnavailableException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public ImageUnavailableException(String image, Throwable cause) {
    super(
        "image \""
            + image
            + "\" is unavailable after an I/O error; it recovers at the next restart",
        cause);
    with("image", image);
  }
}
