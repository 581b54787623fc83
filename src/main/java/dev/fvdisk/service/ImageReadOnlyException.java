package dev.fvdisk.service;

/** The image is marked read-only and refuses this change. */
public class ImageReadOnlyException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public ImageReadOnlyException(String image, String what) {
    super("image \"" + image + "\" is read-only; " + what);
    with("image", image);
  }
}
