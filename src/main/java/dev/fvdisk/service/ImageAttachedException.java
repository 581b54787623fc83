package dev.fvdisk.service;

/**
 * Writers stayed attached to the image for longer than a change that would take writing away from
 * them (delete, marking it read-only) waits; nothing changed. Trying again once they detach works.
 */
public class ImageAttachedException extends ServiceException {

  private static final long serialVersionUID = 1L;

  public ImageAttachedException(String image, int writers, String what) {
    super(
        "image \""
            + image
            + "\" has "
            + writers
            + " attachment(s) that stayed (an upload in progress, or an NBD session); "
            + what);
    with("image", image);
  }
}
